#!/usr/bin/env bash
# Installs one static binary from a pinned Debian package into a folder, without root:
# the checks of the deployment files need `docker compose` and `kustomize`, which Debian
# ships (trixie) but the machines' own release does not, and no Docker engine is needed.
# usage: fetch-deb-binary.sh POOL_PATH SHA256 PATH_IN_PACKAGE DESTINATION
set -euo pipefail
pool_path=$1 sha256=$2 inside=$3 destination=$4
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if [ "$(dpkg --print-architecture 2>/dev/null || echo unknown)" != amd64 ]; then
	echo "$0: the pinned packages are for amd64; install $(basename "$destination") yourself" >&2
	exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl --fail --silent --show-error --location --retry 3 -o "$work/package.deb" "$mirror/$pool_path"
echo "$sha256  $work/package.deb" | sha256sum --check --quiet
dpkg-deb --extract "$work/package.deb" "$work/root"
mkdir -p "$(dirname "$destination")"
install -m 0755 "$work/root/$inside" "$destination"
