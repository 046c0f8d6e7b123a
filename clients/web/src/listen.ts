/**
 * Room listener: follows a caption room with the server-streaming
 * StreamCaptions call over gRPC-Web, in the language the listener picks,
 * until the user stops it. Each caption shows who said it.
 *
 * States (on #listen-status as data-state): idle -> listening ->
 * (reconnecting -> listening)* -> stopped, or error from any of them.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { CaptionBoard } from "./captions";
import { describeError } from "./errors";
import { followRoom } from "./room";
import type { SpeechClient } from "./rpc";
import { setStatus } from "./status";

export type ListenState = "idle" | "listening" | "reconnecting" | "error" | "stopped";

export interface RoomListenerView {
  room: HTMLInputElement;
  /** The language to read the captions in; "" for the spoken languages. */
  language: HTMLSelectElement;
  button: HTMLButtonElement;
  status: HTMLElement;
  captions: CaptionBoard;
}

export class RoomListener {
  private abort: AbortController | null = null;

  constructor(
    private readonly client: SpeechClient,
    private readonly view: RoomListenerView,
  ) {
    view.button.addEventListener("click", () => (this.abort ? this.stop() : void this.start()));
    this.showIdle();
  }

  /** Joins the room in the input and renders its captions until stopped. */
  async start(): Promise<void> {
    const room = this.view.room.value.trim();
    if (!room) {
      setStatus<ListenState>(this.view.status, "error", "enter the name of a room");
      return;
    }
    const languageCode = this.view.language.value;
    const listening = `listening to room ${room} in ${this.languageName()}`;
    const abort = new AbortController();
    this.abort = abort;
    // The room and the language hold for the whole call: the server
    // translates into the language asked for when the call starts.
    this.view.room.disabled = true;
    this.view.language.disabled = true;
    this.view.button.textContent = "Stop listening";
    this.view.captions.clear();
    setStatus<ListenState>(this.view.status, "listening", listening);
    try {
      await followRoom(
        this.client,
        { room, languageCode },
        {
          onCaption: (caption) => this.view.captions.showRoomCaption(caption),
          // Not an error: the call is retried after the last final received.
          onReconnecting: (error, delayMs) =>
            setStatus<ListenState>(
              this.view.status,
              "reconnecting",
              `reconnecting in ${Math.round(delayMs / 1000)} s (${describeError(error)})…`,
            ),
          onReconnected: () => setStatus<ListenState>(this.view.status, "listening", listening),
        },
        abort.signal,
      );
      setStatus<ListenState>(this.view.status, "stopped", "the room's stream ended");
    } catch (err) {
      if (abort.signal.aborted || (err instanceof ConnectError && err.code === Code.Canceled)) {
        setStatus<ListenState>(this.view.status, "stopped", "stopped");
      } else {
        setStatus<ListenState>(this.view.status, "error", describeError(err));
      }
    } finally {
      if (this.abort === abort) this.abort = null;
      this.showIdle();
    }
  }

  /** Leaves the room (cancels the call, or the wait to reconnect). */
  stop(): void {
    this.abort?.abort();
  }

  /** "Portuguese", or "the original languages" for the empty choice. */
  private languageName(): string {
    const { language } = this.view;
    if (!language.value) return "the original languages";
    return language.selectedOptions[0]?.text ?? language.value;
  }

  private showIdle(): void {
    this.view.room.disabled = false;
    this.view.language.disabled = false;
    this.view.button.textContent = "Listen";
  }
}
