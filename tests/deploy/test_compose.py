"""deploy/compose.yaml, as `docker compose config` resolves it for each profile.

No Docker engine runs here, so the stack is never started by compose; what makes
`up --scale stt=3` work is checked on the resolved model instead: replicas found by DNS
under one name, nothing pinned to one container, health from grpc.health.v1, traces to the
collector and on to Jaeger, time for the drain on SIGTERM, and caption rooms in a Redis
that every gateway shares. tests/deploy/test_images.py runs the health checks themselves
against the services the images install.
"""

import functools
import json
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from dragoman.gateway.settings import GatewaySettings
from dragoman.settings import declared
from dragoman.stt.settings import SttSettings
from dragoman.translate.settings import TranslateSettings
from tests.deploy.services import (
    REDIS,
    REDIS_CLI_PING,
    SERVICES,
    listens_on,
    redis_bytes,
    server_options,
)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "deploy" / "compose.yaml"
COMPOSE = ROOT / ".tools" / "docker" / "cli-plugins" / "docker-compose"
PROFILES = [(), ("gpu",), ("cpu",)]
COLLECTOR = "otel-collector"


DRAGOMAN = {**SERVICES, "stt-cpu": SERVICES["stt"]}
"""By compose service name: the CPU profile runs the STT service as `stt-cpu`."""


