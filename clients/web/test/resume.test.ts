// Checks how the live stream survives a lost bridge connection: the audio
// kept from the last checkpoint on, the resume message, the audio and the
// controls sent again, the responses skipped, the backoff (none after a
// gateway's handover), and when it gives up and shows the error instead. Run
// with `npm test`.
import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  CheckpointSchema,
  SessionStartedSchema,
  StreamingRecognitionResultSchema,
} from "../gen/dragoman/speech/v1/speech_pb";
import type { BridgeHandlers, BridgeOutcome, OpeningRequest } from "../src/bridge";
import {
  AudioKeeper,
  MAX_RESUME_ATTEMPTS,
  ResumingStream,
  offsetBytes,
  offsetDuration,
  resumeDelayMs,
  resumeOffInFragment,
  type Connection,
  type ResumeOptions,
  type StreamHandlers,
} from "../src/resume";

/** 40 ms of 16 kHz LINEAR16, the page's chunk. */
const CHUNK = 1280;
/** One second of audio, in bytes. */
const SECOND = 32000;

const LOST: BridgeOutcome = {
  kind: "error",
  status: "UNAVAILABLE",
  message: "connection lost (WebSocket close code 1006)",
};

/** Chunk `index` of the stream: every byte holds the index, so resent audio can be told apart. */
function chunk(index: number, bytes = CHUNK): ArrayBuffer {
  return new Uint8Array(bytes).fill(index % 256).buffer;
}

/** The stream of `count` chunks made by `chunk`, from byte `from` on. */
function streamBytes(count: number, from = 0): number[] {
  const bytes: number[] = [];
  for (let i = 0; i < count; i++) bytes.push(...new Uint8Array(chunk(i)));
  return bytes.slice(from);
}

/** A bridge connection the test drives: it records what the stream sends. */
class FakeConnection implements Connection {
  isOpen = false;
  closed = false;
  audio: number[] = [];
  /** Text frames after the first one, in order. */
  requests: string[] = [];

  constructor(
    readonly opening: OpeningRequest,
    readonly handlers: BridgeHandlers,
  ) {}

  open(): void {
    this.isOpen = true;
    this.handlers.onOpen?.();
  }

  session(token: string, resumed = false): void {
    this.handlers.onSession?.(
      create(SessionStartedSchema, { sessionId: "s1", model: "tiny.en", resumeToken: token, resumed }),
    );
  }

  result(sequence: number, segmentId: number, isFinal = false): void {
    const result = create(StreamingRecognitionResultSchema, {
      segmentId,
      isFinal,
      transcript: `segment ${segmentId}`,
    });
    this.handlers.onResult?.(result, BigInt(sequence));
  }

  checkpoint(sequence: number, accountedBytes: number, resumeElsewhere = false): void {
    const checkpoint = create(CheckpointSchema, {
      accountedOffset: offsetDuration(accountedBytes),
      receivedOffset: offsetDuration(accountedBytes),
      resumeElsewhere,
    });
    this.handlers.onCheckpoint?.(checkpoint, BigInt(sequence));
  }

  close(outcome: BridgeOutcome): void {
    this.isOpen = false;
    this.closed = true;
    this.handlers.onClose(outcome);
  }

  sendAudio(pcm: ArrayBuffer): void {
    assert.ok(this.isOpen, "audio is sent only on an open connection");
    this.audio.push(...new Uint8Array(pcm));
  }

  finalize(): void {
    this.requests.push("finalize");
  }

  updateLanguages(languageCode: string, translationLanguageCodes: string[]): void {
    this.requests.push(`languages ${languageCode} ${translationLanguageCodes.join(",")}`);
  }

  endOfAudio(): void {
    this.requests.push("endOfAudio");
  }

  abort(): void {
    if (!this.closed) this.close({ kind: "aborted" });
  }
}

