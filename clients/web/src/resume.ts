/**
 * A live stream that survives its connection, without the page: the audio
 * kept since the last checkpoint, the position in the responses, and
 * reconnection with backoff when the bridge connection breaks (at once, and
 * not counted as a failed try, when the gateway said it handed the session
 * over). The reconnection sends `resume` and the kept audio, and the
 * responses the server sends again are skipped, so the page sees one unbroken
 * stream (protos/dragoman/speech/v1/speech.proto, ResumeSession).
 *
 * The page reaches a gateway again through its own origin: the one that
 * started the session or, with sessions on Redis, whichever its balancer picks.
 */
import type {
  SessionStarted,
  SpeechEvent,
  StreamingRecognitionResult,
} from "../gen/dragoman/speech/v1/speech_pb";
import type { BridgeHandlers, BridgeOutcome, OpeningRequest, StreamingConfigInit } from "./bridge";
import { TARGET_RATE } from "./capture-protocol";

/** Bytes of one second of the audio the page sends: 16 kHz mono LINEAR16. */
const BYTES_PER_SECOND = TARGET_RATE * 2;

/**
 * Audio kept for a resume: 30 s. The server's results stand at most one
 * utterance (15 s by default) behind the audio, so this covers the stream
 * unless results stall; past it, the oldest audio goes and the stream can no
 * longer resume until a checkpoint catches up.
 */
export const MAX_KEPT_BYTES = 30 * BYTES_PER_SECOND;

/**
 * The first wait before reconnecting; it doubles with each failed try. None
 * after a checkpoint with `resumeElsewhere` (a gateway shutting down).
 */
export const RESUME_BACKOFF_MS = 100;
export const MAX_BACKOFF_MS = 2_000;
/** Tries to resume before the loss is shown as an error. */
export const MAX_RESUME_ATTEMPTS = 8;

/**
 * The failures that mean a lost connection rather than a refused stream: a
 * socket closed without an error from the server (reported as UNAVAILABLE),
 * UNAVAILABLE from the server, and FAILED_PRECONDITION (a resume that came
 * before the server saw the old connection go).
 */
const RESUMABLE = new Set(["UNAVAILABLE", "FAILED_PRECONDITION"]);

export function isConnectionLoss(outcome: BridgeOutcome): outcome is BridgeError {
  return outcome.kind === "error" && RESUMABLE.has(outcome.status);
}

/** The wait before try `attempt` (from 0): 100 ms, doubling, at most 2 s. */
export function resumeDelayMs(attempt: number): number {
  return Math.min(RESUME_BACKOFF_MS * 2 ** attempt, MAX_BACKOFF_MS);
}

/** The stream offset of `duration`, in bytes of whole 16 kHz frames. */
export function offsetBytes(duration: { seconds: bigint; nanos: number } | undefined): number {
  if (!duration) return 0;
  const frames =
    Number(duration.seconds) * TARGET_RATE + Math.round((duration.nanos * TARGET_RATE) / 1e9);
  return frames * 2;
}

/** The Duration of the first `bytes` of the stream (exact: a frame is 62.5 µs). */
export function offsetDuration(bytes: number): { seconds: bigint; nanos: number } {
  const frames = Math.floor(bytes / 2);
  return {
    seconds: BigInt(Math.floor(frames / TARGET_RATE)),
    nanos: (frames % TARGET_RATE) * (1e9 / TARGET_RATE),
  };
}

/**
 * Whether the page's URL fragment turns resuming off: `#resume=off` (also
 * beside a token, `#token=...&resume=off`).
 */
