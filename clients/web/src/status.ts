/**
 * Status lines: the text says what is happening, `data-state` says it to
 * scripts and CSS, and class `error` marks a failure.
 */
export function setStatus<State extends string>(element: HTMLElement, state: State, text: string): void {
  element.dataset.state = state;
  element.classList.toggle("error", state === "error");
  element.textContent = text;
}
