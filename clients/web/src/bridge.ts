/**
 * Client of the WebSocket bridge (protos/dragoman/speech/v1/websocket.proto):
 * StreamingRecognize for browsers, which cannot stream requests over gRPC-Web.
 *
 * Text frames carry WebSocketRequest / WebSocketResponse in the protobuf JSON
 * mapping, built and parsed with the generated schemas; audio goes in binary
 * frames.
 */
import { create, fromBinary, fromJsonString, toJsonString } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type {
  Checkpoint,
  ResumeSessionSchema,
  SessionStarted,
  SpeechEvent,
  StreamingRecognitionConfigSchema,
  StreamingRecognitionResult,
} from "../gen/dragoman/speech/v1/speech_pb";
import {
  WebSocketRequestSchema,
  WebSocketResponseSchema,
} from "../gen/dragoman/speech/v1/websocket_pb";
import { BEARER_SUBPROTOCOL_PREFIX } from "./credentials";
import { statusName } from "./errors";

/** The subprotocol of JSON text frames. */
export const JSON_SUBPROTOCOL = "dragoman.speech.v1.json";

/** The bridge's path on the page's own origin. */
export const BRIDGE_PATH = "/ws/v1/recognize";

/** Audio held while the socket opens: 10 s of 16 kHz LINEAR16. */
const MAX_PENDING_BYTES = 10 * 16000 * 2;

/** How a stream ended. */
export type BridgeOutcome =
  /** The server closed normally (after `endOfAudio`, the last final came first). */
  | { kind: "done" }
  /** This page closed the socket (`abort`). */
  | { kind: "aborted" }
  /** A gRPC status from the server, or a transport failure as UNAVAILABLE. */
  | { kind: "error"; status: string; message: string };

/**
 * What the server sent, with the response's `sequence`: it counts the
 * session's responses from 1, across resumes (0 on `session`).
 */
export interface BridgeHandlers {
  /** The socket is open and the first message has been sent. */
  onOpen?(): void;
  onSession?(session: SessionStarted): void;
  onSpeechEvent?(event: SpeechEvent, sequence: bigint): void;
  onResult?(result: StreamingRecognitionResult, sequence: bigint): void;
  /** Where the results stand in the audio (resumable streams only). */
  onCheckpoint?(checkpoint: Checkpoint, sequence: bigint): void;
  /** Called once, last. */
  onClose(outcome: BridgeOutcome): void;
}

export type StreamingConfigInit = MessageInitShape<typeof StreamingRecognitionConfigSchema>;
export type ResumeInit = MessageInitShape<typeof ResumeSessionSchema>;

/**
 * The first message of a stream: a config starts a session, `resume`
 * continues one whose connection was lost.
 */
export type OpeningRequest =
  | { case: "streamingConfig"; value: StreamingConfigInit }
  | { case: "resume"; value: ResumeInit };

type RequestInit = MessageInitShape<typeof WebSocketRequestSchema>["request"];

