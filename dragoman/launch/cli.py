"""The `dragoman` command: run the services, stream files, benchmark, show settings."""

import argparse
import asyncio
import importlib
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from dragoman import logs
from dragoman.gateway.settings import GatewaySettings
from dragoman.launch.stack_settings import EdgeSettings, TopologySettings
from dragoman.settings import (
    SettingsError,
    SettingsT,
    add_arguments,
    declared,
    describe,
    from_arguments,
    updated,
)
from dragoman.stt.settings import SttSettings
from dragoman.translate.settings import TranslateSettings

if TYPE_CHECKING:
    from dragoman.launch.embedded import EmbeddedStack

CLIENT_FILES = resources.files("dragoman.clients")
SAMPLE = CLIENT_FILES / "samples" / "jfk.wav"
PAGE = CLIENT_FILES / "web" / "dist"
"""The live-captions page the distribution carries (`make web` builds it)."""
STT_PREFIX = "stt_"
TRANSLATE_PREFIX = "translate_"
EDGE_PREFIX = "edge_"
SERVICES = {"gateway": GatewaySettings, "stt": SttSettings, "translator": TranslateSettings}
APPS = {
    "gateway": "dragoman.gateway.app",
    "stt": "dragoman.stt.app",
    "translator": "dragoman.translate.app",
}
"""Imported by name: each service's image carries its own dependencies only."""
CONFIGURED = {**SERVICES, "edge": EdgeSettings, "stack": TopologySettings}
FLAG_PREFIXES = {EdgeSettings: EDGE_PREFIX}
"""Settings with no command of their own, whose flags exist only with a prefix."""
BackendT = TypeVar("BackendT", SttSettings, TranslateSettings)


def _embedded_arguments(parser: argparse.ArgumentParser, *, edge: bool = True) -> None:
    add_arguments(parser, GatewaySettings)
    add_arguments(parser, SttSettings, prefix=STT_PREFIX)
    add_arguments(parser, TranslateSettings, prefix=TRANSLATE_PREFIX)
    if edge:
        add_arguments(parser, EdgeSettings, prefix=EDGE_PREFIX)


def _client_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target", default="127.0.0.1:50051", help="gateway address (default: %(default)s)"
    )
    parser.add_argument("--language", default="", help="ISO 639-1 code; empty detects")
    parser.add_argument("--model", default="", help="model name; empty is the service default")


