/**
 * Whole-file recognition: the unary Recognize call over gRPC-Web. The file is
 * sent as it is (AUDIO_ENCODING_COMPRESSED); the server decodes any container
 * FFmpeg reads and splits it into utterances.
 */
import { AudioEncoding, type RecognizeResponse } from "../gen/dragoman/speech/v1/speech_pb";
import type { CaptionBoard } from "./captions";
import { durationSeconds } from "./dom";
import { describeError } from "./errors";
import type { Languages } from "./languages";
import type { SpeechClient } from "./rpc";
import { setStatus } from "./status";

export type FileState = "idle" | "working" | "done" | "error";

export interface FileRecognitionView {
  file: HTMLInputElement;
  button: HTMLButtonElement;
  status: HTMLElement;
  results: CaptionBoard;
  /** The current language choice, read at each call. */
  languages(): Languages;
}

/** Sends one file to Recognize. */
export async function recognizeFile(
  client: SpeechClient,
  file: Blob,
  languages: Languages,
  signal?: AbortSignal,
): Promise<RecognizeResponse> {
  const audioContent = new Uint8Array(await file.arrayBuffer());
  return client.recognize(
    {
      config: {
        encoding: AudioEncoding.COMPRESSED,
        languageCode: languages.languageCode,
        translationLanguageCodes: languages.translationLanguageCodes,
      },
      audioContent,
    },
    { signal },
  );
}

/** Wires the file section: pick a file, press Recognize, read the captions. */
export function setupFileRecognition(client: SpeechClient, view: FileRecognitionView): void {
  let busy = false;
  view.button.addEventListener("click", async () => {
    if (busy) return;
    const file = view.file.files?.[0];
    if (!file) {
      setStatus<FileState>(view.status, "error", "choose an audio file first");
      return;
    }
    busy = true;
    view.button.disabled = true;
    view.results.clear();
    setStatus<FileState>(view.status, "working", `recognizing ${file.name}…`);
    try {
      const response = await recognizeFile(client, file, view.languages());
      for (const result of response.results) view.results.show(String(result.segmentId), result);
      const spoken = response.results.filter((result) => result.transcript.trim() !== "").length;
      const seconds = durationSeconds(response.totalBilledDuration).toFixed(1);
      const found = spoken ? `${spoken} utterance${spoken === 1 ? "" : "s"}` : "no speech found";
      setStatus<FileState>(view.status, "done", `done: ${found} in ${seconds} s of audio`);
    } catch (err) {
      setStatus<FileState>(view.status, "error", describeError(err));
    } finally {
      busy = false;
      view.button.disabled = false;
    }
  });
}
