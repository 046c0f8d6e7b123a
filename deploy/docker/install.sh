#!/bin/sh
# The one install step of every Dragoman image. Each Dockerfile runs it in its build stage,
# and tests/deploy/test_images.py runs it outside Docker, then starts the service it
# installed, so CI keeps the images' installs working without a Docker engine.
#
# usage: install.sh EXTRAS VENV [MODELS]
#   EXTRAS  the distribution's extras, comma-separated: gateway | stt | translate[,transformers]
#           (empty: the bare distribution, for commands such as envoy-config)
#   VENV    the virtual environment to create; the source is the tree this script lies in
#   MODELS  STT models to resolve, join and verify now into $DRAGOMAN_STT_MODEL_CACHE_DIR, so
#           that the service starts offline and never writes to its disk (read-only root)
#
# $PYTHON is the interpreter the environment is made from (default: python3).
set -eu

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 EXTRAS VENV [MODELS]" >&2
    exit 2
fi
extras=$1
venv=$2
models=${3:-}
source=$(CDPATH='' cd -- "$(dirname -- "$0")/../.." && pwd)

"${PYTHON:-python3}" -m venv "$venv"
# A wheel, not an editable install: the image must not need the source tree at run time.
"$venv/bin/python" -m pip install --no-input --progress-bar off --quiet \
    "dragoman[$extras] @ file://$source"
"$venv/bin/python" -m pip check

if [ -n "$models" ]; then
    : "${DRAGOMAN_STT_MODEL_CACHE_DIR:?must name the directory the models are prepared into}"
    "$venv/bin/dragoman" prepare-models --models "$models"
fi
