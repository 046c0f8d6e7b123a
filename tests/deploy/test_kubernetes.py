"""The Kubernetes manifests (deploy/k8s), checked without a cluster.

kustomize builds each overlay and kubernetes-validate holds the result to the API schemas
of the oldest and the newest Kubernetes version supported. Schemas cannot tell whether the
manifests agree with the code they deploy (ports, settings, health service names, metric
names) or with themselves (probes, drain times, disruption budgets, autoscalers, the Redis
the gateways point at): the rest of this module does, since a mismatch there shows only in
a cluster, as a pod that never turns ready, an autoscaler that never scales or gateways
that each keep rooms of their own.
"""

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from dragoman.gateway.metrics import GatewayMetrics
from dragoman.metrics import Metrics, WorkMetrics
from dragoman.settings import leaves
from dragoman.stt.app import SttApp
from dragoman.translate.app import TranslateApp
from tests.deploy.services import (
    REDIS,
    REDIS_CLI_PING,
    SERVICES,
    listens_on,
    redis_bytes,
    server_options,
)

ROOT = Path(__file__).parents[2]
K8S = ROOT / "deploy" / "k8s"
KUSTOMIZE = ROOT / ".tools" / "bin" / "kustomize"
COMPOSE_FILE = ROOT / "deploy" / "compose.yaml"
KUBERNETES_VALIDATE = Path(sys.executable).parent / "kubernetes-validate"
OVERLAYS = ("gpu", "cpu")
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
"""The oldest: the first where the preStop `sleep` action is on by default."""
EXIT_MARGIN_S = 5
"""Time a service needs after its drain to close channels and export its last spans."""
GPU = "nvidia.com/gpu"

Resource = dict[str, Any]


def _collectors(*owners: object) -> dict[str, MetricWrapperBase]:
    """The metrics that a service's metric objects hold, by the name Prometheus shows."""
    return {
        metric.describe()[0].name: metric
        for owner in owners
        for metric in vars(owner).values()
        if isinstance(metric, MetricWrapperBase)
    }


def _gateway_metrics() -> dict[str, MetricWrapperBase]:
    metrics = Metrics("gateway")
    return _collectors(metrics, GatewayMetrics(metrics))


def _stt_metrics() -> dict[str, MetricWrapperBase]:
    metrics = Metrics(SttApp.telemetry_name)
    return _collectors(metrics, WorkMetrics(metrics, "model"))


def _translate_metrics() -> dict[str, MetricWrapperBase]:
    metrics = Metrics(TranslateApp.telemetry_name)
    return _collectors(metrics, WorkMetrics(metrics, "backend"))


METRICS: dict[str, Callable[[], dict[str, MetricWrapperBase]]] = {
    "gateway": _gateway_metrics,
    "stt": _stt_metrics,
    "translate": _translate_metrics,
}
"""What each service exports, by Deployment name; the edge Deployment runs Envoy."""


