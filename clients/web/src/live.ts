/**
 * Live captions: the microphone streamed over the WebSocket bridge, with
 * interim and final results rendered as they come.
 *
 * States (on #status as data-state): idle -> connecting -> listening ->
 * closing -> stopped, or error from any of them. With resuming on (the
 * default), a lost connection goes to reconnecting, and back to listening (or
 * closing) once the session has resumed; error only if it cannot.
 */
import { AudioEncoding, SpeechEvent_SpeechEventType } from "../gen/dragoman/speech/v1/speech_pb";
import { BridgeSession, type BridgeOutcome, type StreamingConfigInit } from "./bridge";
import { startCapture, type Capture } from "./capture";
import { TARGET_RATE } from "./capture-protocol";
import type { CaptionBoard } from "./captions";
import { describeError } from "./errors";
import type { LanguagePicker, Languages } from "./languages";
import { MAX_RESUME_ATTEMPTS, ResumingStream } from "./resume";
import { setStatus } from "./status";
import { newTrace, withTraceparent } from "./tracing";

export type LiveState =
  | "idle"
  | "connecting"
  | "listening"
  | "reconnecting"
  | "closing"
  | "stopped"
  | "error";

/**
 * How long to wait, after `endOfAudio`, for the server's last final result
 * and its close. Generous: the final of a long utterance on a CPU takes a
 * while.
 */
const CLOSE_TIMEOUT_MS = 30_000;

const CLOSING = "finishing the last utterance…";

export interface LiveView {
  start: HTMLButtonElement;
  stop: HTMLButtonElement;
  finalize: HTMLButtonElement;
  room: HTMLInputElement;
  /** The name the room's listeners see for this speaker ("Ana"). */
  speakerLabel: HTMLInputElement;
  /** Checked: a dropped connection is resumed instead of ending the stream. */
  resume: HTMLInputElement;
  status: HTMLElement;
  /** Session id and model, once the server names them. */
  session: HTMLElement;
  /** Lit (data-active) while the server hears speech. */
  activity: HTMLElement;
  /** Says that language changes apply from the next utterance. */
  languagesHint: HTMLElement;
  captions: CaptionBoard;
  languages: LanguagePicker;
}

/** One press of Start, until the stream has ended. */
interface Run {
  session: ResumingStream;
  capture: Capture | null;
  open: boolean;
  stopping: boolean;
  /** Why the page ended the stream itself, when that is an error. */
  failure: string | null;
  closeTimer?: ReturnType<typeof setTimeout>;
}

export class LiveCaptions {
  private run: Run | null = null;

  constructor(
    private readonly view: LiveView,
    private readonly bridgeUrl: string,
    private readonly workletUrl: URL,
    private readonly token: string,
  ) {
    view.start.addEventListener("click", () => void this.start());
    view.stop.addEventListener("click", () => void this.stop());
    view.finalize.addEventListener("click", () => this.run?.session.finalize());
    view.languages.onChange((languages) => this.updateLanguages(languages));
    this.setState("idle", "idle");
  }

  /** Opens the microphone and the bridge together, and streams until stopped. */
  async start(): Promise<void> {
    if (this.run) return;
    const config = this.streamingConfig();
    this.view.captions.clear();
    this.view.session.textContent = "";
    this.setState("connecting", "connecting…");

    // Every connection of the stream, resumed ones too, joins one trace.
    const trace = newTrace();
    const url = withTraceparent(this.bridgeUrl, trace);
    let run: Run;
    try {
      run = this.run = {
        session: new ResumingStream(
          (opening, handlers) => new BridgeSession(url, opening, handlers, this.token),
          config,
          {
            onOpen: () => {
              run.open = true;
              this.showListening(run);
            },
            onSession: ({ sessionId, model }) => {
              this.view.session.textContent = `model ${model} · session ${sessionId} · trace ${trace.traceId}`;
            },
            onSpeechEvent: ({ type }) => {
              if (type === SpeechEvent_SpeechEventType.ACTIVITY_BEGIN) this.setActivity(true);
              if (type === SpeechEvent_SpeechEventType.ACTIVITY_END) this.setActivity(false);
            },
            onResult: (result) => this.view.captions.show(String(result.segmentId), result),
            // Not an error: the session is kept for the page, and the audio
            // meanwhile is sent once it has resumed.
            onReconnecting: (_error, _delayMs, attempt) => {
              if (this.run !== run) return;
              this.setActivity(false);
              const tries = attempt > 1 ? ` (try ${attempt} of ${MAX_RESUME_ATTEMPTS})` : "";
              this.setState("reconnecting", `connection lost; reconnecting…${tries}`);
            },
            onResumed: () => {
              if (this.run !== run) return;
              if (run.stopping) this.setState("closing", CLOSING);
              else this.showListening(run);
            },
            onClose: (outcome) => this.finish(run, outcome),
          },
          { resume: this.view.resume.checked },
        ),
        capture: null,
        open: false,
        stopping: false,
        failure: null,
      };
    } catch (err) {
      this.setState("error", describeError(err));
      return;
    }
    this.updateControls();

    // Audio captured while the socket opens (or reopens) is held by the stream.
    try {
      const capture = await startCapture(this.workletUrl, (pcm) => run.session.sendAudio(pcm));
      if (this.run !== run || run.stopping) {
        await capture.stop();
        return;
      }
      run.capture = capture;
      this.showListening(run);
    } catch (err) {
      if (this.run !== run) return;
      run.failure = `microphone: ${describeError(err)}`;
      run.session.abort();
    }
  }

