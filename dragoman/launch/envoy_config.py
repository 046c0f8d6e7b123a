"""`deploy/envoy.yaml` rendered for one deployment: its addresses put in by name, so that
the file that is deployed is the file that is tested. The local stacks and the edge image
(`dragoman envoy-config`) both render it here; only PyYAML is needed.
"""

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

Address = tuple[str, int]
CONFIG = Path(__file__).resolve().parent / "envoy.yaml"
"""deploy/envoy.yaml, linked here so that the wheel carries it."""
LISTENER = "public"
GRPC_CLUSTER = "gateway_grpc"
HTTP_CLUSTER = "gateway_http"


def render(
    config: dict[str, Any],
    *,
    host: str,
    port: int,
    admin_port: int,
    grpc_addresses: Sequence[Address],
    http_addresses: Sequence[Address],
) -> dict[str, Any]:
    """`config` with the stack's addresses in place of the ones it was written with: one
    endpoint per gateway in each cluster, which Envoy balances over."""
    config["admin"]["address"]["socket_address"].update(address="127.0.0.1", port_value=admin_port)
    resources = config["static_resources"]
    listener = next(item for item in resources["listeners"] if item["name"] == LISTENER)
    listener["address"]["socket_address"].update(address=host, port_value=port)
    for name, addresses in ((GRPC_CLUSTER, grpc_addresses), (HTTP_CLUSTER, http_addresses)):
        cluster = next(item for item in resources["clusters"] if item["name"] == name)
        locality = cluster["load_assignment"]["endpoints"][0]
        written = locality["lb_endpoints"][0]
        locality["lb_endpoints"] = [copy.deepcopy(written) for _ in addresses]
        for entry, (address, cluster_port) in zip(locality["lb_endpoints"], addresses, strict=True):
            entry["endpoint"]["address"]["socket_address"].update(
                address=address, port_value=cluster_port
            )
    return config


def render_file(
    template: Path,
    *,
    listen: tuple[str, int],
    admin_port: int,
    grpc_addresses: Sequence[Address],
    http_addresses: Sequence[Address],
) -> str:
    """The YAML of `template` rendered for one deployment: the launcher's, or an image's
    (`dragoman envoy-config`)."""
    host, port = listen
    config = render(
        yaml.safe_load(template.read_text()),
        host=host,
        port=port,
        admin_port=admin_port,
        grpc_addresses=grpc_addresses,
        http_addresses=http_addresses,
    )
    return yaml.safe_dump(config, sort_keys=False)
