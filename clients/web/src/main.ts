/**
 * The Dragoman live captions page: wires the three sections of index.html to
 * their controllers. Every URL is relative to the page: Envoy serves the page,
 * gRPC-Web and the WebSocket bridge on one origin.
 */
import { bridgeUrl } from "./bridge";
import { CaptionBoard } from "./captions";
import { pageToken } from "./credentials";
import { byId } from "./dom";
import { LanguagePicker } from "./languages";
import { RoomListener } from "./listen";
import { LiveCaptions } from "./live";
import { setupFileRecognition } from "./recognize";
import { resumeOffInFragment } from "./resume";
import { createSpeechClient } from "./rpc";

function main(): void {
  const languages = new LanguagePicker(byId("source", HTMLSelectElement), byId("targets", HTMLElement));
  const token = pageToken(location);
  const client = createSpeechClient(location.origin, token);
  // On unless the fragment says `resume=off` (`/#resume=off`, `/#token=...&resume=off`).
  const resume = byId("resume", HTMLInputElement);
  resume.checked = !resumeOffInFragment(location.hash);

  new LiveCaptions(
    {
      start: byId("start", HTMLButtonElement),
      stop: byId("stop", HTMLButtonElement),
      finalize: byId("finalize", HTMLButtonElement),
      room: byId("room", HTMLInputElement),
      speakerLabel: byId("speaker-label", HTMLInputElement),
      resume,
      status: byId("status", HTMLElement),
      session: byId("session", HTMLElement),
      activity: byId("activity", HTMLElement),
      languagesHint: byId("languages-hint", HTMLElement),
      captions: new CaptionBoard(byId("captions", HTMLElement)),
      languages,
    },
    bridgeUrl(location),
    new URL("capture-worklet.js", document.baseURI),
    token,
  );

  setupFileRecognition(client, {
    file: byId("file", HTMLInputElement),
    button: byId("recognize", HTMLButtonElement),
    status: byId("file-status", HTMLElement),
    results: new CaptionBoard(byId("file-results", HTMLElement)),
    languages: () => languages.read(),
  });

  new RoomListener(client, {
    room: byId("listen-room", HTMLInputElement),
    language: byId("listen-language", HTMLSelectElement),
    button: byId("listen", HTMLButtonElement),
    status: byId("listen-status", HTMLElement),
    captions: new CaptionBoard(byId("listen-captions", HTMLElement)),
  });
}

main();