/** A stream over fake connections, with handlers that log what the page would see. */
function fakeStream(options: ResumeOptions = {}) {
  const connections: FakeConnection[] = [];
  const events: string[] = [];
  const outcomes: BridgeOutcome[] = [];
  const handlers: StreamHandlers = {
    onOpen: () => events.push("open"),
    onSession: (session) => events.push(`session ${session.sessionId}`),
    onResult: (result) => events.push(`result ${result.segmentId}${result.isFinal ? " final" : ""}`),
    onReconnecting: (error, delayMs, attempt) =>
      events.push(`reconnecting ${error.status} in ${delayMs} ms, try ${attempt}`),
    onResumed: () => events.push("resumed"),
    onClose: (outcome) => {
      outcomes.push(outcome);
      events.push(`close ${outcome.kind}`);
    },
  };
  const stream = new ResumingStream(
    (opening, bridgeHandlers) => {
      const connection = new FakeConnection(opening, bridgeHandlers);
      connections.push(connection);
      return connection;
    },
    { interimResults: true },
    handlers,
    { delayMs: () => 0, ...options },
  );
  return { stream, connections, events, outcomes };
}

/** Lets the wait before reconnecting (0 ms in these tests) pass. */
const nextTurn = () => new Promise((resolve) => setTimeout(resolve, 1));

test("offsets: a checkpoint's Duration in bytes of 16 kHz frames, and back, exactly", () => {
  assert.equal(offsetBytes(offsetDuration(12.4 * SECOND)), 12.4 * SECOND);
  assert.deepEqual(offsetDuration(12.4 * SECOND), { seconds: 12n, nanos: 400_000_000 });
  assert.deepEqual(offsetDuration(2), { seconds: 0n, nanos: 62_500 }, "one frame is 62.5 µs");
  assert.equal(offsetBytes({ seconds: 1n, nanos: 62_500 }), SECOND + 2);
  assert.equal(offsetBytes(undefined), 0);
});

test("backoff: 100 ms doubling to at most 2 s", () => {
  assert.deepEqual(
    Array.from({ length: MAX_RESUME_ATTEMPTS }, (_, attempt) => resumeDelayMs(attempt)),
    [100, 200, 400, 800, 1600, 2000, 2000, 2000],
  );
});

test("the page fragment turns resuming off with resume=off, beside a token or not", () => {
  assert.equal(resumeOffInFragment("#resume=off"), true);
  assert.equal(resumeOffInFragment("#token=abc&resume=off"), true);
  assert.equal(resumeOffInFragment("#token=abc"), false);
  assert.equal(resumeOffInFragment("#resume=on"), false);
  assert.equal(resumeOffInFragment(""), false);
});

test("the keeper gives back the audio from any offset it covers, cutting the first chunk", () => {
  const kept = new AudioKeeper(10 * CHUNK);
  for (let i = 0; i < 4; i++) kept.push(chunk(i));
  kept.release(CHUNK + 100); // chunk 0 goes; chunk 1 holds the offset
  assert.equal(kept.start, CHUNK);
  assert.equal(kept.end, 4 * CHUNK);
  assert.equal(kept.covers(CHUNK + 100), true);
  assert.equal(kept.covers(CHUNK - 2), false, "released audio is gone");
  const resent = kept.from(CHUNK + 100).flatMap((buffer) => [...new Uint8Array(buffer)]);
  assert.deepEqual(resent, streamBytes(4, CHUNK + 100));
  kept.release(4 * CHUNK);
  assert.equal(kept.covers(4 * CHUNK), true, "nothing to resend is covered");
  assert.deepEqual(kept.from(4 * CHUNK), []);
});

test("the keeper holds at most its bound, dropping the oldest audio", () => {
  const kept = new AudioKeeper(3 * CHUNK);
  for (let i = 0; i < 5; i++) kept.push(chunk(i));
  assert.equal(kept.start, 2 * CHUNK);
  assert.equal(kept.end, 5 * CHUNK);
  assert.equal(kept.covers(0), false);
  kept.anchor();
  assert.equal(kept.start, 0);
  assert.equal(kept.end, 3 * CHUNK);
  assert.deepEqual(
    kept.from(0).map((buffer) => new Uint8Array(buffer)[0]),
    [2, 3, 4],
    "anchored: the oldest audio kept is the start of the stream",
  );
});

