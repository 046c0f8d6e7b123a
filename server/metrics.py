"""What the gateway counts: streams, audio, utterances, latency, rooms."""

from prometheus_client import Counter, Gauge, Histogram

from dragoman.metrics import Metrics

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30)


class GatewayMetrics:
    """The gateway's own series, in its registry (`dragoman_gateway_*`)."""

    def __init__(self, metrics: Metrics) -> None:
        prefix, registry = metrics.prefix, metrics.registry
        self.active_streams = Gauge(
            f"{prefix}_active_streams",
            "Recognition streams open now, by transport (grpc, websocket)",
            ["transport"],
            registry=registry,
        )
        self.streams = Counter(
            f"{prefix}_streams", "Recognition streams opened", ["transport"], registry=registry
        )
        self.stream_errors = Counter(
            f"{prefix}_stream_errors",
            "Streams ended by an error, by transport and gRPC status code",
            ["transport", "code"],
            registry=registry,
        )
        self.resumes = Counter(
            f"{prefix}_resumes",
            "Sessions resumed: on the gateway that held them (held), or rebuilt here from "
            "the session store (rebuilt)",
            ["kind"],
            registry=registry,
        )
        self.audio_seconds = Counter(
            f"{prefix}_audio_seconds", "Audio received, in seconds", registry=registry
        )
        self.throttled_seconds = Counter(
            f"{prefix}_throttled_seconds",
            "Time streams were not read because their audio arrived faster than max_speedup",
            registry=registry,
        )
        self.stt_discarded_seconds = Counter(
            f"{prefix}_stt_discarded_seconds",
            "Model time of STT results that the gateway received and did not use (an "
            "interim whose segment was final already, a speculation that speech overtook "
            "with interims off)",
            registry=registry,
        )
        self.utterances = Counter(
            f"{prefix}_utterances",
            "Utterances given a final result, by why they ended",
            ["endpoint_reason"],
            registry=registry,
        )
        self.suppressed = Counter(
            f"{prefix}_suppressed_results",
            "Final transcripts withheld as likely hallucinations, by reason",
            ["reason"],
            registry=registry,
        )
        self.interim_latency = Histogram(
            f"{prefix}_interim_latency_seconds",
            "From the audio an interim result covers reaching the gateway to the result leaving",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.final_latency = Histogram(
            f"{prefix}_final_latency_seconds",
            "From the end of an utterance's audio reaching the gateway to its final result",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.tasks = Gauge(
            f"{prefix}_tasks", "asyncio tasks of the gateway's event loop", registry=registry
        )
        self.caption_listeners = Gauge(
            f"{prefix}_caption_listeners", "StreamCaptions listeners now", registry=registry
        )
        self.room_publish_latency = Histogram(
            f"{prefix}_room_publish_latency_seconds",
            "From a final leaving its stream's pipeline to its caption being in the room "
            "store, translations for the room's listeners included",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.room_publish_failures = Counter(
            f"{prefix}_room_publish_failures",
            "Results not published to their caption room, by why (store: the room store "
            "did not answer; queue_full: results piled up behind it; error: a bug, logged)",
            ["reason"],
            registry=registry,
        )
        self.room_translations = Counter(
            f"{prefix}_room_translations",
            "Translations made for caption listeners (beyond those their speakers asked for)",
            registry=registry,
        )
