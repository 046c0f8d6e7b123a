# The gateway: public gRPC (50051), the WebSocket bridge and the page over HTTP (8081),
# Prometheus metrics (9464). Audio front end and VAD only: no torch, no Whisper runtime used.
#   docker build -f deploy/docker/gateway.Dockerfile -t dragoman/gateway .

# The page, built as `make web` builds it: TypeScript from the protos, bundled by esbuild.
FROM node:22-bookworm-slim AS web
WORKDIR /src
COPY buf.yaml ./
COPY protos protos
COPY clients/web clients/web
WORKDIR /src/clients/web
RUN npm ci --no-audit --no-fund --loglevel=error && npm run --silent build

FROM python:3.12-slim-bookworm AS build
COPY . /src
RUN /src/deploy/docker/install.sh gateway /opt/dragoman/venv

FROM python:3.12-slim-bookworm
RUN useradd --no-log-init --system --uid 10001 --user-group --no-create-home dragoman
COPY --from=build /opt/dragoman /opt/dragoman
COPY --from=web /src/clients/web/dist /opt/dragoman/web
# onnxruntime would otherwise write a telemetry id under $HOME, on a read-only filesystem.
ENV PATH=/opt/dragoman/venv/bin:$PATH \
    DRAGOMAN_GATEWAY_HOST=0.0.0.0 \
    DRAGOMAN_GATEWAY_WEB_ROOT=/opt/dragoman/web \
    DRAGOMAN_GATEWAY_LOG_JSON=true \
    ORT_DISABLE_TELEMETRY=1
USER 10001:10001
EXPOSE 50051 8081 9464
ENTRYPOINT ["dragoman"]
CMD ["gateway"]
