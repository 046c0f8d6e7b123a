/** Looks up a required element of the page, checking its type. */
export function byId<T extends HTMLElement>(id: string, type: new () => T): T {
  const element = document.getElementById(id);
  if (!(element instanceof type)) {
    throw new Error(`index.html lacks a <${type.name}> with id "${id}"`);
  }
  return element;
}

/** Seconds of a google.protobuf.Duration (int64 seconds as a bigint). */
export function durationSeconds(duration: { seconds: bigint; nanos: number } | undefined): number {
  return duration ? Number(duration.seconds) + duration.nanos / 1e9 : 0;
}
