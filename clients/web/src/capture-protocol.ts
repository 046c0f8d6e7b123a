/**
 * What the page and the capture worklet agree on. Kept free of DOM and
 * worklet globals so both bundles can import it.
 */

/** The name the worklet registers its processor under. */
export const CAPTURE_PROCESSOR = "dragoman-capture";

/** The bridge takes LINEAR16 at this rate (Whisper's own rate). */
export const TARGET_RATE = 16000;

/** Samples per chunk sent to the server: 40 ms at 16 kHz. */
export const CHUNK_SAMPLES = 640;

/** `processorOptions` of the capture AudioWorkletNode. */
export interface CaptureOptions {
  targetRate: number;
  chunkSamples: number;
}

/**
 * Non-audio messages from the worklet. Audio arrives as bare ArrayBuffers of
 * Int16 little-endian samples.
 */
export type WorkletReply = { type: "flushed" };