export function resumeOffInFragment(hash: string): boolean {
  const value = new URLSearchParams(hash.replace(/^#/, "")).get("resume");
  return value === "off" || value === "0" || value === "false";
}

/**
 * The stream's audio from some offset on, as it was sent, in its chunks.
 * Offsets count bytes from the start of the stream.
 */
export class AudioKeeper {
  private chunks: { offset: number; data: ArrayBuffer }[] = [];
  /** The offset of the first byte kept. */
  private first = 0;
  /** The offset after the last byte kept: all the audio of the stream. */
  private last = 0;

  constructor(readonly maxBytes = MAX_KEPT_BYTES) {}

  /** The offset of the first byte kept. */
  get start(): number {
    return this.first;
  }

  /** The length of the stream so far. */
  get end(): number {
    return this.last;
  }

  /** Appends a chunk; beyond `maxBytes`, the oldest chunks are dropped. */
  push(data: ArrayBuffer): void {
    this.chunks.push({ offset: this.last, data });
    this.last += data.byteLength;
    while (this.chunks.length > 0 && this.last - this.first > this.maxBytes) {
      this.chunks.shift();
      this.first = this.chunks[0]?.offset ?? this.last;
    }
  }

  /** Drops the chunks that end at or before `offset`: the server needs them no more. */
  release(offset: number): void {
    while (this.chunks.length > 0) {
      const { offset: at, data } = this.chunks[0];
      if (at + data.byteLength > offset) break;
      this.chunks.shift();
    }
    this.first = this.chunks[0]?.offset ?? this.last;
  }

  /** Whether the audio from `offset` to the end is all kept. */
  covers(offset: number): boolean {
    return offset >= this.first && offset <= this.last;
  }

  /** The audio from `offset` on (which it must cover), in chunks. */
  from(offset: number): ArrayBuffer[] {
    const chunks: ArrayBuffer[] = [];
    for (const { offset: at, data } of this.chunks) {
      if (at + data.byteLength <= offset) continue;
      chunks.push(at < offset ? data.slice(offset - at) : data);
    }
    return chunks;
  }

  /**
   * Makes the first byte kept the start of the stream: audio held before the
   * stream began is numbered from there, whatever was dropped before it.
   */
  anchor(): void {
    for (const chunk of this.chunks) chunk.offset -= this.first;
    this.last -= this.first;
    this.first = 0;
  }
}

/** One connection of the stream: what ResumingStream uses of a BridgeSession. */
export interface Connection {
  readonly isOpen: boolean;
  sendAudio(pcm: ArrayBuffer): void;
  finalize(): void;
  updateLanguages(languageCode: string, translationLanguageCodes: string[]): void;
  endOfAudio(): void;
  abort(): void;
}

/** Opens a connection whose first message is `opening` (a new BridgeSession). */
export type Connect = (opening: OpeningRequest, handlers: BridgeHandlers) => Connection;

export type BridgeError = Extract<BridgeOutcome, { kind: "error" }>;

export interface StreamHandlers {
  /** The first connection is open and its config sent. */
  onOpen?(): void;
  /** The session started (once: a resume does not start another). */
  onSession?(session: SessionStarted): void;
  onSpeechEvent?(event: SpeechEvent): void;
  onResult?(result: StreamingRecognitionResult): void;
  /** The connection was lost (`error`); try `attempt` (from 1) starts after `delayMs`. */
  onReconnecting?(error: BridgeError, delayMs: number, attempt: number): void;
  /** The server took the resume: the stream goes on. */
  onResumed?(): void;
  /** Called once, last. */
  onClose(outcome: BridgeOutcome): void;
}

export interface ResumeOptions {
  /** False: a lost connection ends the stream with its error, as without resuming. */
  resume?: boolean;
  maxKeptBytes?: number;
  /** The wait before try `attempt` (from 0). */
  delayMs?: (attempt: number) => number;
}

/**
 * One recognition stream over the bridge, across as many connections as it
 * takes: the same calls as a BridgeSession, and the same outcome at the end.
 */
export class ResumingStream {
  private readonly resume: boolean;
  private readonly delayMs: (attempt: number) => number;
  private readonly kept: AudioKeeper;
  private connection: Connection | null = null;
  /** Whether the current connection is open and audio goes straight to it. */
  private flowing = false;
  /** Whether a connection of this stream has opened: stream offsets are fixed. */
  private started = false;
  private finished = false;
  private aborted = false;
  /** Why the stream was given up while reconnecting, reported at its close. */
  private failure: BridgeError | null = null;
  private audioEnded = false;
  private token = "";
  /** The sequence of the last response received. */
  private lastSequence = 0n;
  /** Where the last checkpoint says the server needs the audio from. */
  private accounted = 0;
  /** Whether the last checkpoint says the gateway handed the session over. */
  private elsewhere = false;
  /** Tries since the last resume the server took. */
  private attempts = 0;
  /** The loss being recovered from, while reconnecting. */
  private lost: BridgeError | null = null;
  private timer?: ReturnType<typeof setTimeout>;
  /** The latest language change, sent again on every new connection. */
  private languages: [string, string[]] | null = null;

  constructor(
    private readonly connect: Connect,
    config: StreamingConfigInit,
    private readonly handlers: StreamHandlers,
    options: ResumeOptions = {},
  ) {
    this.resume = options.resume ?? true;
    this.delayMs = options.delayMs ?? resumeDelayMs;
    this.kept = new AudioKeeper(options.maxKeptBytes);
    // Throws where the connection cannot even be created (a malformed URL).
    this.open({ case: "streamingConfig", value: config }, 0);
  }

  /** Whether audio and controls reach the server now (not while reconnecting). */
  get isOpen(): boolean {
    return this.flowing && (this.connection?.isOpen ?? false);
  }

  /** Whether the stream is between a lost connection and a resumed one. */
  get reconnecting(): boolean {
    return this.lost !== null;
  }

  /**
   * Sends a chunk of 16 kHz LINEAR16 audio, and keeps it until a checkpoint
   * says the server needs it no more. Held while no connection is open.
   */
  sendAudio(pcm: ArrayBuffer): void {
    if (this.ended || this.audioEnded) return;
    // Without resuming, audio is only held until the first connection opens.
    if (this.resume || !this.started) this.kept.push(pcm);
    if (this.isOpen) {
      this.connection!.sendAudio(pcm);
    } else if (this.lost && !this.flowing && !this.kept.covers(this.accounted)) {
      // Reconnecting for so long that the audio to resend no longer fits.
      this.giveUp(this.tooLong(this.lost));
    }
  }

  /** Ends the utterance in progress now (only while connected). */
  finalize(): void {
    if (this.isOpen) this.connection!.finalize();
  }

  /**
   * Changes the languages from the next utterance. Sent again on a resumed
   * connection, in case the lost one did not deliver it.
   */
  updateLanguages(languageCode: string, translationLanguageCodes: string[]): void {
    this.languages = [languageCode, translationLanguageCodes];
    if (this.isOpen) this.connection!.updateLanguages(languageCode, translationLanguageCodes);
  }

  /**
   * No more audio: sent now, or once a connection is open again. The server
   * then sends the last final and closes (reported as "done").
   */
  endOfAudio(): void {
    if (this.audioEnded) return;
    this.audioEnded = true;
    if (this.isOpen) this.connection!.endOfAudio();
  }

  /** Ends the stream now, connected or waiting to reconnect. */
  abort(): void {
    if (this.ended) return;
    this.aborted = true;
    clearTimeout(this.timer);
    if (this.connection) this.connection.abort(); // its close reports "aborted"
    else this.finish({ kind: "aborted" });
  }

  /** Opens a connection that, once open, gets the kept audio from offset `from` on. */
  private open(opening: OpeningRequest, from: number): void {
    const connection: Connection = this.connect(opening, {
      onOpen: () => this.handleOpen(connection, opening, from),
      onSession: (session) => {
        if (this.connection === connection) this.handleSession(session);
      },
      onSpeechEvent: (event, sequence) => {
        if (this.fresh(connection, sequence)) this.handlers.onSpeechEvent?.(event);
      },
      onResult: (result, sequence) => {
        if (this.fresh(connection, sequence)) this.handlers.onResult?.(result);
      },
      onCheckpoint: (checkpoint, sequence) => {
        if (!this.fresh(connection, sequence)) return;
        this.accounted = offsetBytes(checkpoint.accountedOffset);
        this.elsewhere = checkpoint.resumeElsewhere;
        this.kept.release(this.accounted);
      },
      onClose: (outcome) => this.handleClose(connection, outcome),
    });
    this.connection = connection;
  }

  private handleOpen(connection: Connection, opening: OpeningRequest, from: number): void {
    if (this.connection !== connection || this.ended) return;
    if (!this.started) {
      // Audio captured while the first socket opened is the stream's start.
      this.started = true;
      this.kept.anchor();
    }
    for (const chunk of this.kept.from(from)) connection.sendAudio(chunk);
    if (!this.resume) this.kept.release(this.kept.end);
    this.flowing = true;
    if (this.languages) connection.updateLanguages(...this.languages);
    if (this.audioEnded) connection.endOfAudio();
    if (opening.case === "streamingConfig") this.handlers.onOpen?.();
  }

  private handleSession(session: SessionStarted): void {
    if (session.resumed) {
      this.attempts = 0;
      this.lost = null;
      this.handlers.onResumed?.();
      return;
    }
    if (this.resume) this.token = session.resumeToken;
    this.handlers.onSession?.(session);
  }

  /**
   * Whether a response on `connection` is new: a resumed connection first
   * sends again what came after the `lastSequence` it was given, which may
   * include responses the lost connection delivered after all.
   */
  private fresh(connection: Connection, sequence: bigint): boolean {
    if (this.connection !== connection) return false;
    if (sequence === 0n) return true; // a server that does not number its responses
    if (sequence <= this.lastSequence) return false;
    this.lastSequence = sequence;
    return true;
  }

  private handleClose(connection: Connection, outcome: BridgeOutcome): void {
    if (this.connection !== connection) return;
    this.connection = null;
    this.flowing = false;
    // Told by this connection only: the next is a fresh one.
    const elsewhere = this.elsewhere;
    this.elsewhere = false;
    if (this.failure) {
      this.finish(this.failure);
      return;
    }
    if (this.aborted || outcome.kind !== "error") {
      this.finish(outcome);
      return;
    }
    const why = this.cannotResume(outcome);
    if (why !== null) {
      this.finish(why);
      return;
    }
    this.lost ??= outcome;
    // A gateway that handed the session over is no failed try: the next goes
    // at once (to another gateway), and does not count toward giving up.
    const delayMs = elsewhere ? 0 : this.delayMs(this.attempts);
    const attempt = this.attempts + 1;
    if (!elsewhere) this.attempts = attempt;
    this.handlers.onReconnecting?.(outcome, delayMs, attempt);
    this.timer = setTimeout(() => this.reconnect(), delayMs);
  }

  /** Null when `error` is a lost connection this stream can resume; else the error to show. */
  private cannotResume(error: BridgeError): BridgeError | null {
    const lost = this.lost;
    // A failed resume is told with the loss it was recovering from.
    const failed = lost
      ? { ...error, message: `${error.message} (resuming after ${lost.status}: ${lost.message})` }
      : error;
    if (!this.resume || !this.token || !isConnectionLoss(error)) return failed;
    if (this.attempts >= MAX_RESUME_ATTEMPTS) {
      return { ...failed, message: `${failed.message}; gave up after ${MAX_RESUME_ATTEMPTS} tries` };
    }
    if (!this.kept.covers(this.accounted)) return this.tooLong(failed);
    return null;
  }

  /** `error`, saying that the audio to resend is more than is kept. */
  private tooLong(error: BridgeError): BridgeError {
    const seconds = Math.round(this.kept.maxBytes / BYTES_PER_SECOND);
    const why = `the audio the server still needs is more than the ${seconds} s kept`;
    return { ...error, message: `${error.message} (cannot resume: ${why})` };
  }

  /** Ends the stream with `error`: at once, or when the connection opening now closes. */
  private giveUp(error: BridgeError): void {
    this.failure = error;
    clearTimeout(this.timer);
    if (this.connection) this.connection.abort();
    else this.finish(error);
  }

  private get ended(): boolean {
    return this.finished || this.aborted || this.failure !== null;
  }

  private reconnect(): void {
    this.timer = undefined;
    if (this.ended) return;
    try {
      const opening: OpeningRequest = {
        case: "resume",
        value: {
          resumeToken: this.token,
          lastSequence: this.lastSequence,
          audioOffset: offsetDuration(this.accounted),
        },
      };
      this.open(opening, this.accounted);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.finish({ kind: "error", status: "UNAVAILABLE", message });
    }
  }

  private finish(outcome: BridgeOutcome): void {
    if (this.finished) return;
    this.finished = true;
    this.lost = null;
    clearTimeout(this.timer);
    this.handlers.onClose(outcome);
  }
}
