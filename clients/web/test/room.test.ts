// Checks how the page follows a caption room: the language asked for, and
// one reconnection after a retryable failure that resumes after the last
// final received. Run with `npm test`.
import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  StreamCaptionsResponseSchema,
  type StreamCaptionsRequest,
  type StreamCaptionsResponse,
} from "../gen/dragoman/speech/v1/speech_pb";
import { followRoom, isRetryable, type RoomHandlers } from "../src/room";

type Client = Parameters<typeof followRoom>[0];

/** What one call of the fake server does: send these captions, then fail or end. */
interface Call {
  captions: StreamCaptionsResponse[];
  error?: ConnectError;
}

function caption(segmentId: number, isFinal: boolean, position = ""): StreamCaptionsResponse {
  return create(StreamCaptionsResponseSchema, {
    sessionId: "s1",
    speaker: { id: "s1", label: "Ana" },
    text: `segment ${segmentId}`,
    result: { segmentId, isFinal, transcript: `segment ${segmentId}` },
    position,
  });
}

/** A StreamCaptions client that plays `calls` in turn and records the requests. */
function fakeClient(calls: Call[]) {
  const requests: Partial<StreamCaptionsRequest>[] = [];
  const client = {
    streamCaptions(request: Partial<StreamCaptionsRequest>) {
      requests.push(request);
      const call = calls.shift();
      if (!call) throw new Error("no more calls expected");
      return (async function* () {
        yield* call.captions;
        if (call.error) throw call.error;
      })();
    },
  };
  // The fake implements only what followRoom uses.
  return { client: client as unknown as Client, requests };
}

/** Handlers that log what happened, in order. */
function recorder() {
  const events: string[] = [];
  const handlers: RoomHandlers = {
    onCaption: ({ result }) =>
      events.push(`caption ${result?.segmentId}${result?.isFinal ? " final" : ""}`),
    onReconnecting: (error) => events.push(`reconnecting ${Code[error.code]}`),
    onReconnected: () => events.push("reconnected"),
  };
  return { events, handlers };
}

/** Follows room "r" in the original languages, reconnecting without delay. */
function follow(
  client: Client,
  handlers = recorder().handlers,
  signal = new AbortController().signal,
  delayMs = 0,
) {
  return followRoom(client, { room: "r", languageCode: "" }, handlers, signal, delayMs);
}

test("asks for the room in the listener's language, with interim results", async () => {
  const { client, requests } = fakeClient([{ captions: [caption(1, true, "1-0")] }]);
  const signal = new AbortController().signal;
  await followRoom(client, { room: "standup", languageCode: "pt" }, recorder().handlers, signal);
  assert.deepEqual(requests, [
    { room: "standup", languageCode: "pt", interimResults: true, resumeAfter: "" },
  ]);
});

for (const code of [Code.Unavailable, Code.ResourceExhausted]) {
  test(`reconnects after ${Code[code]}, resuming after the last final`, async () => {
    const { client, requests } = fakeClient([
      {
        captions: [caption(1, true, "10-0"), caption(2, true, "11-0"), caption(3, false)],
        error: new ConnectError("store down", code),
      },
      { captions: [caption(3, true, "12-0")] },
    ]);
    const { events, handlers } = recorder();
    await follow(client, handlers);
    // The interim after the last final has no position: resume after the final.
    assert.deepEqual(
      requests.map((r) => r.resumeAfter),
      ["", "11-0"],
    );
    assert.deepEqual(events, [
      "caption 1 final",
      "caption 2 final",
      "caption 3",
      `reconnecting ${Code[code]}`,
      "reconnected",
      "caption 3 final",
    ]);
  });
}

test("a second failure before any caption is final", async () => {
  const second = new ConnectError("still down", Code.Unavailable);
  const { client, requests } = fakeClient([
    { captions: [caption(1, true, "10-0")], error: new ConnectError("down", Code.Unavailable) },
    { captions: [], error: second },
  ]);
  await assert.rejects(
    follow(client),
    (err: unknown) => err === second,
  );
  assert.equal(requests.length, 2);
});

test("a reconnection that delivers captions earns a retry of its own", async () => {
  const { client, requests } = fakeClient([
    { captions: [caption(1, true, "10-0")], error: new ConnectError("down", Code.Unavailable) },
    {
      captions: [caption(2, true, "11-0")],
      error: new ConnectError("behind", Code.ResourceExhausted),
    },
    { captions: [] },
  ]);
  await follow(client);
  assert.deepEqual(
    requests.map((r) => r.resumeAfter),
    ["", "10-0", "11-0"],
  );
});

for (const code of [Code.OutOfRange, Code.PermissionDenied, Code.InvalidArgument, Code.Unknown]) {
  test(`does not retry ${Code[code]}`, async () => {
    const error = new ConnectError("no", code);
    const { client, requests } = fakeClient([{ captions: [caption(1, true, "10-0")], error }]);
    await assert.rejects(
      follow(client),
      (err: unknown) => err === error,
    );
    assert.equal(requests.length, 1);
    assert.equal(isRetryable(error), false);
  });
}

test("stopping during the wait cancels the reconnection", async () => {
  const { client, requests } = fakeClient([
    { captions: [], error: new ConnectError("down", Code.Unavailable) },
  ]);
  const abort = new AbortController();
  const handlers: RoomHandlers = {
    ...recorder().handlers,
    onReconnecting: () => abort.abort(),
  };
  await assert.rejects(follow(client, handlers, abort.signal, 60_000));
  assert.equal(requests.length, 1);
});
