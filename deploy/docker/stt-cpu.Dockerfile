# The STT service on CPUs (CTranslate2 int8): gRPC (50052), Prometheus metrics (9465).
#   docker build -f deploy/docker/stt-cpu.Dockerfile -t dragoman/stt-cpu .
# Models as in stt.Dockerfile: tiny.en and base baked in, hub models in a mounted models/hub.

FROM python:3.12-slim-bookworm AS build
COPY . /src
ENV DRAGOMAN_STT_MODEL_CACHE_DIR=/opt/dragoman/models
RUN /src/deploy/docker/install.sh stt /opt/dragoman/venv tiny.en,base

FROM python:3.12-slim-bookworm
RUN useradd --no-log-init --system --uid 10001 --user-group --no-create-home dragoman
COPY --from=build /opt/dragoman /opt/dragoman
RUN install -d -o 10001 -g 10001 /opt/dragoman/models/hub
# onnxruntime would otherwise write a telemetry id under $HOME, on a read-only filesystem.
ENV PATH=/opt/dragoman/venv/bin:$PATH \
    DRAGOMAN_STT_HOST=0.0.0.0 \
    DRAGOMAN_STT_DEVICE=cpu \
    DRAGOMAN_STT_MODEL_CACHE_DIR=/opt/dragoman/models \
    DRAGOMAN_STT_LOG_JSON=true \
    ORT_DISABLE_TELEMETRY=1
USER 10001:10001
EXPOSE 50052 9465
ENTRYPOINT ["dragoman"]
CMD ["stt"]