def _gateway_default(name: str) -> float:
    return declared(GatewaySettings, name).default


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dragoman", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve", help="gateway, STT and translation in one process (loopback gRPC)"
    )
    _embedded_arguments(serve)

    demo = commands.add_parser(
        "demo", help="like serve, and first streams a sample through it, showing the transcript"
    )
    demo.add_argument("file", nargs="?", default=str(SAMPLE), help="audio file to stream")
    demo.add_argument("--translate", default="", help="comma-separated target languages")
    _embedded_arguments(demo)

    stack = commands.add_parser(
        "stack",
        help="every service in processes of its own: STT and translation replicas, the gateway "
        "balancing over them, Envoy in front",
    )
    add_arguments(stack, TopologySettings)
    _embedded_arguments(stack)

    gateway = commands.add_parser("gateway", help="the public gateway alone")
    add_arguments(gateway, GatewaySettings)

    stt = commands.add_parser("stt", help="the STT service alone")
    add_arguments(stt, SttSettings)

    translator = commands.add_parser("translator", help="the translation service alone")
    add_arguments(translator, TranslateSettings)

    transcribe = commands.add_parser("transcribe", help="stream an audio file to a gateway")
    transcribe.add_argument("file", help="any audio file PyAV can decode")
    _client_arguments(transcribe)
    transcribe.add_argument(
        "--fast",
        action="store_true",
        help="send as fast as the server reads: a live stream is read at most max_speedup "
        "times faster than real time after a speedup_burst_s head start "
        f"({_gateway_default('max_speedup'):g}x after {_gateway_default('speedup_burst_s'):g} "
        "s by default), the server holding the sender back by flow control; use Recognize "
        "for a whole file at full speed",
    )
    transcribe.add_argument("--json", action="store_true", help="every response as a JSON line")
    transcribe.add_argument("--no-interim", action="store_true", help="final results only")
    transcribe.add_argument(
        "--no-resume",
        action="store_true",
        help="fail when the connection breaks, instead of resuming the session",
    )
    transcribe.add_argument("--words", action="store_true", help="ask for word time offsets")
    transcribe.add_argument(
        "--translate", default="", help="comma-separated target languages (pt,en)"
    )

    bench = commands.add_parser(
        "bench",
        help="latency, WER and cost on one continuous conversation of real speech",
        description="Streams one conversation built from the clips (turns of several "
        "sentences, short pauses inside a turn, long ones between, a monologue past the "
        "maximum utterance) to `dragoman serve` in its own process, at real-time pace, from "
        "each of N clients; latencies run from the true speech boundaries of the audio. "
        "Flags it does not know go to `dragoman serve` (e.g. --stt-final-beam-size 1).",
    )
    bench.add_argument(
        "--models", default="tiny.en", help="comma-separated models (default: %(default)s)"
    )
    bench.add_argument(
        "--concurrency",
        default="1,2,4,8",
        help="clients streaming the conversation at once, a run per value (default: %(default)s)",
    )
    bench.add_argument(
        "--offset-s", type=float, default=3.0, help="start of each client after the previous"
    )
    bench.add_argument(
        "--clips",
        action="append",
        default=[],
        help="folder with a manifest.json of clips, repeatable (default: tests/data/speech)",
    )
    bench.add_argument("--seed", type=int, default=7, help="arrangement of the conversation")
    bench.add_argument("--json", default="", help="also write every figure to this file")
    bench.add_argument(
        "--per-clip",
        action="store_true",
        help="the older benchmark instead: each clip its own stream, with translation "
        "latency (--streams, --translate, --language apply)",
    )
    bench.add_argument(
        "--windows",
        action="store_true",
        help="the STT engine alone instead: WER and cost per call of each encoder window "
        "policy, every clip one request",
    )
    bench.add_argument("--streams", type=int, default=1, help="--per-clip: concurrent streams")
    bench.add_argument("--language", default="en", help="--per-clip: clips of this language")
    bench.add_argument("--translate", default="", help="--per-clip: targets for the finals")

    room_bench = commands.add_parser(
        "room-bench",
        help="caption rooms across two gateways: final-to-listener latency, listeners held",
        description="Starts two gateways on a redis-server (the stack's topology), then "
        "measures the time from a speaker's final to its caption on a listener of the other "
        "gateway, and how many listeners one gateway holds with finals within 100 ms.",
    )
    room_bench.add_argument(
        "--seconds", type=float, default=60.0, help="speech streamed at real-time pace"
    )
    room_bench.add_argument(
        "--listeners",
        default="100,250,500,1000",
        help="listener counts of one gateway, a run per value (default: %(default)s)",
    )

    resume_bench = commands.add_parser(
        "resume-bench",
        help="streams whose connection is cut again and again: resume time, finals lost",
        description="Streams real speech through a TCP proxy that is cut every few seconds "
        "and compares the finals with an unbroken run of the same audio.",
    )
    resume_bench.add_argument("--drops", type=int, default=50, help="connections cut")
    resume_bench.add_argument("--every-s", type=float, default=1.5, help="seconds between two cuts")
    resume_bench.add_argument(
        "--across-gateways",
        action="store_true",
        help="two gateways sharing a real redis-server; each cut moves the stream to the other",
    )

    soak = commands.add_parser(
        "soak", help="many real-time streams against `dragoman serve`; memory, fds, tasks"
    )
    soak.add_argument("--streams", type=int, default=6, help="concurrent streams")
    soak.add_argument("--minutes", type=float, default=3.0, help="how long")
    soak.add_argument(
        "--settle-s", type=float, default=30.0, help="wait after the last stream, seconds"
    )

    health = commands.add_parser(
        "health", help="ask a service's grpc.health.v1; exit status 0 only when SERVING"
    )
    health.add_argument("target", nargs="?", default="127.0.0.1:50051", help="host:port")
    health.add_argument("--service", default="", help="service name; empty: the whole server")
    health.add_argument("--timeout-s", type=float, default=5.0, help="deadline of the check")
    health.add_argument("--tls-ca-file", default="", help="PEM CA, when the port is TLS")

    prepare = commands.add_parser(
        "prepare-models",
        help="resolve, join and verify STT models into the model cache (for images)",
    )
    prepare.add_argument(
        "--models", default="tiny.en", help="comma-separated models (default: %(default)s)"
    )
    prepare.add_argument(
        "--cache-dir", default="", help="model cache; empty: DRAGOMAN_STT_MODEL_CACHE_DIR's"
    )

    envoy_config = commands.add_parser(
        "envoy-config", help="print deploy/envoy.yaml rendered for given addresses (for images)"
    )
    envoy_config.add_argument("--listen", default="0.0.0.0:8080", help="public host:port")
    envoy_config.add_argument("--grpc", default="gateway:50051", help="the gateway's gRPC")
    envoy_config.add_argument("--http", default="gateway:8081", help="the gateway's HTTP port")
    envoy_config.add_argument("--admin-port", type=int, default=9901, help="admin, on loopback")

    config = commands.add_parser("config", help="print the effective settings")
    config.add_argument("service", choices=list(CONFIGURED), nargs="?")
    config.add_argument(
        "--markdown", action="store_true", help="the defaults as the README's settings table"
    )
    return parser