  /**
   * Sends the rest of the audio and endOfAudio, then waits for the server to
   * send the last final result and close.
   */
  async stop(): Promise<void> {
    const run = this.run;
    if (!run || run.stopping) return;
    run.stopping = true;
    this.updateControls();
    if (!run.open) {
      run.session.abort();
      return;
    }
    if (!run.session.reconnecting) this.setState("closing", CLOSING);
    await run.capture?.stop(); // delivers the last partial chunk first
    if (this.run !== run) return; // the server ended the stream meanwhile
    run.session.endOfAudio();
    run.closeTimer = setTimeout(() => {
      run.failure = "DEADLINE_EXCEEDED: the server did not close the stream";
      run.session.abort();
    }, CLOSE_TIMEOUT_MS);
  }

  private finish(run: Run, outcome: BridgeOutcome): void {
    if (this.run !== run) return;
    this.run = null;
    clearTimeout(run.closeTimer);
    void run.capture?.stop();
    this.setActivity(false);
    if (outcome.kind === "error") {
      this.setState("error", `${outcome.status}: ${outcome.message}`);
    } else if (run.failure) {
      this.setState("error", run.failure);
    } else {
      this.setState("stopped", "stopped");
    }
  }

  private showListening(run: Run): void {
    if (this.run === run && run.open && run.capture && !run.stopping && !run.session.reconnecting) {
      this.setState("listening", "listening");
    }
  }

  private updateLanguages(languages: Languages): void {
    const run = this.run;
    // Held while the stream connects or reconnects, and sent then.
    if (!run || run.stopping) return;
    run.session.updateLanguages(languages.languageCode, languages.translationLanguageCodes);
    // Restart the highlight animation, so a second change flashes again.
    const hint = this.view.languagesHint;
    hint.classList.remove("flash");
    void hint.offsetWidth;
    hint.classList.add("flash");
  }

  private streamingConfig(): StreamingConfigInit {
    const { languageCode, translationLanguageCodes } = this.view.languages.read();
    const captionRoom = this.view.room.value.trim();
    return {
      config: {
        encoding: AudioEncoding.LINEAR16,
        sampleRateHertz: TARGET_RATE,
        audioChannelCount: 1,
        languageCode,
        translationLanguageCodes,
      },
      interimResults: true,
      enableSpeechEvents: true,
      // Empty (the default) publishes nowhere.
      captionRoom,
      // Only listeners of a room see it; empty lets the server name the
      // speaker by the token's subject, if any.
      speakerLabel: captionRoom ? this.view.speakerLabel.value.trim() : "",
    };
  }

  private setState(state: LiveState, text: string): void {
    setStatus<LiveState>(this.view.status, state, text);
    this.updateControls();
  }

  private updateControls(): void {
    const run = this.run;
    const listening = this.view.status.dataset.state === "listening";
    this.view.start.disabled = run !== null;
    this.view.stop.disabled = run === null || run.stopping;
    this.view.finalize.disabled = !listening;
    this.view.room.disabled = run !== null;
    this.view.speakerLabel.disabled = run !== null;
    this.view.resume.disabled = run !== null;
  }

  private setActivity(active: boolean): void {
    this.view.activity.dataset.active = String(active);
  }
}