/** The bridge URL for a page at `location` (ws: or wss: to match the page). */
export function bridgeUrl(location: Location): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${BRIDGE_PATH}`;
}

/** One recognition stream over the bridge. */
export class BridgeSession {
  private readonly socket: WebSocket;
  private readonly url: string;
  private opened = false;
  private closed = false;
  private aborted = false;
  private audioEnded = false;
  private serverError: { status: string; message: string } | null = null;
  /** Audio sent before the socket opened, in order. */
  private pending: ArrayBuffer[] = [];
  private pendingBytes = 0;

  constructor(
    url: string,
    private readonly opening: OpeningRequest,
    private readonly handlers: BridgeHandlers,
    token = "",
  ) {
    this.url = url;
    const protocols = token ? [JSON_SUBPROTOCOL, BEARER_SUBPROTOCOL_PREFIX + token] : [JSON_SUBPROTOCOL];
    // Throws SyntaxError on a malformed URL; the caller reports it.
    this.socket = new WebSocket(url, protocols);
    this.socket.binaryType = "arraybuffer";
    this.socket.onopen = () => this.handleOpen();
    this.socket.onmessage = (event) => this.handleMessage(event);
    this.socket.onclose = (event) => this.handleClose(event);
    // An "error" event is always followed by "close", which reports it.
  }

  /**
   * Whether frames can still be sent: not once either side has started
   * closing (the server closes right after an error).
   */
  get isOpen(): boolean {
    return this.opened && !this.closed && this.socket.readyState === WebSocket.OPEN;
  }

  /** Sends a chunk of 16 kHz LINEAR16 audio (queued until the socket opens). */
  sendAudio(pcm: ArrayBuffer): void {
    if (this.closed || this.aborted || this.audioEnded) return;
    if (!this.opened) {
      // Drop the oldest audio rather than grow without bound.
      this.pending.push(pcm);
      this.pendingBytes += pcm.byteLength;
      while (this.pendingBytes > MAX_PENDING_BYTES) {
        this.pendingBytes -= this.pending.shift()!.byteLength;
      }
      return;
    }
    if (this.isOpen) this.socket.send(pcm);
  }

  /** Ends the utterance in progress now, without waiting for silence. */
  finalize(): void {
    this.sendRequest({ case: "control", value: { action: { case: "finalize", value: {} } } });
  }

  /** Changes the languages; the server applies them from the next utterance. */
  updateLanguages(languageCode: string, translationLanguageCodes: string[]): void {
    this.sendRequest({
      case: "control",
      value: {
        action: { case: "updateLanguages", value: { languageCode, translationLanguageCodes } },
      },
    });
  }

  /**
   * Half-closes the audio: the server sends the final result of the
   * utterance in progress, then closes with 1000 (reported as "done").
   */
  endOfAudio(): void {
    this.sendRequest({ case: "endOfAudio", value: {} });
    this.audioEnded = true;
  }

  /** Closes the socket now; the utterance in progress is discarded. */
  abort(): void {
    if (this.closed) return;
    this.aborted = true;
    this.pending = [];
    this.socket.close(1000, "client stopped");
  }

  /** Sends a text frame; nothing may follow endOfAudio. */
  private sendRequest(request: RequestInit): void {
    if (!this.isOpen || this.audioEnded) return;
    const message = create(WebSocketRequestSchema, { request });
    this.socket.send(toJsonString(WebSocketRequestSchema, message));
  }

  private handleOpen(): void {
    this.opened = true;
    if (this.aborted) return;
    // The config (or resume) must be the first frame; audio queued meanwhile
    // follows it.
    this.sendRequest(this.opening);
    for (const chunk of this.pending) this.socket.send(chunk);
    this.pending = [];
    this.pendingBytes = 0;
    this.handlers.onOpen?.();
  }

  private handleMessage(event: MessageEvent<string | ArrayBuffer>): void {
    let response;
    try {
      // Only JSON is offered, but the binary form is the same message.
      response =
        typeof event.data === "string"
          ? fromJsonString(WebSocketResponseSchema, event.data, { ignoreUnknownFields: true })
          : fromBinary(WebSocketResponseSchema, new Uint8Array(event.data));
    } catch (err) {
      console.warn("dragoman: unreadable message from the bridge", err);
      return;
    }
    const { response: payload, sequence } = response;
    switch (payload.case) {
      case "session":
        this.handlers.onSession?.(payload.value);
        break;
      case "speechEvent":
        this.handlers.onSpeechEvent?.(payload.value, sequence);
        break;
      case "result":
        this.handlers.onResult?.(payload.value, sequence);
        break;
      case "checkpoint":
        this.handlers.onCheckpoint?.(payload.value, sequence);
        break;
      case "error":
        this.serverError = {
          status: payload.value.status || statusName(payload.value.code),
          message: payload.value.message,
        };
        break;
    }
  }

  private handleClose(event: CloseEvent): void {
    if (this.closed) return;
    this.closed = true;
    this.handlers.onClose(this.outcome(event));
  }

  private outcome(event: CloseEvent): BridgeOutcome {
    if (this.serverError) return { kind: "error", ...this.serverError };
    if (this.aborted) return { kind: "aborted" };
    // 4000 + gRPC code, with the status name as the reason, when the error
    // message itself was lost.
    if (event.code >= 4000 && event.code < 4100) {
      return {
        kind: "error",
        status: event.reason || statusName(event.code - 4000),
        message: "the server ended the stream",
      };
    }
    if (event.code === 1000) return { kind: "done" };
    if (!this.opened) {
      return { kind: "error", status: "UNAVAILABLE", message: `cannot connect to ${this.url}` };
    }
    const reason = event.reason ? `: ${event.reason}` : "";
    return {
      kind: "error",
      status: "UNAVAILABLE",
      message: `connection lost (WebSocket close code ${event.code}${reason})`,
    };
  }
}