def _settings(
    cls: type[SettingsT], args: argparse.Namespace, prefix: str = "", **overrides: object
) -> SettingsT:
    """A service's settings; a gateway given no web root serves the page of the distribution."""
    settings = from_arguments(cls, args, prefix, **overrides)
    if isinstance(settings, GatewaySettings) and not settings.web_root:
        return updated(settings, web_root=str(PAGE))
    return settings


def _embedded_service(
    cls: type[BackendT], args: argparse.Namespace, prefix: str, gateway: GatewaySettings
) -> BackendT:
    """An embedded service listens on loopback, on a free port unless its flag gives one.
    When the gateway's metrics take a free port (`--metrics-port 0`), so do the service's,
    unless its own flag or variable sets them: their fixed defaults would otherwise collide
    with another stack on the same host."""
    free = {} if hasattr(args, prefix + "port") else {"port": 0}
    settings = from_arguments(cls, args, prefix, host="127.0.0.1", **free)
    if gateway.metrics_port == 0 and "metrics_port" not in settings.model_fields_set:
        return updated(settings, metrics_port=0)
    return settings


def _embedded_stack(args: argparse.Namespace, *, edge: bool = True) -> "EmbeddedStack":
    """The stack of `serve`, `demo` and (without Envoy) `bench`."""
    from dragoman.launch.embedded import EmbeddedStack

    gateway = _settings(GatewaySettings, args)
    return EmbeddedStack(
        gateway,
        _embedded_service(SttSettings, args, STT_PREFIX, gateway),
        _embedded_service(TranslateSettings, args, TRANSLATE_PREFIX, gateway),
        from_arguments(EdgeSettings, args, EDGE_PREFIX, **({} if edge else {"enabled": False})),
    )


def _targets(value: str) -> list[str]:
    return [code.strip() for code in value.split(",") if code.strip()]


def _print_settings(classes: list[type[BaseSettings]], markdown: bool) -> None:
    """The effective settings, or with --markdown the declared defaults as a table."""
    if markdown:
        print("| variable | flag | default | meaning |\n| --- | --- | --- | --- |")
        for cls in classes:
            for flag, variable, value, description in describe(
                cls, flag_prefix=FLAG_PREFIXES.get(cls, "")
            ):
                print(f"| `{variable}` | `{flag}` | `{value}` | {description} |")
        return
    for cls in classes:
        print(f"# {cls.__name__}")
        for flag, variable, value, _ in describe(cls, cls(), FLAG_PREFIXES.get(cls, "")):
            print(f"{variable}={value}  ({flag})")


async def _serve_one(args: argparse.Namespace) -> int:
    """`dragoman gateway | stt | translator`: one service, its own settings."""
    settings = _settings(SERVICES[args.command], args)
    logs.configure(settings.log_level, settings.log_json)
    await importlib.import_module(APPS[args.command]).serve(settings)
    return 0


async def _serve_embedded(args: argparse.Namespace) -> int:
    """`dragoman serve | demo`: every service in this process."""
    from dragoman.clients.transcribe import transcribe
    from dragoman.launch.embedded import run

    stack = _embedded_stack(args)
    gateway = stack.gateway_settings
    quiet_demo = args.command == "demo" and not hasattr(args, "log_level")
    logs.configure("WARNING" if quiet_demo else gateway.log_level, gateway.log_json)

    async def ready() -> None:
        if args.command == "demo":
            address = stack.public_address
            print(f"streaming {args.file} to {address} at real-time pace:", flush=True)
            await transcribe(
                address,
                args.file,
                realtime=True,
                json_lines=False,
                translation_targets=_targets(args.translate),
            )
            print()
        _print_ready(stack.endpoints())

    await run(stack, ready)
    return 0


def _print_ready(endpoints: list[tuple[str, str]]) -> None:
    width = max(len(what) for what, _ in endpoints)
    print("Dragoman is ready:", flush=True)
    for what, where in endpoints:
        print(f"  {what:<{width}}  {where}")
    print("Press Ctrl-C to stop.", flush=True)


async def _serve_topology(args: argparse.Namespace) -> int:
    """`dragoman stack`: a process per service and replica."""
    from dragoman.launch.embedded import run
    from dragoman.launch.topology import Topology

    gateway = _settings(GatewaySettings, args)
    logs.configure(gateway.log_level, gateway.log_json)
    topology = Topology(
        from_arguments(TopologySettings, args),
        gateway,
        from_arguments(SttSettings, args, STT_PREFIX),
        from_arguments(TranslateSettings, args, TRANSLATE_PREFIX),
        from_arguments(EdgeSettings, args, EDGE_PREFIX),
    )

    async def ready() -> None:
        _print_ready(topology.endpoints())

    await run(topology, ready)
    return 0