test("a lost connection resumes: token, last sequence, audio from the last checkpoint", async () => {
  const { stream, connections, events, outcomes } = fakeStream();
  stream.sendAudio(chunk(0)); // captured while the socket opens
  const [first] = connections;
  assert.equal(first.opening.case, "streamingConfig");
  first.open();
  first.session("token-1");
  for (let i = 1; i < 10; i++) stream.sendAudio(chunk(i));
  assert.deepEqual(first.audio, streamBytes(10), "held audio first, then as it comes");
  first.result(1, 1);
  first.result(2, 1, true);
  first.checkpoint(3, 4 * CHUNK + 640); // mid-chunk
  first.result(4, 2);
  first.close(LOST);
  assert.equal(stream.reconnecting, true);
  assert.equal(stream.isOpen, false);
  stream.sendAudio(chunk(10)); // captured while reconnecting
  stream.finalize(); // not sent anywhere: no connection is open
  await nextTurn();

  assert.equal(connections.length, 2);
  const second = connections[1];
  assert.equal(second.opening.case, "resume");
  assert.deepEqual(second.opening.value, {
    resumeToken: "token-1",
    lastSequence: 4n,
    audioOffset: offsetDuration(4 * CHUNK + 640),
  });
  second.open();
  second.session("", true);
  stream.sendAudio(chunk(11));
  assert.deepEqual(
    second.audio,
    streamBytes(12, 4 * CHUNK + 640),
    "the audio from the checkpoint on, as captured, then new audio",
  );
  second.result(4, 2); // sent again: the lost connection had delivered it
  second.result(5, 2, true);
  second.result(6, 3);
  stream.endOfAudio();
  assert.deepEqual(second.requests, ["endOfAudio"]);
  second.close({ kind: "done" });

  assert.deepEqual(events, [
    "open",
    "session s1",
    "result 1",
    "result 1 final",
    "result 2",
    "reconnecting UNAVAILABLE in 0 ms, try 1",
    "resumed",
    "result 2 final",
    "result 3",
    "close done",
  ]);
  assert.deepEqual(outcomes, [{ kind: "done" }]);
});

test("the wait doubles with each try until the server takes the resume", async () => {
  const delays: number[] = [];
  const { connections, events } = fakeStream({
    delayMs: (attempt) => {
      delays.push(attempt);
      return 0;
    },
  });
  connections[0].open();
  connections[0].session("token-1");
  connections[0].close(LOST);
  await nextTurn();
  // The old connection is still attached on the server: retried.
  connections[1].close({ kind: "error", status: "FAILED_PRECONDITION", message: "still attached" });
  await nextTurn();
  connections[2].close({ kind: "error", status: "UNAVAILABLE", message: "cannot connect" });
  await nextTurn();
  connections[3].open();
  connections[3].session("", true);
  connections[3].close(LOST);
  await nextTurn();
  assert.equal(connections.length, 5);
  assert.deepEqual(delays, [0, 1, 2, 0]);
  assert.deepEqual(events.filter((e) => e.startsWith("reconnecting")), [
    "reconnecting UNAVAILABLE in 0 ms, try 1",
    "reconnecting FAILED_PRECONDITION in 0 ms, try 2",
    "reconnecting UNAVAILABLE in 0 ms, try 3",
    "reconnecting UNAVAILABLE in 0 ms, try 1",
  ]);
});

test(`gives up after ${MAX_RESUME_ATTEMPTS} failed tries and shows the error`, async () => {
  const { connections, events, outcomes } = fakeStream();
  connections[0].open();
  connections[0].session("token-1");
  connections[0].close(LOST);
  for (let i = 1; i <= MAX_RESUME_ATTEMPTS; i++) {
    await nextTurn();
    connections[i].close({ kind: "error", status: "UNAVAILABLE", message: "cannot connect" });
  }
  await nextTurn();
  assert.equal(connections.length, 1 + MAX_RESUME_ATTEMPTS);
  assert.equal(events.filter((e) => e.startsWith("reconnecting")).length, MAX_RESUME_ATTEMPTS);
  assert.equal(outcomes.length, 1);
  const [outcome] = outcomes;
  assert.equal(outcome.kind, "error");
  assert.equal(outcome.kind === "error" && outcome.status, "UNAVAILABLE");
  assert.match(outcome.kind === "error" ? outcome.message : "", /gave up after 8 tries/);
});

