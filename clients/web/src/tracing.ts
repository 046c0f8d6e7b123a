/**
 * W3C trace context started by the page. Every stream and call carries a fresh
 * `traceparent`, which Envoy passes through to the gateway, so the services'
 * spans of that action join one trace that begins here; the session line
 * shows the trace id for looking it up.
 */

/** A new trace: its id, and the `traceparent` value naming this page as parent. */
export interface TraceContext {
  traceId: string;
  traceparent: string;
}

function randomHex(bytes: number): string {
  const values = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(values, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function newTrace(): TraceContext {
  const traceId = randomHex(16);
  return { traceId, traceparent: `00-${traceId}-${randomHex(8)}-01` };
}

/** `url` with the trace context in its query: a browser WebSocket cannot set headers. */
export function withTraceparent(url: string, trace: TraceContext): string {
  const separator = url.includes("?") ? "&" : "?";
  return `${url}${separator}traceparent=${encodeURIComponent(trace.traceparent)}`;
}
