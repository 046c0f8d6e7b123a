/** gRPC status names, for errors from both the bridge and gRPC-Web. */
import { ConnectError } from "@connectrpc/connect";

/** Canonical gRPC status names, indexed by code. */
const STATUS_NAMES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
] as const;

/** "INVALID_ARGUMENT" for 3; "CODE_42" for codes gRPC does not define. */
export function statusName(code: number): string {
  return STATUS_NAMES[code] ?? `CODE_${code}`;
}

/**
 * "INVALID_ARGUMENT: message" for a gRPC error (Connect's own `message`
 * prefixes the code in lowercase; `rawMessage` is the server's text), and
 * "NotAllowedError: message" for a browser error such as a refused microphone.
 */
export function describeError(err: unknown): string {
  if (err instanceof ConnectError) return `${statusName(err.code)}: ${err.rawMessage}`;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
