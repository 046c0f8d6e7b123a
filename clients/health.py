"""A `grpc.health.v1` check for container health checks.

Kubernetes probes gRPC health natively; Docker and compose cannot, and the standard
`grpc_health_probe` binary is not on the registries these images build from, so the
images ask with the gRPC stack they already carry.
"""

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


async def check(
    target: str, service: str, timeout_s: float, ca_certificate: bytes | None = None
) -> int:
    """Prints the status of `service` at `target`; 0 when SERVING, 1 otherwise.

    `ca_certificate` (PEM) makes it TLS, for services whose port is TLS (none: plaintext)."""
    channel = (
        grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(ca_certificate))
        if ca_certificate is not None
        else grpc.aio.insecure_channel(target)
    )
    async with channel:
        try:
            response = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
        except grpc.RpcError as error:
            print(f"{target} {service or '(server)'}: {error.code().name}: {error.details()}")
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    print(f"{target} {service or '(server)'}: {status}")
    return 0 if response.status == health_pb2.HealthCheckResponse.SERVING else 1
