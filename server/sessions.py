"""Resumable sessions: a recognition stream that outlives the connection that opened it.

A session runs its RecognitionStream in a task of its own, fed through a small queue by
whichever connection is attached, and numbers its responses into a bounded outbox. When
the connection breaks, the session is kept for the grace period: what was said before
the drop still gets its finals, held in the outbox. A connection that resumes gets the
responses it missed, then goes on feeding audio; the audio it resends that the session
has already received is compared with what was received (the last `check_s` of it) and
skipped, so nothing is recognized twice and segment ids and offsets simply continue.

Only LINEAR16 streams resume: their bytes map to stream time exactly.
"""

import asyncio
import contextlib
import hashlib
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import grpc

from dragoman.speech.v1 import speech_pb2
from server.durations import duration
from server.errors import ClientGoneError, GatewayError, InvalidRequestError
from server.stream import RecognitionStream

logger = logging.getLogger(__name__)

Request = speech_pb2.StreamingRecognizeRequest
Response = speech_pb2.StreamingRecognizeResponse
CHECKPOINT_STEP_S = 1.0
"""A checkpoint is sent when the accounted-for offset has moved on this much, or a final
went out."""
INPUT_QUEUE = 4
"""Requests between the connection and the stream: small, so flow control still holds a
fast sender back."""
RESUME_WINDOW_S = 60.0


class SessionNotFoundError(GatewayError):
    code = grpc.StatusCode.NOT_FOUND


class SessionPermissionError(GatewayError):
    code = grpc.StatusCode.PERMISSION_DENIED


