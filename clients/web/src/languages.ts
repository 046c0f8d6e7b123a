/** The language controls shared by the live stream and file recognition. */

export interface Languages {
  /** ISO 639-1 code of the speech; "" detects it per utterance. */
  languageCode: string;
  /** ISO 639-1 codes to translate into, in the order shown. */
  translationLanguageCodes: string[];
}

export class LanguagePicker {
  constructor(
    private readonly source: HTMLSelectElement,
    private readonly targets: HTMLElement,
  ) {}

  /** The current choice. The "auto" option is sent as "" (detect). */
  read(): Languages {
    const checked = this.targets.querySelectorAll<HTMLInputElement>("input[name=target]:checked");
    return {
      languageCode: this.source.value === "auto" ? "" : this.source.value,
      translationLanguageCodes: Array.from(checked, (box) => box.value),
    };
  }

  /** Calls `listener` with the new choice whenever the user changes it. */
  onChange(listener: (languages: Languages) => void): void {
    const notify = () => listener(this.read());
    this.source.addEventListener("change", notify);
    this.targets.addEventListener("change", notify);
  }
}
