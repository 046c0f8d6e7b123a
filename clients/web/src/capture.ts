/**
 * Microphone capture: getUserMedia -> AudioContext -> the capture worklet,
 * which hands back 16 kHz mono LINEAR16 chunks of about 40 ms.
 */
import {
  CAPTURE_PROCESSOR,
  CHUNK_SAMPLES,
  TARGET_RATE,
  type CaptureOptions,
  type WorkletReply,
} from "./capture-protocol";

/** A running capture. */
export interface Capture {
  /** The rate the device (and the AudioContext) runs at. */
  readonly deviceRate: number;
  /**
   * Delivers the last partial chunk, then releases the microphone and the
   * audio context. Safe to call more than once.
   */
  stop(): Promise<void>;
}

/** How long `stop` waits for the worklet's last chunk. */
const FLUSH_TIMEOUT_MS = 500;

/**
 * Opens the microphone and starts delivering LINEAR16 chunks to `onChunk`.
 * `workletUrl` is the URL of dist/capture-worklet.js.
 */
export async function startCapture(
  workletUrl: URL,
  onChunk: (pcm: ArrayBuffer) => void,
): Promise<Capture> {
  // Created before the first await, while the click's user activation still
  // holds, so that autoplay policies let it run. At the device's default
  // rate: asking for 16 kHz would make the browser resample with a filter of
  // its choosing (or fail, on some browsers).
  const context = new AudioContext();
  let stream: MediaStream | null = null;
  try {
    // Raw audio: browser voice processing is tuned for calls, and it hurts
    // recognition (gain pumping, suppressed soft onsets).
    stream = await navigator.mediaDevices.getUserMedia({
      audio: {
        channelCount: 1,
        echoCancellation: false,
        noiseSuppression: false,
        autoGainControl: false,
      },
    });
    await context.audioWorklet.addModule(workletUrl);
    const source = context.createMediaStreamSource(stream);
    const processorOptions: CaptureOptions = {
      targetRate: TARGET_RATE,
      chunkSamples: CHUNK_SAMPLES,
    };
    const node = new AudioWorkletNode(context, CAPTURE_PROCESSOR, {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      // Let the audio graph downmix whatever the device gives to mono.
      channelCount: 1,
      channelCountMode: "explicit",
      channelInterpretation: "speakers",
      processorOptions,
    });

    let flushed: (() => void) | null = null;
    node.port.onmessage = (event: MessageEvent<ArrayBuffer | WorkletReply>) => {
      if (event.data instanceof ArrayBuffer) onChunk(event.data);
      else if (event.data.type === "flushed") flushed?.();
    };

    source.connect(node);
    // The processor writes nothing, so this plays silence; being connected to
    // the destination keeps the node pulled by the graph in every browser.
    node.connect(context.destination);
    // Not awaited: where autoplay policy keeps the context suspended, resume
    // never settles, and the page should not hang on it.
    if (context.state === "suspended") void context.resume();

    const microphone = stream;
    let stopping: Promise<void> | null = null;
    const stop = async (): Promise<void> => {
      if (context.state !== "closed") {
        await new Promise<void>((resolve) => {
          flushed = resolve;
          node.port.postMessage({ type: "flush" });
          setTimeout(resolve, FLUSH_TIMEOUT_MS);
        });
      }
      node.port.onmessage = null;
      source.disconnect();
      node.disconnect();
      release(microphone, context);
    };
    return {
      deviceRate: context.sampleRate,
      stop: () => (stopping ??= stop()),
    };
  } catch (err) {
    release(stream, context);
    throw err;
  }
}

function release(stream: MediaStream | null, context: AudioContext): void {
  for (const track of stream?.getTracks() ?? []) track.stop();
  if (context.state !== "closed") void context.close();
}
