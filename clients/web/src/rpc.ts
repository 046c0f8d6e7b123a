/**
 * The gRPC-Web client of SpeechService. Envoy serves gRPC-Web at the page's
 * own origin (its grpc_web filter translates to gRPC for the gateway).
 */
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { SpeechService } from "../gen/dragoman/speech/v1/speech_pb";
import { newTrace } from "./tracing";

export type SpeechClient = Client<typeof SpeechService>;

/** Starts a trace for every call (see tracing.ts). */
const traced: Interceptor = (next) => (request) => {
  request.header.set("traceparent", newTrace().traceparent);
  return next(request);
};

/** Sends the bearer token (see credentials.ts). */
function authorized(token: string): Interceptor {
  return (next) => (request) => {
    request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
}

export function createSpeechClient(origin: string, token: string): SpeechClient {
  const interceptors = token ? [traced, authorized(token)] : [traced];
  return createClient(SpeechService, createGrpcWebTransport({ baseUrl: origin, interceptors }));
}
