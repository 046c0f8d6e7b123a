"""`deploy/envoy.yaml` rendered for one deployment: its addresses put in by name, so that
the file that is deployed is the file that is tested. The local stacks and the edge image
(`dragoman envoy-config`) both render it here; only PyYAML is needed.
"""

from pathlib import Path
from typing import Any

import yaml

CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "envoy.yaml"
LISTENER = "public"
GRPC_CLUSTER = "gateway_grpc"
HTTP_CLUSTER = "gateway_http"


def render(
    config: dict[str, Any],
    *,
    host: str,
    port: int,
    admin_port: int,
    grpc_address: tuple[str, int],
    http_address: tuple[str, int],
) -> dict[str, Any]:
    """`config` with the stack's addresses in place of the ones it was written with."""
    config["admin"]["address"]["socket_address"].update(address="127.0.0.1", port_value=admin_port)
    resources = config["static_resources"]
    listener = next(item for item in resources["listeners"] if item["name"] == LISTENER)
    listener["address"]["socket_address"].update(address=host, port_value=port)
    for name, (address, cluster_port) in (
        (GRPC_CLUSTER, grpc_address),
        (HTTP_CLUSTER, http_address),
    ):
        cluster = next(item for item in resources["clusters"] if item["name"] == name)
        endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
        endpoint["address"]["socket_address"].update(address=address, port_value=cluster_port)
    return config


def render_file(
    template: Path,
    *,
    listen: tuple[str, int],
    admin_port: int,
    grpc_address: tuple[str, int],
    http_address: tuple[str, int],
) -> str:
    """The YAML of `template` rendered for one deployment: the launcher's, or an image's
    (`dragoman envoy-config`)."""
    host, port = listen
    config = render(
        yaml.safe_load(template.read_text()),
        host=host,
        port=port,
        admin_port=admin_port,
        grpc_address=grpc_address,
        http_address=http_address,
    )
    return yaml.safe_dump(config, sort_keys=False)