def _prepare_models(args: argparse.Namespace) -> int:
    """Done at image build time, so that containers start without writing to their disk."""
    from dragoman.stt.models import prepare

    cache_dir = (
        Path(args.cache_dir).expanduser() if args.cache_dir else SttSettings().model_cache_dir
    )
    for name in _targets(args.models):
        model = prepare(name, cache_dir)
        print(f"{name}: {model.directory} ({len(model.sha256)} files verified)")
    return 0


def _envoy_config(args: argparse.Namespace) -> int:
    from dragoman.launch.envoy_config import CONFIG, render_file

    print(
        render_file(
            CONFIG,
            listen=_address(args.listen),
            admin_port=args.admin_port,
            grpc_addresses=[_address(args.grpc)],
            http_addresses=[_address(args.http)],
        ),
        end="",
    )
    return 0


def _address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise SettingsError(f"expected host:port, got {value!r}")
    return host, int(port)


async def _bench(args: argparse.Namespace, serve_args: list[str]) -> int:
    """`serve_args`: the flags `bench` does not know, for the server it measures."""
    logs.configure("WARNING")
    embedded = _embedded_stack(_parser().parse_args(["serve", *serve_args]), edge=False)
    if args.per_clip:
        from dragoman.clients.bench import Languages, run_benchmark

        return await run_benchmark(
            embedded,
            models=args.models.split(","),
            manifest=None,
            streams=args.streams,
            languages=Languages(args.language, _targets(args.translate)),
        )
    from dragoman.clients import conversation, conversation_bench
    from dragoman.clients.bench import DEFAULT_MANIFEST

    folders = [Path(folder) for folder in args.clips] or [DEFAULT_MANIFEST]
    clips = [clip for folder in folders for clip in conversation.load_clips(folder)]
    if args.windows:
        from dragoman.clients import window_bench

        cache_dir = embedded.stt_settings.model_cache_dir
        return await asyncio.to_thread(window_bench.run, args.models.split(","), clips, cache_dir)
    return await conversation_bench.run(
        conversation.build(clips, seed=args.seed),
        models=args.models.split(","),
        levels=[int(level) for level in args.concurrency.split(",")],
        offset_s=args.offset_s,
        serve_args=serve_args,
        cache_dir=embedded.stt_settings.model_cache_dir,
        json_path=args.json,
    )


async def _dispatch(args: argparse.Namespace, serve_args: list[str]) -> int:
    if args.command in SERVICES:
        return await _serve_one(args)
    if args.command == "stack":
        return await _serve_topology(args)
    if args.command in ("serve", "demo"):
        return await _serve_embedded(args)
    if args.command == "transcribe":
        from dragoman.clients.transcribe import transcribe

        logs.configure("WARNING")
        return await transcribe(
            args.target,
            args.file,
            realtime=not args.fast,
            json_lines=args.json,
            language_code=args.language,
            model=args.model,
            interim_results=not args.no_interim,
            word_time_offsets=args.words,
            translation_targets=_targets(args.translate),
            resume=not args.no_resume,
        )
    if args.command == "soak":
        from dragoman.clients.soak import soak

        logs.configure("WARNING")
        return await soak(args.streams, args.minutes, args.settle_s)
    if args.command == "bench":
        return await _bench(args, serve_args)
    if args.command == "resume-bench":
        from dragoman.clients.resume_bench import run_resume_bench

        logs.configure("WARNING")
        return await run_resume_bench(
            args.drops, args.every_s, across_gateways=args.across_gateways
        )
    if args.command == "room-bench":
        from dragoman.clients.room_bench import run_room_bench

        logs.configure("WARNING")
        return await run_room_bench(args.seconds, [int(n) for n in args.listeners.split(",")])
    raise AssertionError(args.command)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, serve_args = parser.parse_known_args(argv)
    if serve_args and args.command != "bench":
        parser.error(f"unrecognized arguments: {' '.join(serve_args)}")
    try:
        if args.command == "health":
            from dragoman.clients.health import check

            ca = Path(args.tls_ca_file).read_bytes() if args.tls_ca_file else None
            return asyncio.run(check(args.target, args.service, args.timeout_s, ca))
        if args.command == "prepare-models":
            return _prepare_models(args)
        if args.command == "envoy-config":
            return _envoy_config(args)
        if args.command == "config":
            chosen = [CONFIGURED[args.service]] if args.service else list(CONFIGURED.values())
            _print_settings(chosen, args.markdown)
            return 0
        return asyncio.run(_dispatch(args, serve_args))
    except (SettingsError, ValidationError) as error:
        print(f"dragoman: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