@dataclass(frozen=True)
class Build:
    overlay: str
    text: str
    resources: list[Resource]

    def of_kind(self, kind: str) -> dict[str, Resource]:
        return {r["metadata"]["name"]: r for r in self.resources if r["kind"] == kind}

    def template(self, deployment: str) -> Resource:
        return self.of_kind("Deployment")[deployment]["spec"]["template"]

    def container(self, deployment: str) -> Resource:
        (container,) = self.template(deployment)["spec"]["containers"]
        return container

    def autoscaled(self) -> set[str]:
        """The Deployments an autoscaler owns the count of."""
        return {
            hpa["spec"]["scaleTargetRef"]["name"]
            for hpa in self.of_kind("HorizontalPodAutoscaler").values()
        }

    def selected(self, selector: Resource) -> set[str]:
        """The Deployments whose pods a label selector selects."""
        return {
            name
            for name in self.of_kind("Deployment")
            if _selects(selector, self.template(name)["metadata"]["labels"])
        }

    def environment(self, deployment: str) -> dict[str, str]:
        """The container's variables: its ConfigMaps', then its own literal ones."""
        config_maps = self.of_kind("ConfigMap")
        container = self.container(deployment)
        environment: dict[str, str] = {}
        for source in container.get("envFrom", []):
            environment.update(config_maps[source["configMapRef"]["name"]]["data"])
        environment.update(
            {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
        )
        return environment

    def settings(self, deployment: str) -> Any:
        """The settings the service starts with in this pod, validated as at its start: the
        process's own variables of the service are set aside while they are read."""
        service = SERVICES[deployment]
        variables = {
            name: value
            for name, value in self.environment(deployment).items()
            if name.startswith(service.prefix)
        }
        unknown = {
            name
            for name in variables
            if name.removeprefix(service.prefix).lower()
            not in {path[-1] for path, _ in leaves(service.settings)}
        }
        assert not unknown, f"{self.overlay}: {deployment} has no settings {sorted(unknown)}"
        with pytest.MonkeyPatch.context() as patch:
            for name in list(os.environ):
                if name.startswith(service.prefix):
                    patch.delenv(name)
            for name, value in variables.items():
                patch.setenv(name, value)
            return service.settings()


@pytest.fixture(scope="module", params=OVERLAYS)
def build(request: pytest.FixtureRequest) -> Build:
    if not KUSTOMIZE.is_file():
        pytest.fail(f"{KUSTOMIZE.relative_to(ROOT)} is missing: run `make deploy-tools`")
    overlay = request.param
    result = subprocess.run(
        [str(KUSTOMIZE), "build", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"kustomize build overlays/{overlay}:\n{result.stderr}"
    return Build(overlay, result.stdout, list(yaml.safe_load_all(result.stdout)))


def _selects(selector: Resource, labels: dict[str, str]) -> bool:
    assert set(selector) == {"matchLabels"}, "selectors here are plain label matches"
    return selector["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_overlay_passes_the_api_schemas(build: Build, version: str, tmp_path: Path) -> None:
    manifests = tmp_path / f"{build.overlay}.yaml"
    manifests.write_text(build.text)
    result = subprocess.run(
        [str(KUBERNETES_VALIDATE), "--strict", "--quiet", "-k", version, str(manifests)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_deployment_runs_a_known_workload(build: Build) -> None:
    assert set(build.of_kind("Deployment")) == {*SERVICES, "edge", REDIS}


def test_settings_are_valid_and_listen_beyond_loopback(build: Build) -> None:
    for deployment in SERVICES:
        assert build.settings(deployment).host == "0.0.0.0", deployment


def test_probes_ask_the_ports_and_health_services_the_code_serves(build: Build) -> None:
    for deployment in SERVICES:
        settings = build.settings(deployment)
        container = build.container(deployment)
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        expected = {"grpc": settings.port, "metrics": settings.metrics_port}
        if deployment == "gateway":
            expected["http"] = settings.http_port
        assert ports == expected, deployment
        annotations = build.template(deployment)["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(settings.metrics_port), deployment
        name = SERVICES[deployment].health_name
        for kind in ("startupProbe", "readinessProbe"):
            assert container[kind]["grpc"] == {"port": settings.port, "service": name}, (
                deployment,
                kind,
            )
        # Liveness asks for the whole server: see gateway.yaml.
        assert container["livenessProbe"]["grpc"] == {"port": settings.port}, deployment


def test_every_container_is_probed_on_a_port_it_opens(build: Build) -> None:
    for name in build.of_kind("Deployment"):
        container = build.container(name)
        ports = {port["containerPort"] for port in container["ports"]}
        readiness, liveness = container["readinessProbe"], container["livenessProbe"]
        # Readiness asks the server for an answer; a TCP connect would pass while it loads.
        # Redis's exec probes are checked with Redis below.
        assert readiness.keys() & {"grpc", "httpGet", "exec"}, name
        assert liveness.keys() & {"grpc", "httpGet", "tcpSocket", "exec"}, name
        for probe in (readiness, liveness, container.get("startupProbe", {})):
            for action in ("grpc", "httpGet", "tcpSocket"):
                if action in probe:
                    assert probe[action]["port"] in ports, (name, probe)


def test_termination_grace_covers_prestop_and_drain(build: Build) -> None:
    """Replicas that others balance over leave the endpoints and DNS before SIGTERM; a
    single replica (Redis) has no other to send its clients to, and need not wait."""
    autoscaled = build.autoscaled()
    for name in build.of_kind("Deployment"):
        grace_s = build.template(name)["spec"]["terminationGracePeriodSeconds"]
        lifecycle = build.container(name).get("lifecycle", {})
        assert name not in autoscaled or "preStop" in lifecycle, name
        pre_stop_s = lifecycle.get("preStop", {}).get("sleep", {}).get("seconds", 0)
        drain_s = build.settings(name).drain_grace_s if name in SERVICES else 0
        assert grace_s >= pre_stop_s + drain_s + EXIT_MARGIN_S, name


def test_liveness_outlasts_a_drain(build: Build) -> None:
    """Health is NOT_SERVING for the whole drain; even were the kubelet to go on probing a
    pod being deleted (it stops), liveness would not fail before the pod is gone."""
    for name in SERVICES:
        container = build.container(name)
        not_serving_s = (
            build.template(name)["spec"]["terminationGracePeriodSeconds"]
            - container["lifecycle"]["preStop"]["sleep"]["seconds"]
        )
        liveness = container["livenessProbe"]
        assert (liveness["failureThreshold"] - 1) * liveness["periodSeconds"] >= not_serving_s


def test_gateway_reaches_backends_through_headless_services(build: Build) -> None:
    """gRPC balances over the addresses a name resolves to: a Service with a virtual IP
    would resolve to one, and pin each gateway to one replica."""
    services = build.of_kind("Service")
    gateway = build.settings("gateway")
    for deployment, target in (
        ("stt", gateway.backends.stt_target),
        ("translate", gateway.backends.translate_target),
    ):
        assert target.startswith("dns:///"), target
        host, _, port = target.removeprefix("dns:///").rpartition(":")
        assert services[host]["spec"].get("clusterIP") == "None", host
        (service_port,) = [p for p in services[host]["spec"]["ports"] if p["port"] == int(port)]
        assert service_port["targetPort"] == "grpc", host
        assert int(port) == build.settings(deployment).port, target
        assert _selects(
            {"matchLabels": services[host]["spec"]["selector"]},
            build.template(deployment)["metadata"]["labels"],
        ), host
    # Envoy resolves `gateway` (STRICT_DNS) to balance over and health-check each gateway.
    ports = {p["port"] for p in services["gateway"]["spec"]["ports"]}
    assert services["gateway"]["spec"].get("clusterIP") == "None"
    assert ports == {gateway.port, gateway.http_port}


def test_pods_run_unprivileged_within_requests(build: Build) -> None:
    for name in build.of_kind("Deployment"):
        pod = build.template(name)["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        container = build.container(name)
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }, name
        resources = container["resources"]
        assert {"cpu", "memory"} <= resources["requests"].keys(), name
        assert "memory" in resources["limits"], name


def test_only_stt_in_the_gpu_overlay_takes_a_gpu(build: Build) -> None:
    stt = build.container("stt")
    settings = build.settings("stt")
    image_tag = stt["image"].rpartition(":")[2]
    if build.overlay == "gpu":
        tolerations = build.template("stt")["spec"]["tolerations"]
        assert stt["resources"]["limits"][GPU] == 1
        assert {"key": GPU, "operator": "Exists", "effect": "NoSchedule"} in tolerations
        assert (settings.device, image_tag.endswith("-cuda")) == ("cuda", True)
    else:
        assert (settings.device, image_tag.endswith("-cpu")) == ("cpu", True)
        # CTranslate2 would otherwise start a thread per core of the node.
        assert settings.cpu_threads == int(stt["resources"]["requests"]["cpu"])
    for name in build.of_kind("Deployment"):
        if name == "stt" and build.overlay == "gpu":
            continue
        assert GPU not in str(build.container(name)["resources"]), name
        assert "tolerations" not in build.template(name)["spec"], name


def test_disruption_budgets_leave_one_serving_and_never_block_a_drain(build: Build) -> None:
    """Each autoscaled Deployment loses one pod at a time to a node drain, from two at
    least; a single replica has no budget, which could only hold the drain up forever."""
    budgets = build.of_kind("PodDisruptionBudget").values()
    autoscalers = {
        hpa["spec"]["scaleTargetRef"]["name"]: hpa
        for hpa in build.of_kind("HorizontalPodAutoscaler").values()
    }
    for name, deployment in build.of_kind("Deployment").items():
        labels = build.template(name)["metadata"]["labels"]
        selecting = [b for b in budgets if _selects(b["spec"]["selector"], labels)]
        if name not in autoscalers:
            assert deployment["spec"]["replicas"] == 1, name
            assert not selecting, name
            continue
        (budget,) = selecting
        assert budget["spec"]["maxUnavailable"] == 1, name
        assert autoscalers[name]["spec"]["minReplicas"] >= 2, name


def test_autoscalers_scale_deployments_on_metrics_the_code_exports(build: Build) -> None:
    deployments = build.of_kind("Deployment")
    autoscalers = build.of_kind("HorizontalPodAutoscaler").values()
    targets = [hpa["spec"]["scaleTargetRef"]["name"] for hpa in autoscalers]
    assert len(targets) == len(set(targets)), targets
    # Every Deployment with no fixed count; the fixed ones are single replicas (above).
    assert set(targets) == {n for n, d in deployments.items() if "replicas" not in d["spec"]}
    for hpa in autoscalers:
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
        name = target["name"]
        # The autoscaler owns the count: a `replicas` here would be reset by every apply.
        assert "replicas" not in deployments[name]["spec"], name
        for metric in hpa["spec"]["metrics"]:
            if metric["type"] == "Resource":
                resource = metric["resource"]["name"]
                assert resource in build.container(name)["resources"]["requests"], name
                continue
            assert metric["type"] == "Pods", name
            wanted = metric["pods"]["metric"]
            exported = METRICS[name]()
            assert wanted["name"] in exported, (name, wanted["name"], sorted(exported))
            gauge = exported[wanted["name"]]
            # Averaged over pods as it is: a counter would need a rate.
            assert gauge.describe()[0].type == "gauge", wanted["name"]
            labels = wanted.get("selector", {}).get("matchLabels", {})
            # prometheus_client keeps a metric's label names only here.
            assert labels.keys() <= set(gauge._labelnames), (wanted["name"], labels)
            if "method" in labels:
                assert labels["method"] in SERVICES[name].proto.methods_by_name, labels


def test_gateways_scale_out_before_they_refuse_streams(build: Build) -> None:
    (hpa,) = [
        hpa
        for hpa in build.of_kind("HorizontalPodAutoscaler").values()
        if hpa["spec"]["scaleTargetRef"]["name"] == "gateway"
    ]
    (streams,) = [
        m["pods"]
        for m in hpa["spec"]["metrics"]
        if m["type"] == "Pods" and m["pods"]["metric"]["name"] == "dragoman_gateway_active_streams"
    ]
    assert int(streams["target"]["averageValue"]) < build.settings("gateway").limits.max_streams


def test_monitoring_files_serve_what_the_autoscalers_ask(build: Build) -> None:
    """The Prometheus Adapter's rules name every per-pod metric an HPA uses, and the
    PodMonitor scrapes every pod that exports metrics."""
    adapter = yaml.safe_load((K8S / "monitoring" / "prometheus-adapter-values.yaml").read_text())
    served = {rule["name"]["as"]: rule["seriesQuery"] for rule in adapter["rules"]["custom"]}
    for hpa in build.of_kind("HorizontalPodAutoscaler").values():
        for metric in hpa["spec"]["metrics"]:
            if metric["type"] == "Pods":
                name = metric["pods"]["metric"]["name"]
                assert served.get(name, "").startswith(name + "{"), name
    monitor = yaml.safe_load((K8S / "monitoring" / "podmonitor.yaml").read_text())
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    for name in SERVICES:
        deployment = build.of_kind("Deployment")[name]
        assert deployment["metadata"]["namespace"] == monitor["metadata"]["namespace"], name
        labels = build.template(name)["metadata"]["labels"]
        assert _selects(monitor["spec"]["selector"], labels), name
        assert endpoint["port"] in {p["name"] for p in build.container(name)["ports"]}, name


def _redis_options(build: Build) -> dict[str, str]:
    return server_options(build.container(REDIS)["args"])


def _memory_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity in the binary units these manifests use (`512Mi`)."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    return int(quantity[:-2]) * units[quantity[-2:]]


def test_gateways_share_caption_rooms_through_the_redis_service(build: Build) -> None:
    """Rooms in one gateway's memory would give a listener only the speakers who reached
    the same gateway: every gateway names the one Redis, by its Service and port."""
    url = build.settings("gateway").redis.redis_url
    parsed = urlsplit(url)
    assert (parsed.scheme, parsed.path) == ("redis", "/0"), url
    service = build.of_kind("Service")[parsed.hostname]["spec"]
    # A virtual IP that outlives the pod: gateways reconnect to the same address when Redis
    # is replaced.
    assert service.get("clusterIP") != "None", parsed.hostname
    assert build.selected({"matchLabels": service["selector"]}) == {REDIS}, parsed.hostname
    (port,) = [p for p in service["ports"] if p["port"] == parsed.port]
    container_ports = {p["name"]: p["containerPort"] for p in build.container(REDIS)["ports"]}
    assert container_ports[port["targetPort"]] == listens_on(_redis_options(build)), url


def test_redis_is_one_probed_replica_that_keeps_nothing(build: Build) -> None:
    """Rooms are live state: nothing is saved (no RDB, no AOF), the root filesystem stays
    read-only, and the one replica is replaced, never doubled (two would split the rooms)."""
    deployment = build.of_kind("Deployment")[REDIS]["spec"]
    assert deployment["replicas"] == 1
    assert deployment["strategy"] == {"type": "Recreate"}
    assert REDIS not in build.autoscaled()
    container = build.container(REDIS)
    options = _redis_options(build)
    assert (options["save"], options["appendonly"]) == ("", "no"), "no RDB, no AOF"
    for kind in ("readinessProbe", "livenessProbe"):
        command = container[kind]["exec"]["command"]
        assert command == REDIS_CLI_PING, kind
    # valkey-cli asks the default port: the one the server listens on and the pod opens.
    assert listens_on(options) in {p["containerPort"] for p in container["ports"]}
    # Full, Valkey evicts rooms (every key expires anyway) before the kubelet kills it with
    # all of them; refusing every write instead would stop every room.
    assert redis_bytes(options["maxmemory"]) < _memory_bytes(
        container["resources"]["limits"]["memory"]
    )
    assert options["maxmemory-policy"] != "noeviction"
    # The image's entrypoint refuses to start in a working directory it cannot write.
    volumes = {v["name"]: v for v in build.template(REDIS)["spec"]["volumes"]}
    (data,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/data"]
    assert "emptyDir" in volumes[data["name"]], "no PersistentVolume: nothing is kept"


def test_only_gateways_may_reach_redis(build: Build) -> None:
    """Redis has no password: a NetworkPolicy lets the gateways in, on its port only."""
    (policy,) = [
        p
        for p in build.of_kind("NetworkPolicy").values()
        if REDIS in build.selected(p["spec"]["podSelector"])
    ]
    spec = policy["spec"]
    assert build.selected(spec["podSelector"]) == {REDIS}
    assert spec["policyTypes"] == ["Ingress"]
    container_ports = {p["name"]: p["containerPort"] for p in build.container(REDIS)["ports"]}
    (rule,) = spec["ingress"]
    # Pods of this namespace only (no namespaceSelector, no ipBlock), and only gateways.
    assert [set(peer) for peer in rule["from"]] == [{"podSelector"}]
    assert build.selected(rule["from"][0]["podSelector"]) == {"gateway"}
    (port,) = rule["ports"]
    assert port["protocol"] == "TCP"
    assert container_ports.get(port["port"], port["port"]) == listens_on(_redis_options(build))


def test_redis_runs_as_compose_runs_it(build: Build) -> None:
    """One Redis setup, tried with compose, is what the cluster gets: same image, options
    and health check."""
    compose = yaml.safe_load(COMPOSE_FILE.read_text())["services"][REDIS]
    container = build.container(REDIS)
    assert container["image"] == compose["image"]
    assert container["args"] == compose["command"]
    assert compose["healthcheck"]["test"] == [
        "CMD",
        *container["readinessProbe"]["exec"]["command"],
    ]