test("a gateway that hands the session over: resumed at once, from its checkpoint, uncounted", async () => {
  const delays: number[] = [];
  const { stream, connections, events } = fakeStream({
    delayMs: (attempt) => {
      delays.push(attempt);
      return 60_000;
    },
  });
  const [first] = connections;
  first.open();
  first.session("token-1");
  for (let i = 0; i < 5; i++) stream.sendAudio(chunk(i));
  first.checkpoint(1, 2 * CHUNK, true); // a draining gateway's last checkpoint
  first.close({ kind: "error", status: "UNAVAILABLE", message: "gateway shutting down" });
  assert.equal(stream.reconnecting, true, "still shown as reconnecting, briefly");
  await nextTurn();
  assert.equal(connections.length, 2, "no backoff");
  assert.deepEqual(delays, [], "the handover asks for no wait");
  const second = connections[1];
  assert.deepEqual(second.opening.value, {
    resumeToken: "token-1",
    lastSequence: 1n,
    audioOffset: offsetDuration(2 * CHUNK),
  });
  second.open();
  assert.deepEqual(second.audio, streamBytes(5, 2 * CHUNK));
  // The next gateway is not up yet: a failed try, the first one counted.
  second.close({ kind: "error", status: "UNAVAILABLE", message: "cannot connect" });
  await nextTurn();
  assert.equal(connections.length, 2, "a failure after the handover waits again");
  assert.deepEqual(delays, [0]);
  assert.deepEqual(events.filter((e) => e.startsWith("reconnecting")), [
    "reconnecting UNAVAILABLE in 0 ms, try 1",
    "reconnecting UNAVAILABLE in 60000 ms, try 1",
  ]);
  stream.abort();
});

test("a handover is told by its own connection only", async () => {
  const { stream, connections } = fakeStream({ delayMs: () => 60_000 });
  connections[0].open();
  connections[0].session("token-1");
  connections[0].checkpoint(1, 0, true);
  connections[0].close(LOST);
  await nextTurn();
  connections[1].open();
  connections[1].session("", true);
  connections[1].checkpoint(2, 0); // the new gateway's checkpoint: no handover
  connections[1].close(LOST);
  await nextTurn();
  assert.equal(connections.length, 2, "a plain loss waits");
  stream.abort();
});

test(`a handover does not count toward the ${MAX_RESUME_ATTEMPTS} tries`, async () => {
  const { connections, outcomes } = fakeStream();
  connections[0].open();
  connections[0].session("token-1");
  connections[0].checkpoint(1, 0, true);
  connections[0].close(LOST);
  for (let i = 1; i <= MAX_RESUME_ATTEMPTS + 1; i++) {
    await nextTurn();
    connections[i].close({ kind: "error", status: "UNAVAILABLE", message: "cannot connect" });
  }
  await nextTurn();
  assert.equal(connections.length, 2 + MAX_RESUME_ATTEMPTS);
  assert.equal(outcomes.length, 1);
  assert.match(outcomes[0].kind === "error" ? outcomes[0].message : "", /gave up after 8 tries/);
});

test("a resume the server refuses is shown with the loss it was recovering from", async () => {
  const { connections, outcomes } = fakeStream();
  connections[0].open();
  connections[0].session("token-1");
  connections[0].close(LOST);
  await nextTurn();
  connections[1].open();
  connections[1].close({
    kind: "error",
    status: "NOT_FOUND",
    message: "no session has this resume token",
  });
  await nextTurn();
  assert.equal(connections.length, 2, "NOT_FOUND is not retried");
  assert.deepEqual(outcomes, [
    {
      kind: "error",
      status: "NOT_FOUND",
      message: `no session has this resume token (resuming after UNAVAILABLE: ${
        LOST.kind === "error" ? LOST.message : ""
      })`,
    },
  ]);
});