@functools.cache
def config(*profiles: str) -> dict:
    """The compose model resolved for `profiles`: defaults, anchors and merges applied."""
    assert COMPOSE.exists(), f"{COMPOSE} is missing: run `make deploy-tools`"
    arguments = [str(COMPOSE), "-f", str(COMPOSE_FILE)]
    for profile in profiles:
        arguments += ["--profile", profile]
    result = subprocess.run(
        [*arguments, "config", "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        # Only the file's own defaults, whatever the calling shell exports.
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def dragoman_services(profiles: tuple[str, ...]) -> dict[str, dict]:
    services = config(*profiles)["services"]
    return {name: services[name] for name in DRAGOMAN if name in services}


def answers_to(name: str, service: dict) -> set[str]:
    """The DNS names of a service's replicas: its own and its aliases."""
    networks = service.get("networks") or {}
    return {name, *((networks.get("default") or {}).get("aliases") or [])}


def seconds(duration: str) -> float:
    """A Go duration as compose prints it (`30s`, `1m30s`, `2m0s`)."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"([\d.]+)(ms|h|m|s)", duration)
    assert "".join(number + unit for number, unit in parts) == duration, duration
    return sum(float(number) * units[unit] for number, unit in parts)


@pytest.mark.parametrize("profiles", PROFILES, ids=lambda p: "+".join(p) or "default")
def test_each_profile_resolves(profiles: tuple[str, ...]) -> None:
    services = config(*profiles)["services"]
    assert {"envoy", "gateway", "translate", REDIS, COLLECTOR, "jaeger"} <= services.keys()
    for name, service in dragoman_services(profiles).items():
        dockerfile = ROOT / service["build"]["dockerfile"]
        assert Path(service["build"]["context"]) == ROOT, name
        assert dockerfile.is_file(), f"{name} builds from {dockerfile}, which does not exist"


def test_the_gpu_profile_reserves_an_nvidia_gpu_for_stt() -> None:
    services = config("gpu")["services"]
    assert "stt-cpu" not in services
    devices = services["stt"]["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    assert services["stt"]["build"]["dockerfile"] == "deploy/docker/stt.Dockerfile"


def test_the_cpu_profile_answers_as_stt_without_a_gpu() -> None:
    """The gateway's target stays dns:///stt:50052 whichever profile runs."""
    services = config("cpu")["services"]
    assert "stt" not in services
    stt = services["stt-cpu"]
    assert "stt" in stt["networks"]["default"]["aliases"]
    assert "deploy" not in stt
    assert stt["build"]["dockerfile"] == "deploy/docker/stt-cpu.Dockerfile"


@pytest.mark.parametrize("profiles", PROFILES[1:], ids=lambda p: "+".join(p))
def test_the_gateway_balances_over_every_replica_by_dns(profiles: tuple[str, ...]) -> None:
    services = config(*profiles)["services"]
    environment = services["gateway"]["environment"]
    names = {name: answers_to(name, service) for name, service in services.items()}
    for variable, port in (
        ("DRAGOMAN_GATEWAY_STT_TARGET", SttSettings.model_fields["port"].default),
        ("DRAGOMAN_GATEWAY_TRANSLATE_TARGET", TranslateSettings.model_fields["port"].default),
    ):
        match = re.fullmatch(r"dns:///([\w-]+):(\d+)", environment[variable])
        assert match, f"{variable}={environment[variable]} is not a dns:/// target"
        host, target_port = match.group(1), int(match.group(2))
        assert target_port == port
        assert [name for name, aliases in names.items() if host in aliases], (
            f"{variable} names {host}, which no service answers to"
        )


@pytest.mark.parametrize("profiles", PROFILES, ids=lambda p: "+".join(p) or "default")
def test_scalable_services_pin_nothing_to_one_container(profiles: tuple[str, ...]) -> None:
    """`--scale` refuses a fixed container name, and replicas cannot share a host port."""
    for name, service in dragoman_services(profiles).items():
        assert "container_name" not in service, name
        assert not [p for p in service.get("ports", []) if p.get("published")], name


def test_health_checks_ask_grpc_health_for_each_service() -> None:
    services = {**config("gpu")["services"], **config("cpu")["services"]}
    for name, service in DRAGOMAN.items():
        port = service.settings.model_fields["port"].default
        test = services[name]["healthcheck"]["test"]
        assert test == [
            "CMD", "dragoman", "health", f"127.0.0.1:{port}", "--service", service.health_name
        ], name  # fmt: skip
    envoy = services["envoy"]["healthcheck"]["test"]
    assert "/healthz" in envoy[-1]


def test_services_start_after_what_they_call_is_healthy() -> None:
    for profile, stt in (("gpu", "stt"), ("cpu", "stt-cpu")):
        services = config(profile)["services"]
        gateway = services["gateway"]["depends_on"]
        for backend in (stt, "translate", REDIS):
            assert gateway[backend]["condition"] == "service_healthy", (profile, backend)
        assert gateway[REDIS]["required"] is True, "every profile runs Redis"
        assert services["envoy"]["depends_on"]["gateway"]["condition"] == "service_healthy"


@pytest.mark.parametrize("profiles", PROFILES, ids=lambda p: "+".join(p) or "default")
def test_the_gateways_share_caption_rooms_in_redis(profiles: tuple[str, ...]) -> None:
    """With rooms in one gateway's memory, `--scale gateway=2` would give a listener only the
    speakers who reached the same gateway."""
    services = config(*profiles)["services"]
    variable = "DRAGOMAN_GATEWAY_REDIS_URL"
    assert declared(GatewaySettings, variable.removeprefix(SERVICES["gateway"].prefix).lower())
    url = services["gateway"]["environment"][variable]
    parsed = urlsplit(url)
    assert (parsed.scheme, parsed.path) == ("redis", "/0"), url
    (server,) = [name for name, s in services.items() if parsed.hostname in answers_to(name, s)]
    assert server == REDIS, f"{url} names {parsed.hostname}, which is not the Redis service"
    assert parsed.port == listens_on(server_options(services[REDIS]["command"])), url


def test_redis_keeps_rooms_in_memory_only_and_is_health_checked() -> None:
    """Rooms are live state: nothing is saved, so nothing needs a volume and the root
    filesystem stays read-only; only the gateways reach it, on the compose network."""
    redis = config()["services"][REDIS]
    assert re.fullmatch(r"valkey/valkey:\d+\.\d+\.\d+-alpine", redis["image"]), "pinned"
    options = server_options(redis["command"])
    assert (options["save"], options["appendonly"]) == ("", "no"), "no RDB, no AOF"
    assert options["maxmemory-policy"] != "noeviction", "full: evict, not refuse every write"
    assert redis_bytes(options["maxmemory"]) > 0
    assert redis["read_only"] is True
    assert "/data" in redis["tmpfs"], "the image's working directory, which must be writable"
    assert not redis.get("volumes"), "nothing is persisted"
    assert not redis.get("ports"), "no host port: Redis has no password"
    assert redis["healthcheck"]["test"] == ["CMD", *REDIS_CLI_PING]


@pytest.mark.parametrize("profiles", PROFILES, ids=lambda p: "+".join(p) or "default")
def test_every_service_sends_its_traces_to_the_collector(profiles: tuple[str, ...]) -> None:
    collector = config(*profiles)["services"][COLLECTOR]
    for name, service in dragoman_services(profiles).items():
        environment = service["environment"]
        assert environment["OTEL_TRACES_EXPORTER"] == "otlp", name
        assert environment["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc", name
        assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://{COLLECTOR}:4317", name
        assert service["depends_on"][COLLECTOR]["condition"] == "service_started", name
    assert collector["image"].startswith("otel/opentelemetry-collector-contrib:")


def test_the_collector_receives_otlp_and_exports_to_jaeger_v2() -> None:
    services = config()["services"]
    (mount,) = [v for v in services[COLLECTOR]["volumes"] if v["type"] == "bind"]
    assert mount["target"] == "/etc/otelcol-contrib/config.yaml", "the contrib image's config"
    collector = yaml.safe_load(Path(mount["source"]).read_text())
    assert collector["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] == "0.0.0.0:4317"
    traces = collector["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"]
    endpoints = [collector["exporters"][name]["endpoint"] for name in traces["exporters"]]
    assert endpoints == ["jaeger:4317"]
    jaeger = services["jaeger"]
    assert re.fullmatch(r"jaegertracing/jaeger:2\.\d+\.\d+", jaeger["image"]), "Jaeger v2"
    assert [p["target"] for p in jaeger["ports"]] == [16686], "the UI, and nothing else"


@pytest.mark.parametrize("profiles", PROFILES[1:], ids=lambda p: "+".join(p))
def test_containers_stop_after_their_drain(profiles: tuple[str, ...]) -> None:
    """Compose sends SIGTERM, then SIGKILL after stop_grace_period: the drain must fit."""
    for name, service in dragoman_services(profiles).items():
        settings = DRAGOMAN[name].settings
        drain = float(
            service["environment"].get(
                f"{DRAGOMAN[name].prefix}DRAIN_GRACE_S",
                settings.model_fields["drain_grace_s"].default,
            )
        )
        assert seconds(service["stop_grace_period"]) > drain, name
        assert service["read_only"] is True, f"{name}: the images write nothing at run time"


def test_envoy_is_the_one_public_port() -> None:
    services = config("cpu")["services"]
    envoy = services["envoy"]
    assert [(p["target"], p["published"]) for p in envoy["ports"]] == [(8080, "8080")]
    assert envoy["build"]["dockerfile"] == "deploy/docker/edge.Dockerfile"


def test_compose_file_is_plain_yaml_for_other_tools() -> None:
    """yaml.safe_load (test_images reads health checks with it) sees the same checks."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    resolved = config("gpu")["services"]
    assert raw["services"]["stt"]["healthcheck"]["test"] == resolved["stt"]["healthcheck"]["test"]
