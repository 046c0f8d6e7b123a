/**
 * Following a caption room over StreamCaptions, without the page: the call,
 * the position of the last final received, and one reconnection when the
 * call fails in a way the server says to retry. The reconnection resumes after
 * that position, so the listener misses no final and receives none twice.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { StreamCaptionsResponse } from "../gen/dragoman/speech/v1/speech_pb";
import type { SpeechClient } from "./rpc";

/**
 * How long to wait before reconnecting: long enough not to hammer a room
 * store that has just failed, short enough that few captions pile up.
 */
export const RECONNECT_DELAY_MS = 1_000;

/**
 * The failures StreamCaptions documents as worth retrying with the last
 * position: UNAVAILABLE (the room store is unreachable, or the gateway is
 * going away) and RESOURCE_EXHAUSTED (this listener fell too far behind).
 * Anything else (a bad room, a token without the room, a position the room
 * no longer keeps) would fail again the same way.
 */
export function isRetryable(err: unknown): err is ConnectError {
  if (!(err instanceof ConnectError)) return false;
  return err.code === Code.Unavailable || err.code === Code.ResourceExhausted;
}

export interface RoomRequest {
  room: string;
  /** ISO 639-1 code to read the captions in; "" for the spoken languages. */
  languageCode: string;
}

export interface RoomHandlers {
  onCaption(caption: StreamCaptionsResponse): void;
  /** The call failed with `error`; another starts after `delayMs`. */
  onReconnecting(error: ConnectError, delayMs: number): void;
  /** The delay is over; the new call starts now. */
  onReconnected(): void;
}

/**
 * Follows `request.room` until the server ends the stream (resolves) or the
 * call fails for good or `signal` aborts (rejects).
 *
 * A retryable failure is retried once: if the new call fails again before it
 * has delivered a caption, that failure is final. Once it has delivered one,
 * the room is reachable again and a later failure gets its own retry.
 */
export async function followRoom(
  client: Pick<SpeechClient, "streamCaptions">,
  request: RoomRequest,
  handlers: RoomHandlers,
  signal: AbortSignal,
  delayMs = RECONNECT_DELAY_MS,
): Promise<void> {
  /** The position of the last final received: where a reconnection resumes. */
  let resumeAfter = "";
  let retried = false;
  for (;;) {
    try {
      const stream = client.streamCaptions(
        { room: request.room, languageCode: request.languageCode, interimResults: true, resumeAfter },
        { signal },
      );
      for await (const caption of stream) {
        retried = false;
        if (caption.position) resumeAfter = caption.position;
        handlers.onCaption(caption);
      }
      return;
    } catch (err) {
      if (signal.aborted || retried || !isRetryable(err)) throw err;
      retried = true;
      handlers.onReconnecting(err, delayMs);
      await pause(delayMs, signal);
      handlers.onReconnected();
    }
  }
}

/** Resolves after `ms`, or rejects with the abort reason if `signal` aborts first. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const done = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", done);
      resolve();
    }, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