for (const [why, options, token, outcome] of [
  ["resuming is off", { resume: false }, "token-1", LOST],
  ["the server gave no resume token", {}, "", LOST],
  [
    "the server refused the stream",
    {},
    "token-1",
    { kind: "error", status: "INVALID_ARGUMENT", message: "bad chunk" },
  ],
] as [string, ResumeOptions, string, BridgeOutcome][]) {
  test(`no resume when ${why}: the error is shown as it came`, async () => {
    const { stream, connections, events, outcomes } = fakeStream(options);
    connections[0].open();
    connections[0].session(token);
    stream.sendAudio(chunk(0));
    connections[0].close(outcome);
    await nextTurn();
    assert.equal(connections.length, 1);
    assert.deepEqual(outcomes, [outcome]);
    assert.equal(events.some((e) => e.startsWith("reconnecting")), false);
  });
}

test("without resuming, audio is held only until the first connection opens", () => {
  const { stream, connections } = fakeStream({ resume: false });
  stream.sendAudio(chunk(0));
  connections[0].open();
  stream.sendAudio(chunk(1));
  assert.deepEqual(connections[0].audio, streamBytes(2));
});

test("no resume once the audio since the last checkpoint is more than is kept", async () => {
  const { stream, connections, outcomes } = fakeStream({ maxKeptBytes: 3 * CHUNK });
  connections[0].open();
  connections[0].session("token-1");
  for (let i = 0; i < 5; i++) stream.sendAudio(chunk(i));
  connections[0].checkpoint(1, CHUNK); // the oldest audio kept starts at 2 * CHUNK
  connections[0].close(LOST);
  await nextTurn();
  assert.equal(connections.length, 1);
  assert.equal(outcomes.length, 1);
  assert.match(outcomes[0].kind === "error" ? outcomes[0].message : "", /cannot resume: .* more than/);
});

test("a checkpoint that catches up makes the stream resumable again", async () => {
  const { stream, connections, outcomes } = fakeStream({ maxKeptBytes: 3 * CHUNK });
  connections[0].open();
  connections[0].session("token-1");
  for (let i = 0; i < 5; i++) stream.sendAudio(chunk(i));
  connections[0].checkpoint(1, 3 * CHUNK);
  connections[0].close(LOST);
  await nextTurn();
  assert.equal(connections.length, 2);
  connections[1].open();
  assert.deepEqual(connections[1].audio, streamBytes(5, 3 * CHUNK));
  assert.deepEqual(outcomes, []);
});

test("audio piling up past the bound while reconnecting ends the wait with the error", async () => {
  const { stream, connections, outcomes } = fakeStream({
    maxKeptBytes: 3 * CHUNK,
    delayMs: () => 60_000,
  });
  connections[0].open();
  connections[0].session("token-1");
  connections[0].close(LOST);
  for (let i = 0; i < 4; i++) stream.sendAudio(chunk(i));
  assert.equal(outcomes.length, 1, "ends at once, not after the wait");
  assert.equal(outcomes[0].kind, "error");
  const message = outcomes[0].kind === "error" ? outcomes[0].message : "";
  assert.match(message, /connection lost .*cannot resume/);
  await nextTurn();
  assert.equal(connections.length, 1);
});

test("stopping while waiting to reconnect cancels the reconnection", async () => {
  const { stream, connections, outcomes } = fakeStream({ delayMs: () => 60_000 });
  connections[0].open();
  connections[0].session("token-1");
  connections[0].close(LOST);
  stream.abort();
  await nextTurn();
  assert.equal(connections.length, 1);
  assert.deepEqual(outcomes, [{ kind: "aborted" }]);
});

test("stopping while reconnecting: audio, languages, then endOfAudio once resumed", async () => {
  const { stream, connections, outcomes } = fakeStream();
  connections[0].open();
  connections[0].session("token-1");
  stream.sendAudio(chunk(0));
  connections[0].checkpoint(1, 0);
  connections[0].close(LOST);
  stream.updateLanguages("en", ["pt"]);
  stream.sendAudio(chunk(1));
  stream.endOfAudio();
  stream.sendAudio(chunk(2)); // after endOfAudio: dropped
  await nextTurn();
  const second = connections[1];
  second.open();
  assert.deepEqual(second.audio, streamBytes(2));
  assert.deepEqual(second.requests, ["languages en pt", "endOfAudio"]);
  second.session("", true);
  second.close({ kind: "done" });
  assert.deepEqual(outcomes, [{ kind: "done" }]);
});
