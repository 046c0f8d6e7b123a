/**
 * Renders recognition results as captions: one element per segment, which
 * later revisions of the segment replace in place.
 *
 *   <div class="caption interim|final" data-segment="3" data-revision="2" lang="en">
 *     <p class="transcript">Ask not what your country can do for you.</p>
 *     <p class="translation" data-lang="pt" lang="pt">Não pergunte ...</p>
 *   </div>
 *
 * The language badge of a translation is drawn by CSS from `data-lang`, so an
 * element's text is exactly the transcript or translation.
 */
import type { StreamingRecognitionResult } from "../gen/dragoman/speech/v1/speech_pb";

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
   * Shows `result` as the caption `key` (the segment id, or session and
   * segment ids for a room with several speakers). `attributes` are set as
   * data-* attributes on a new caption.
   */
  show(key: string, result: StreamingRecognitionResult, attributes: Record<string, string> = {}): void {
    let element = this.elements.get(key);
    if (element && isStale(element, result)) return;

    // Nothing said, or the text was suppressed as a likely hallucination.
    if (!hasText(result)) {
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
    render(element, result);
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

function hasText(result: StreamingRecognitionResult): boolean {
  return result.transcript.trim() !== "";
}

function render(element: HTMLElement, result: StreamingRecognitionResult): void {
  element.className = `caption ${result.isFinal ? "final" : "interim"}`;
  element.dataset.revision = String(result.revision);
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
