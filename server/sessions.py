"""Resumable sessions: a recognition stream that outlives the connection that opened it.

A session runs its RecognitionStream in a task of its own, fed through a small queue by
whichever connection is attached, and numbers its responses into a bounded outbox. When
the connection breaks, the session is kept for the grace period: what was said before
the drop still gets its finals, held in the outbox. A connection that resumes gets the
responses it missed, then goes on feeding audio; the audio it resends that the session
has already received is compared with what was received (the last `resume_check_s` of it) and
skipped, so nothing is recognized twice and segment ids and offsets simply continue.

With a session store (Redis), the session is also written there after each batch of
responses, before any of them is sent: a resume that lands on another gateway, or follows
a killed one, finds the responses the client may lack and the last checkpoint, and
rebuilds the pipeline there from the resent audio. A gateway that shuts down hands its
sessions over that way: a last checkpoint tells each client to resume elsewhere at once.

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

import grpc

from dragoman.api.speech.v1 import speech_pb2
from dragoman.durations import duration
from dragoman.errors import InvalidRequestError, StatusError
from dragoman.gateway.audio import SAMPLE_RATE_HZ
from dragoman.gateway.errors import ClientGoneError, DrainingError, internal_error
from dragoman.gateway.segmenter import STREAM_START
from dragoman.gateway.session_store import (
    RedisSessionStore,
    SessionRecord,
    SessionState,
    SessionStoreUnavailableError,
)
from dragoman.gateway.settings import ResumePolicy
from dragoman.gateway.stream import RecognitionStream

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
ATTACHED_WAIT_S = 1.0
ATTACHED_POLL_S = 0.02


class SessionNotFoundError(StatusError):
    code = grpc.StatusCode.NOT_FOUND


class SessionPermissionError(StatusError):
    code = grpc.StatusCode.PERMISSION_DENIED


class SessionAttachedError(StatusError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class SessionRangeError(StatusError):
    code = grpc.StatusCode.OUT_OF_RANGE


class SessionFloodError(StatusError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class SessionMovedError(StatusError):
    """Another connection resumed the session on another gateway."""

    code = grpc.StatusCode.ABORTED


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
        config: speech_pb2.StreamingRecognitionConfig,
        token: str,
        sample_rate_hz: int,
        frame_bytes: int,
        policy: ResumePolicy,
        on_end: Callable[["Session"], None],
        store: RedisSessionStore | None = None,
        epoch: int = 0,
        restored: SessionRecord | None = None,
    ) -> None:
        """With `store`, the session is written there under `epoch`; a session `restored`
        from it continues that record's sequence and outbox from its checkpoint."""
        self.session_id = session_id
        self.subject = subject
        self.config = config
        self.token = token
        self.key = token_key(token)
        self.stream = stream
        self._sample_rate_hz = sample_rate_hz
        self._frame_bytes = frame_bytes
        self._bytes_per_s = sample_rate_hz * frame_bytes
        self._policy = policy
        self._on_end = on_end
        self.epoch = epoch
        self._outbox: deque[Response] = deque(restored.outbox if restored else ())
        self._sequence = restored.sequence if restored else 0
        self._written = self._sequence
        """The last sequence written to the store, or given up on while it did not
        answer: only those are sent."""
        self._stored = self._sequence
        """The last sequence the store has: the next write starts after it."""
        self._sent = 0
        """The last sequence yielded to a connection."""
        self._point = restored.point if restored else STREAM_START
        """The last checkpoint's resume point."""
        self._checkpointed_s = self._point.offset_s
        self._input: asyncio.Queue[Request | None] = asyncio.Queue(INPUT_QUEUE)
        self._received = bytearray()
        """The last `resume_check_s` of received audio bytes."""
        self.received_bytes = self._offset_bytes(self._checkpointed_s)
        self._changed = asyncio.Event()
        self._dirty = asyncio.Event()
        self._end: StatusError | _End | None = None
        self._input_ended = False
        self.attached = False
        self.handed_over = False
        """The session left this gateway (handed over, or claimed by another): its record
        in the store is no longer this gateway's to delete."""
        self._resumes: deque[float] = deque()
        self._grace: asyncio.TimerHandle | None = None
        self._reported = False
        self._task = asyncio.create_task(self._run(), name=f"session {session_id} run")
        self._mirror = (
            asyncio.create_task(self._write(store), name=f"session {session_id} write")
            if store is not None and self.resumable
            else None
        )

    @property
    def resumable(self) -> bool:
        return self._policy.resume_grace_s > 0

    @property
    def shared(self) -> bool:
        """Written to the session store: another gateway can take it over."""
        return self._mirror is not None

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
        except StatusError as error:
            self._end = error
        except asyncio.CancelledError:
            self._end = self._end or ClientGoneError("the session was given up")
            raise
        except Exception:
            logger.exception("session failed on an unexpected error")
            self._end = StatusError(internal_error(self.session_id))
        finally:
            self._changed.set()
            if not self.attached and not self.handed_over:
                self._report_end()

    def _report_end(self) -> None:
        if not self._reported:
            self._reported = True
            if self._mirror is not None:
                self._mirror.cancel()
            self._on_end(self)

    def _emit(self, response: Response) -> None:
        self._sequence += 1
        response.sequence = self._sequence
        self._outbox.append(response)
        self._trim()
        if self._mirror is None:
            self._written = self._sequence
            self._changed.set()
        else:
            self._dirty.set()

    async def _write(self, store: RedisSessionStore) -> None:
        """Writes what changed to the store, and at least every `store.refresh_s`, which
        keeps the record alive. While Redis does not answer the session goes on unwritten: a
        resume on this gateway still works, one elsewhere finds an older record and is
        refused rather than given duplicates (its last_sequence is ahead of the record).
        Once Redis answers again, the responses it missed are written with the next batch."""
        failing = False
        while not self._reported:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(store.refresh_s):
                    await self._dirty.wait()
            self._dirty.clear()
            sequence = self._sequence
            languages = self.stream.languages
            unstored = [r for r in self._outbox if r.sequence > self._stored]
            state = SessionState(
                responses=unstored,
                gap=(unstored[0].sequence if unstored else sequence + 1) > self._stored + 1,
                sequence=sequence,
                point=self._point,
                attached=self.attached,
                owned=not self.handed_over,
                spoken=languages.spoken,
                targets=languages.targets,
            )
            try:
                kept = await store.save(self.key, self.epoch, state)
                if kept is None:
                    await self._write_again(store)
                    continue
                self._stored = sequence
                failing = False
            except SessionStoreUnavailableError as error:
                if not failing:
                    logger.warning("session not written: %s", error)
                kept, failing = True, True
            self._written = sequence
            self._changed.set()
            if not kept:
                self._moved()
                return

    async def _write_again(self, store: RedisSessionStore) -> None:
        """The record is gone while the session lives (Redis restarted empty): it is
        written anew, the responses still kept included."""
        logger.warning("session record lost from Redis; writing it again")
        languages = self.stream.languages
        self.epoch = await store.create(
            self.key,
            self.session_id,
            self.subject,
            self.config,
            (languages.spoken, languages.targets),
            epoch=self.epoch + 1,
        )
        self._stored = 0
        self._dirty.set()

    def _moved(self) -> None:
        """Another gateway claimed the session: this copy ends without a word to anyone."""
        logger.info("session %s resumed on another gateway; this copy ends", self.session_id)
        self.handed_over = True
        self._end = SessionMovedError(
            "this session was resumed by another connection on another gateway"
        )
        self._changed.set()
        self._task.cancel()
        if not self.attached:
            self._report_end()

    async def hand_over(self) -> None:
        """For a gateway that shuts down: stops recognizing, writes a last checkpoint that
        tells the client to resume elsewhere at once, and releases the session, so another
        gateway rebuilds it from that checkpoint without waiting for this one to die."""
        if self._end is not None or self._mirror is None:
            return
        self._end = DrainingError(
            "the gateway is shutting down and handed this session over: resume it"
        )
        self.handed_over = True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._checkpoint(always=True, elsewhere=True)
        while self._written < self._sequence and not self._mirror.done():
            self._changed.clear()
            changed = asyncio.create_task(self._changed.wait())
            # The mirror may also end unwritten (its connection's end reported meanwhile).
            await asyncio.wait({changed, self._mirror}, return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()
        if not self.attached:
            self._report_end()

    def _trim(self) -> None:
        """Keeps `max_responses`, more only while they have not been sent at all."""
        outbox = self._outbox
        while len(outbox) > self._policy.resume_max_responses and outbox[0].sequence <= self._sent:
            outbox.popleft()

    def _checkpoint(
        self, *, force: bool = False, always: bool = False, elsewhere: bool = False
    ) -> None:
        if not self.resumable:
            return
        point = self.stream.resume_point
        accounted_s = point.offset_s
        moved_s = accounted_s - self._checkpointed_s
        if not always and (moved_s <= 0 or (not force and moved_s < CHECKPOINT_STEP_S)):
            return
        self._checkpointed_s = accounted_s
        self._point = point
        received_s = self.received_bytes / self._bytes_per_s
        self._emit(
            Response(
                checkpoint=speech_pb2.Checkpoint(
                    accounted_offset=duration(accounted_s),
                    received_offset=duration(received_s),
                    resume_elsewhere=elsewhere,
                )
            )
        )

    def check_resume(self, last_sequence: int, audio_offset_s: float) -> None:
        """Raises the error a resume with these values gets, if any."""
        if self.attached:
            raise SessionAttachedError(
                "this session is still attached to another connection; retry in a moment"
            )
        now = time.monotonic()
        while self._resumes and now - self._resumes[0] > RESUME_WINDOW_S:
            self._resumes.popleft()
        if len(self._resumes) >= self._policy.resume_max_per_minute:
            raise flood_error(len(self._resumes))
        self._resumes.append(now)
        oldest = self._outbox[0].sequence if self._outbox else self._sequence + 1
        check_range(
            last_sequence,
            audio_offset_s,
            sequence=self._sequence,
            oldest=oldest,
            max_responses=self._policy.resume_max_responses,
            received_s=self.received_bytes / self._bytes_per_s,
        )

    async def attach(
        self, requests: AsyncIterator[Request], *, last_sequence: int, audio_offset_s: float
    ) -> AsyncIterator[Response]:
        """Feeds the connection's requests to the stream and yields the responses after
        `last_sequence` until the stream ends; raises the stream's error, if any."""
        self.attached = True
        self._dirty.set()
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
                if isinstance(self._end, SessionMovedError):
                    raise self._end
                for response in list(self._outbox):
                    if sent < response.sequence <= self._written:
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
            if isinstance(self._end, StatusError):
                raise self._end
        finally:
            feeding.cancel()
            with contextlib.suppress(asyncio.CancelledError, StatusError):
                await feeding
            self.attached = False
            self._dirty.set()
            if self._end is None:
                self._grace = asyncio.get_running_loop().call_later(
                    self._policy.resume_grace_s, self.give_up
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
        limit = round(self._policy.resume_check_s * self._bytes_per_s)
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
        if not self.attached:
            self._report_end()


def flood_error(resumes: int) -> SessionFloodError:
    return SessionFloodError(
        f"this session was resumed {resumes} times in the last {RESUME_WINDOW_S:g} s; back "
        "off before resuming again"
    )


def check_range(
    last_sequence: int,
    audio_offset_s: float,
    *,
    sequence: int,
    oldest: int,
    max_responses: int,
    received_s: float,
) -> None:
    """Raises OUT_OF_RANGE for a resume from a response or an offset the session cannot
    continue from: one it never sent, one it no longer keeps, audio it never had."""
    if last_sequence > sequence:
        raise SessionRangeError(
            f"last_sequence {last_sequence} is ahead of the {sequence} responses this session sent"
        )
    if last_sequence < oldest - 1:
        raise SessionRangeError(
            f"responses after {last_sequence} are no longer kept (the session keeps the "
            f"last {max_responses}); start a new stream"
        )
    if audio_offset_s > received_s + 0.5 / SAMPLE_RATE_HZ:
        raise SessionRangeError(
            f"audio_offset {audio_offset_s:.3f} s is past the {received_s:.3f} s of audio "
            "this session received: resend from the last checkpoint's accounted_offset"
        )


def token_key(token: str) -> str:
    """Sessions are found by a digest of their token, so no table holds the token."""
    return hashlib.sha256(token.encode()).hexdigest()


class SessionRegistry:
    """The sessions of one gateway, by token digest, and through `store` (Redis) those
    of every gateway that shares it."""

    def __init__(self, policy: ResumePolicy, store: RedisSessionStore | None = None) -> None:
        self.policy = policy
        self.store = store
        self._sessions: dict[str, Session] = {}
        self._ended: list[Callable[[Session], None]] = []
        self._deleting: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self):
        return iter(list(self._sessions.values()))

    def on_end(self, callback: Callable[[Session], None]) -> None:
        """`callback` runs once for each session that ends (or is given up)."""
        self._ended.append(callback)

    async def start(
        self,
        session_id: str,
        subject: str,
        stream: RecognitionStream,
        config: speech_pb2.StreamingRecognitionConfig,
        *,
        sample_rate_hz: int,
        frame_bytes: int,
        resumable: bool,
    ) -> Session:
        policy = (
            self.policy
            if resumable
            else ResumePolicy.model_construct(
                resume_grace_s=0.0,
                resume_max_responses=0,
                resume_check_s=0.0,
                resume_max_per_minute=0,
            )
        )
        token = secrets.token_urlsafe(24)
        store, epoch = self.store if resumable else None, 0
        if store is not None:
            try:
                languages = (stream.languages.spoken, stream.languages.targets)
                epoch = await store.create(token_key(token), session_id, subject, config, languages)
            except SessionStoreUnavailableError as error:
                logger.warning("session kept on this gateway only: %s", error)
                store = None
        session = Session(
            session_id,
            subject,
            stream,
            config=config,
            token=token,
            sample_rate_hz=sample_rate_hz,
            frame_bytes=frame_bytes,
            policy=policy,
            on_end=self._end,
            store=store,
            epoch=epoch,
        )
        if resumable:
            self._sessions[session.key] = session
        return session

    async def find(self, token: str, subject: str) -> Session | SessionRecord:
        """What `token` resumes: this gateway's own session, or the record of one to
        rebuild here (one that lived on another gateway, or on an earlier this one).

        A resume often arrives before the gateway holding the session has noticed that the
        connection it replaces is lost, so a session still attached is waited for, up to
        ATTACHED_WAIT_S, before the resume is refused."""
        deadline = time.monotonic() + ATTACHED_WAIT_S
        while True:
            found = await self._find(token, subject)
            if isinstance(found, Session):
                attached = found.attached
            else:
                attached = found.attached and found.owner and await self.store.alive(found.owner)
            if not attached:
                await self._count_resume(token)
                return found
            if time.monotonic() >= deadline:
                where = "this" if isinstance(found, Session) else "another"
                raise SessionAttachedError(
                    f"this session is still attached to a connection on {where} gateway; "
                    "retry in a moment"
                )
            await asyncio.sleep(ATTACHED_POLL_S)

    async def _count_resume(self, token: str) -> None:
        """With a store, resumes are counted there, so that a flood spread over gateways
        is refused too (each gateway also counts those it takes)."""
        if self.store is None:
            return
        with contextlib.suppress(SessionStoreUnavailableError):
            resumes = await self.store.count_resume(token_key(token), RESUME_WINDOW_S)
            if resumes > self.policy.resume_max_per_minute:
                raise flood_error(resumes - 1)

    async def _find(self, token: str, subject: str) -> Session | SessionRecord:
        key = token_key(token)
        local = self._sessions.get(key)
        record = None
        if self.store is not None:
            try:
                record = await self.store.load(key)
            except SessionStoreUnavailableError:
                if local is None:
                    raise
        if record is None or (
            local is not None
            and local.epoch == record.epoch
            and record.owner == self.store.gateway_id
        ):
            if local is None:
                raise SessionNotFoundError(
                    "no session has this resume token: it is unknown, or its grace period is "
                    "over; start a new stream"
                )
            found: Session | SessionRecord = local
        else:
            found = record
        if found.subject != subject:
            raise SessionPermissionError(
                "this session belongs to another caller: resume it with the token that started it"
            )
        return found

    async def claim(self, session: Session) -> None:
        """Marks this gateway's own session attached here in the store."""
        if self.store is None or session.epoch == 0:
            return
        session.epoch = await self._claim(session.key, session.epoch)

    async def _claim(self, key: str, epoch: int) -> int:
        assert self.store is not None
        claimed = await self.store.claim(key, epoch)
        if claimed is None:
            raise SessionAttachedError(
                "this session was resumed on another gateway meanwhile; retry in a moment"
            )
        return claimed

    async def restore(
        self,
        record: SessionRecord,
        token: str,
        stream: RecognitionStream,
        *,
        last_sequence: int,
        audio_offset_s: float,
        sample_rate_hz: int,
        frame_bytes: int,
    ) -> Session:
        """Claims a session from the store and continues it here from its checkpoint."""
        assert self.store is not None
        check_range(
            last_sequence,
            audio_offset_s,
            sequence=record.sequence,
            oldest=record.outbox[0].sequence if record.outbox else record.sequence + 1,
            max_responses=self.policy.resume_max_responses,
            received_s=record.point.offset_s,
        )
        key = token_key(token)
        epoch = await self._claim(key, record.epoch)
        stale = self._sessions.pop(key, None)
        if stale is not None:
            stale.handed_over = True
            await stale.close()
        session = Session(
            record.session_id,
            record.subject,
            stream,
            config=record.config,
            token=token,
            sample_rate_hz=sample_rate_hz,
            frame_bytes=frame_bytes,
            policy=self.policy,
            on_end=self._end,
            store=self.store,
            epoch=epoch,
            restored=record,
        )
        self._sessions[key] = session
        return session

    def _end(self, session: Session) -> None:
        if self._sessions.get(session.key) is session:
            del self._sessions[session.key]
        if self.store is not None and session.epoch and not session.handed_over:
            task = asyncio.create_task(self._forget(session), name="session store delete")
            self._deleting.add(task)
            task.add_done_callback(self._deleting.discard)
        for callback in self._ended:
            callback(session)

    async def _forget(self, session: Session) -> None:
        assert self.store is not None
        with contextlib.suppress(SessionStoreUnavailableError):
            await self.store.delete(session.key, session.epoch)

    async def hand_over(self) -> None:
        """For a gateway that shuts down with a store: every session goes to the store."""
        await asyncio.gather(*(session.hand_over() for session in list(self._sessions.values())))

    async def close(self) -> None:
        await asyncio.gather(*(session.close() for session in list(self._sessions.values())))
        await asyncio.gather(*self._deleting)