class SessionAttachedError(GatewayError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class SessionRangeError(GatewayError):
    code = grpc.StatusCode.OUT_OF_RANGE


class SessionFloodError(GatewayError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


@dataclass(frozen=True)
class ResumePolicy:
    grace_s: float
    """How long a detached session is kept."""
    max_responses: int
    """Responses a session keeps for a client that may resume."""
    check_s: float
    """Received audio kept to compare with what a resuming client resends."""
    max_resumes: int
    """Resumes of one session allowed within RESUME_WINDOW_S."""


class _End:
    """The stream ended cleanly."""


class Session:
    """One resumable recognition stream."""

    def __init__(
        self,
        session_id: str,
        subject: str,
        stream: RecognitionStream,
        *,
        sample_rate_hz: int,
        frame_bytes: int,
        policy: ResumePolicy,
        on_end: Callable[["Session"], None],
    ) -> None:
        self.session_id = session_id
        self.subject = subject
        self.token = secrets.token_urlsafe(24)
        self.key = token_key(self.token)
        self.stream = stream
        self._sample_rate_hz = sample_rate_hz
        self._frame_bytes = frame_bytes
        self._bytes_per_s = sample_rate_hz * frame_bytes
        self._policy = policy
        self._on_end = on_end
        self._outbox: deque[Response] = deque()
        self._sequence = 0
        self._sent = 0
        """The last sequence yielded to a connection."""
        self._checkpointed_s = 0.0
        self._input: asyncio.Queue[Request | None] = asyncio.Queue(INPUT_QUEUE)
        self._received = bytearray()
        """The last `check_s` of received audio bytes."""
        self.received_bytes = 0
        self._changed = asyncio.Event()
        self._end: GatewayError | _End | None = None
        self._input_ended = False
        self.attached = False
        self._resumes: deque[float] = deque()
        self._grace: asyncio.TimerHandle | None = None
        self._reported = False
        self._task = asyncio.create_task(self._run(), name=f"session {session_id} run")

    @property
    def resumable(self) -> bool:
        return self._policy.grace_s > 0

    @property
    def last_sequence(self) -> int:
        return self._sequence

    async def _requests(self) -> AsyncIterator[Request]:
        while (request := await self._input.get()) is not None:
            yield request

    async def _run(self) -> None:
        try:
            async for response in self.stream.run(self._requests()):
                self._emit(response)
                if response.HasField("result") and response.result.is_final:
                    self._checkpoint(force=True)
            self._end = self.stream.ended_by or _End()
        except GatewayError as error:
            self._end = error
        except asyncio.CancelledError:
            self._end = ClientGoneError("the session was given up")
            raise
        except Exception:
            logger.exception("session failed on an unexpected error")
            self._end = GatewayError(
                f"internal error in session {self.session_id}; it is logged, please report it"
            )
        finally:
            self._changed.set()
            if not self.attached:
                self._report_end()

    def _report_end(self) -> None:
        if not self._reported:
            self._reported = True
            self._on_end(self)

    def _emit(self, response: Response) -> None:
        self._sequence += 1
        response.sequence = self._sequence
        self._outbox.append(response)
        self._trim()
        self._changed.set()

    def _trim(self) -> None:
        """Keeps `max_responses`, more only while they have not been sent at all."""
        outbox = self._outbox
        while len(outbox) > self._policy.max_responses and outbox[0].sequence <= self._sent:
            outbox.popleft()

    def _checkpoint(self, *, force: bool = False, always: bool = False) -> None:
        if not self.resumable:
            return
        accounted_s = self.stream.accounted_offset_s
        moved_s = accounted_s - self._checkpointed_s
        if not always and (moved_s <= 0 or (not force and moved_s < CHECKPOINT_STEP_S)):
            return
        self._checkpointed_s = accounted_s
        received_s = self.received_bytes / self._bytes_per_s
        self._emit(
            Response(
                checkpoint=speech_pb2.Checkpoint(
                    accounted_offset=duration(accounted_s),
                    received_offset=duration(received_s),
                )
            )
        )

    def check_resume(self, subject: str, last_sequence: int, audio_offset_s: float) -> None:
        """Raises the error a resume with these values gets, if any."""
        if subject != self.subject:
            raise SessionPermissionError(
                "this session belongs to another caller: resume it with the token that started it"
            )
        if self.attached:
            raise SessionAttachedError(
                "this session is still attached to another connection; retry in a moment"
            )
        now = time.monotonic()
        while self._resumes and now - self._resumes[0] > RESUME_WINDOW_S:
            self._resumes.popleft()
        if len(self._resumes) >= self._policy.max_resumes:
            raise SessionFloodError(
                f"this session was resumed {len(self._resumes)} times in the last "
                f"{RESUME_WINDOW_S:g} s; back off before resuming again"
            )
        self._resumes.append(now)
        if last_sequence > self._sequence:
            raise SessionRangeError(
                f"last_sequence {last_sequence} is ahead of the {self._sequence} responses "
                "this session sent"
            )
        oldest = self._outbox[0].sequence if self._outbox else self._sequence + 1
        if last_sequence < oldest - 1:
            raise SessionRangeError(
                f"responses after {last_sequence} are no longer kept (the session keeps the "
                f"last {self._policy.max_responses}); start a new stream"
            )
        received_s = self.received_bytes / self._bytes_per_s
        if self._offset_bytes(audio_offset_s) > self.received_bytes:
            raise SessionRangeError(
                f"audio_offset {audio_offset_s:.3f} s is past the {received_s:.3f} s of audio "
                "this session received: resend from the last checkpoint's accounted_offset"
            )

    async def attach(
        self, requests: AsyncIterator[Request], *, last_sequence: int, audio_offset_s: float
    ) -> AsyncIterator[Response]:
        """Feeds the connection's requests to the stream and yields the responses after
        `last_sequence` until the stream ends; raises the stream's error, if any."""
        self.attached = True
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        feeding = asyncio.create_task(
            self._feed(requests, self._offset_bytes(audio_offset_s)),
            name=f"session {self.session_id} feed",
        )
        sent = last_sequence
        closing: int | None = None
        """The sequence whose delivery confirms that the requests ended by a half-close."""
        try:
            while True:
                self._changed.clear()
                for response in list(self._outbox):
                    if response.sequence > sent:
                        sent = response.sequence
                        yield response
                        self._sent = max(self._sent, sent)
                        self._trim()
                if closing is not None and sent >= closing and not self._input_ended:
                    self._input_ended = True
                    await self._input.put(None)
                if self._end is not None and sent == self._sequence:
                    break
                if feeding.done():
                    feeding.result()  # raises what ended the connection's requests
                    if closing is None:
                        closing = self._confirm_half_close()
                        continue
                    await self._changed.wait()
                    continue
                waiting = asyncio.ensure_future(self._changed.wait())
                await asyncio.wait({waiting, feeding}, return_when=asyncio.FIRST_COMPLETED)
                waiting.cancel()
            if isinstance(self._end, GatewayError):
                raise self._end
        finally:
            feeding.cancel()
            with contextlib.suppress(asyncio.CancelledError, GatewayError):
                await feeding
            self.attached = False
            if self._end is None:
                self._grace = asyncio.get_running_loop().call_later(
                    self._policy.grace_s, self.give_up
                )
            else:
                self._report_end()

    def _offset_bytes(self, offset_s: float) -> int:
        return round(offset_s * self._sample_rate_hz) * self._frame_bytes

    async def _feed(self, requests: AsyncIterator[Request], resent_from: int) -> None:
        """The connection's requests into the stream. Its audio starts at byte
        `resent_from` of the stream: what the session has already received is compared
        and skipped."""
        position = resent_from
        async for request in requests:
            kind = request.WhichOneof("streaming_request")
            if kind == "resume":
                raise InvalidRequestError("resume may only be sent in the first message")
            if kind == "audio_content" and position < self.received_bytes:
                chunk = request.audio_content
                overlap = min(len(chunk), self.received_bytes - position)
                self._compare(chunk[:overlap], position)
                position += overlap
                if overlap == len(chunk):
                    continue
                request = Request(audio_content=chunk[overlap:])
            if kind == "audio_content":
                position += len(request.audio_content)
                self._keep(request.audio_content)
            await self._input.put(request)
            self._checkpoint()

    def _confirm_half_close(self) -> int:
        """The requests of the connection ended. gRPC ends them the same way when the
        connection is lost as when the client half-closes, so a resumable session first
        sends a checkpoint: only once it went out is this the end of the audio (a lost
        connection fails the write instead, and the session waits for a resume)."""
        if not self.resumable:
            return 0
        self._checkpoint(force=True, always=True)
        return self._sequence

    def _compare(self, resent: bytes, at: int) -> None:
        """`resent` is audio from byte `at` of the stream, which the session received:
        the part it still keeps must be the same."""
        kept_from = self.received_bytes - len(self._received)
        low, high = max(at, kept_from), min(at + len(resent), self.received_bytes)
        if (
            low < high
            and self._received[low - kept_from : high - kept_from] != resent[low - at : high - at]
        ):
            raise InvalidRequestError(
                "the resent audio differs from the audio this session received at that "
                "offset: resend exactly what was captured, from the last checkpoint's "
                "accounted_offset"
            )

    def _keep(self, chunk: bytes) -> None:
        self.received_bytes += len(chunk)
        self._received += chunk
        limit = round(self._policy.check_s * self._bytes_per_s)
        if len(self._received) > limit:
            del self._received[: len(self._received) - limit]

    def give_up(self) -> None:
        """Ends a detached session whose grace period is over."""
        if not self.attached and self._end is None:
            logger.info("session %s not resumed within its grace period", self.session_id)
            self._task.cancel()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def token_key(token: str) -> str:
    """Sessions are found by a digest of their token, so no table holds the token."""
    return hashlib.sha256(token.encode()).hexdigest()


class SessionRegistry:
    """The sessions of one gateway, by token digest."""

    def __init__(self, policy: ResumePolicy) -> None:
        self.policy = policy
        self._sessions: dict[str, Session] = {}
        self._ended: list[Callable[[Session], None]] = []

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self):
        return iter(list(self._sessions.values()))

    def on_end(self, callback: Callable[[Session], None]) -> None:
        """`callback` runs once for each session that ends (or is given up)."""
        self._ended.append(callback)

    def start(
        self,
        session_id: str,
        subject: str,
        stream: RecognitionStream,
        *,
        sample_rate_hz: int,
        frame_bytes: int,
        resumable: bool,
    ) -> Session:
        policy = self.policy if resumable else ResumePolicy(0.0, 0, 0.0, 0)
        session = Session(
            session_id,
            subject,
            stream,
            sample_rate_hz=sample_rate_hz,
            frame_bytes=frame_bytes,
            policy=policy,
            on_end=self._end,
        )
        if resumable:
            self._sessions[session.key] = session
        return session

    def find(self, token: str) -> Session:
        session = self._sessions.get(token_key(token))
        if session is None:
            raise SessionNotFoundError(
                "no session has this resume token: it is unknown, or its grace period is "
                "over; start a new stream"
            )
        return session

    def _end(self, session: Session) -> None:
        if self._sessions.get(session.key) is session:
            del self._sessions[session.key]
        for callback in self._ended:
            callback(session)

    async def close(self) -> None:
        await asyncio.gather(*(session.close() for session in list(self._sessions.values())))
