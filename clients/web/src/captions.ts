/**
 * Renders recognition results as captions: one element per segment, which
 * later revisions of the segment replace in place.
 *
 *   <div class="caption interim|final" data-segment="3" data-revision="2" lang="en">
 *     <p class="transcript">Ask not what your country can do for you.</p>
 *     <p class="translation" data-lang="pt" lang="pt">Não pergunte ...</p>
 *   </div>
 *
 * A caption room's caption says who spoke, and has one text, in the language
 * the listener reads (the original transcript when it could not be
 * translated, with the reason under it):
 *
 *   <div class="caption room final" data-speaker="6f1c…" data-segment="1" data-revision="2" lang="pt">
 *     <p class="speaker">Ana</p>
 *     <p class="text" lang="pt">Não pergunte o que seu país pode fazer por você.</p>
 *     <p class="translation error" data-lang="pt">(only when translation.error is set)</p>
 *   </div>
 *
 * The language badge of a translation is drawn by CSS from `data-lang`, so an
 * element's text is exactly the transcript or translation.
 */
import type {
  StreamCaptionsResponse,
  StreamingRecognitionResult,
} from "../gen/dragoman/speech/v1/speech_pb";

/** Captions kept on screen; older ones are dropped. */
const MAX_CAPTIONS = 300;

/** How close to the bottom (px) counts as "following" the newest caption. */
const FOLLOW_SLACK_PX = 48;

export class CaptionBoard {
  private readonly elements = new Map<string, HTMLElement>();

  constructor(private readonly container: HTMLElement) {}

  /** Removes every caption. */
  clear(): void {
    this.elements.clear();
    this.container.replaceChildren();
  }

  /**
   * Shows `result` as the caption `key` (its segment id). `attributes` are set
   * as data-* attributes on a new caption.
   */
  show(key: string, result: StreamingRecognitionResult, attributes: Record<string, string> = {}): void {
    this.place(key, result, result.transcript, attributes, (element) => render(element, result));
  }

  /**
   * Shows a caption of a room, keyed by speaker and segment: segment ids
   * count per speaking stream, and several people may speak in one room.
   */
  showRoomCaption(caption: StreamCaptionsResponse): void {
    const { result } = caption;
    if (!result) return;
    const speaker = caption.speaker?.id || caption.sessionId;
    this.place(`${speaker}/${result.segmentId}`, result, caption.text, { speaker }, (element) =>
      renderRoomCaption(element, caption, result),
    );
  }

  /**
   * Creates, updates or removes the caption `key` for a revision of `result`
   * whose shown text is `text`; `fill` draws the revision into the element.
   */
  private place(
    key: string,
    result: StreamingRecognitionResult,
    text: string,
    attributes: Record<string, string>,
    fill: (element: HTMLElement) => void,
  ): void {
    let element = this.elements.get(key);
    if (element && isStale(element, result)) return;

    // Nothing said, or the text was suppressed as a likely hallucination.
    if (text.trim() === "") {
      if (element) {
        if (!result.isFinal) return; // keep the last words until the final says otherwise
        element.remove();
        this.elements.delete(key);
      }
      return;
    }

    const following = this.isFollowing();
    if (!element) {
      element = document.createElement("div");
      element.dataset.segment = String(result.segmentId);
      for (const [name, value] of Object.entries(attributes)) element.dataset[name] = value;
      this.elements.set(key, element);
      this.container.append(element);
      this.trim();
    }
    element.className = `caption ${result.isFinal ? "final" : "interim"}`;
    element.dataset.revision = String(result.revision);
    fill(element);
    if (following) this.container.scrollTop = this.container.scrollHeight;
  }

  private isFollowing(): boolean {
    const { scrollTop, scrollHeight, clientHeight } = this.container;
    return scrollHeight - scrollTop - clientHeight <= FOLLOW_SLACK_PX;
  }

  private trim(): void {
    for (const [key, element] of this.elements) {
      if (this.elements.size <= MAX_CAPTIONS) break;
      element.remove();
      this.elements.delete(key);
    }
  }
}

/** An older revision, or anything after the final result, changes nothing. */
function isStale(element: HTMLElement, result: StreamingRecognitionResult): boolean {
  if (element.classList.contains("final")) return true;
  return Number(element.dataset.revision ?? 0) > result.revision;
}

function render(element: HTMLElement, result: StreamingRecognitionResult): void {
  if (result.languageCode) element.lang = result.languageCode;

  const transcript = document.createElement("p");
  transcript.className = "transcript";
  transcript.textContent = result.transcript;

  const translations = result.translations.map((translation) => {
    const line = document.createElement("p");
    line.className = "translation";
    line.dataset.lang = translation.languageCode;
    line.lang = translation.languageCode;
    if (translation.error) {
      line.classList.add("error");
      line.textContent = translation.error;
    } else {
      line.textContent = translation.text;
      if (translation.backend) line.title = `translated by ${translation.backend}`;
    }
    return line;
  });
  element.replaceChildren(transcript, ...translations);
}

/** Characters of a speaker id shown when the speaker has no label. */
const SHORT_ID_LENGTH = 8;

/**
 * Who spoke: the stream's label ("Ana"), else a short form of its session id,
 * which at least tells two unnamed speakers apart.
 */
export function speakerName(caption: Pick<StreamCaptionsResponse, "speaker" | "sessionId">): string {
  const label = caption.speaker?.label.trim();
  if (label) return label;
  const id = caption.speaker?.id || caption.sessionId;
  return id ? `speaker ${id.slice(0, SHORT_ID_LENGTH)}` : "unknown speaker";
}

function renderRoomCaption(
  element: HTMLElement,
  caption: StreamCaptionsResponse,
  result: StreamingRecognitionResult,
): void {
  element.classList.add("room");
  if (caption.languageCode) element.lang = caption.languageCode;

  const speaker = document.createElement("p");
  speaker.className = "speaker";
  speaker.textContent = speakerName(caption);
  if (caption.speaker?.id) speaker.title = `session ${caption.speaker.id}`;

  const text = document.createElement("p");
  text.className = "text";
  text.textContent = caption.text;
  const { translation } = caption;
  const translated = translation !== undefined && !translation.error;
  // A translation is in the listener's language; anything else is the
  // transcript, in the language it was spoken in.
  const lang = translated ? caption.languageCode : caption.sourceLanguageCode || result.languageCode;
  if (lang) text.lang = lang;
  if (translated) {
    const by = translation.backend ? ` by ${translation.backend}` : "";
    text.title = `translated from ${caption.sourceLanguageCode || "the spoken language"}${by}`;
  }

  if (!translation?.error) {
    element.replaceChildren(speaker, text);
    return;
  }
  // Shown untranslated: the listener must see why.
  element.classList.add("untranslated");
  const error = document.createElement("p");
  error.className = "translation error";
  error.dataset.lang = translation.languageCode || caption.languageCode;
  error.textContent = translation.error;
  element.replaceChildren(speaker, text, error);
}
