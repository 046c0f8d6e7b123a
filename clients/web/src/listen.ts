/**
 * Room listener: follows a caption room with the server-streaming
 * StreamCaptions call over gRPC-Web, until the user stops it.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { CaptionBoard } from "./captions";
import { describeError } from "./errors";
import type { SpeechClient } from "./rpc";
import { setStatus } from "./status";

export type ListenState = "idle" | "listening" | "error" | "stopped";

export interface RoomListenerView {
  room: HTMLInputElement;
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
    const abort = new AbortController();
    this.abort = abort;
    this.view.room.disabled = true;
    this.view.button.textContent = "Stop listening";
    this.view.captions.clear();
    setStatus<ListenState>(this.view.status, "listening", `listening to room ${room}`);
    try {
      const stream = this.client.streamCaptions({ room, interimResults: true }, { signal: abort.signal });
      for await (const caption of stream) {
        const { sessionId, result } = caption;
        if (!result) continue;
        // Several speakers may share a room; segment ids count per stream.
        this.view.captions.show(`${sessionId}/${result.segmentId}`, result, { session: sessionId });
      }
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

  /** Leaves the room (cancels the call). */
  stop(): void {
    this.abort?.abort();
  }

  private showIdle(): void {
    this.view.room.disabled = false;
    this.view.button.textContent = "Listen";
  }
}
