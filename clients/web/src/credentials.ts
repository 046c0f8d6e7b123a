/**
 * The bearer token, for a deployment that asks for one. It comes from the page's
 * fragment (`/#token=...`), which browsers never send to a server, so it stays
 * out of access logs. gRPC-Web carries it in the `authorization` header; a
 * browser WebSocket cannot set headers, so the bridge gets it as a subprotocol
 * offered beside the encoding one.
 */

export const BEARER_SUBPROTOCOL_PREFIX = "dragoman.bearer.";

export function pageToken(location: Location): string {
  return new URLSearchParams(location.hash.slice(1)).get("token") ?? "";
}
