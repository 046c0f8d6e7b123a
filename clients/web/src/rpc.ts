/**
 * The gRPC-Web client of SpeechService. Envoy serves gRPC-Web at the page's
 * own origin (its grpc_web filter translates to gRPC for the gateway).
 */
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { SpeechService } from "../gen/dragoman/speech/v1/speech_pb";

export type SpeechClient = Client<typeof SpeechService>;

export function createSpeechClient(origin: string): SpeechClient {
  return createClient(SpeechService, createGrpcWebTransport({ baseUrl: origin }));
}
