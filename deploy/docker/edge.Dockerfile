# Envoy in front of the gateways: gRPC, gRPC-Web, the WebSocket bridge and the page on 8080,
# GET /healthz for probes; the admin interface stays on loopback (9901).
#   docker build -f deploy/docker/edge.Dockerfile -t dragoman/edge .
# The configuration is deploy/envoy.yaml, the file the local stack runs and the tests
# check, rendered by `dragoman envoy-config` with the compose service names. Envoy balances
# over every address `gateway` resolves to (STRICT_DNS), so gateways scale too.

FROM python:3.12-slim-bookworm AS config
COPY . /src
RUN /src/deploy/docker/install.sh edge /opt/dragoman/venv \
    && /opt/dragoman/venv/bin/dragoman envoy-config \
        --listen 0.0.0.0:8080 --grpc gateway:50051 --http gateway:8081 > /envoy.yaml

FROM envoyproxy/envoy:v1.40.0
COPY --from=config /envoy.yaml /etc/envoy/envoy.yaml
# Envoy needs no account: a fixed numeric id, as in the other images, lets Kubernetes'
# runAsNonRoot verify it.
USER 10001:10001
EXPOSE 8080
# One worker thread per CPU the container is given, not per CPU of the host: set
# --concurrency to the CPU limit when it is not 2.
CMD ["envoy", "-c", "/etc/envoy/envoy.yaml", "--concurrency", "2"]
