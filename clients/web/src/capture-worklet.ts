/**
 * The AudioWorklet processor "dragoman-capture": turns the microphone's
 * Float32 render quanta (128 frames at the context's rate) into 16 kHz mono
 * LINEAR16 chunks and posts each chunk's ArrayBuffer (transferred, not copied)
 * to the main thread.
 *
 * Messages from the main thread: `{type: "flush"}` posts the partial last
 * chunk, then `{type: "flushed"}`, and ends processing.
 *
 * Bundled on its own into dist/capture-worklet.js: worklets run in their own
 * global scope and load by URL (AudioWorklet.addModule).
 */
import { StreamingResampler } from "./resampler";
import { CAPTURE_PROCESSOR, type CaptureOptions, type WorkletReply } from "./capture-protocol";

// The AudioWorkletGlobalScope, which TypeScript's DOM library does not
// describe. Declared in this module only, so the page's code cannot use them.
declare const sampleRate: number;
declare abstract class AudioWorkletProcessor {
  readonly port: MessagePort;
  constructor(options?: AudioWorkletNodeOptions);
}
declare function registerProcessor(
  name: string,
  processor: new (options: AudioWorkletNodeOptions) => AudioWorkletProcessor,
): void;

class CaptureProcessor extends AudioWorkletProcessor {
  private readonly resampler: StreamingResampler | null;
  private readonly chunkSamples: number;
  private mono = new Float32Array(128);
  private resampled = new Float32Array(64);
  private chunk: DataView;
  private filled = 0;
  private done = false;

  constructor(options: AudioWorkletNodeOptions) {
    super(options);
    const { targetRate, chunkSamples } = options.processorOptions as CaptureOptions;
    this.chunkSamples = chunkSamples;
    this.chunk = new DataView(new ArrayBuffer(chunkSamples * 2));
    // A context already at the target rate needs no filtering.
    this.resampler =
      Math.round(sampleRate) === targetRate ? null : new StreamingResampler(sampleRate, targetRate);
    this.port.onmessage = (event: MessageEvent<{ type: string }>) => {
      if (event.data.type === "flush") this.flush();
    };
  }

  process(inputs: Float32Array[][]): boolean {
    if (this.done) return false;
    const channels = inputs[0];
    // No input connected (yet, or any more): keep the node alive.
    if (!channels || channels.length === 0) return true;
    this.push(this.resample(this.downmix(channels)));
    return true;
  }

  /** The node is created with channelCount 1, so this averages only if a browser ignores that. */
  private downmix(channels: Float32Array[]): Float32Array {
    if (channels.length === 1) return channels[0];
    const frames = channels[0].length;
    if (this.mono.length < frames) this.mono = new Float32Array(frames);
    const mono = this.mono.subarray(0, frames);
    mono.fill(0);
    for (const channel of channels) {
      for (let i = 0; i < frames; i++) mono[i] += channel[i] / channels.length;
    }
    return mono;
  }

  private resample(input: Float32Array): Float32Array {
    if (!this.resampler) return input;
    const needed = this.resampler.maxOutput(input.length);
    if (this.resampled.length < needed) this.resampled = new Float32Array(needed);
    const count = this.resampler.process(input, this.resampled);
    return this.resampled.subarray(0, count);
  }

  /** Appends samples as Int16 little-endian, posting each full chunk. */
  private push(samples: Float32Array): void {
    for (let i = 0; i < samples.length; i++) {
      const s = Math.max(-1, Math.min(1, samples[i]));
      this.chunk.setInt16(2 * this.filled, Math.round(s < 0 ? s * 0x8000 : s * 0x7fff), true);
      if (++this.filled === this.chunkSamples) this.post(this.chunkSamples);
    }
  }

  private post(samples: number): void {
    const buffer = this.chunk.buffer.slice(0, samples * 2);
    this.port.postMessage(buffer, [buffer]);
    this.filled = 0;
  }

  private flush(): void {
    if (!this.done && this.resampler) {
      const tail = new Float32Array(this.resampler.maxOutput(this.resampler.flushLength));
      this.push(tail.subarray(0, this.resampler.flush(tail)));
    }
    if (this.filled > 0) this.post(this.filled);
    this.done = true;
    this.port.postMessage({ type: "flushed" } satisfies WorkletReply);
  }
}

registerProcessor(CAPTURE_PROCESSOR, CaptureProcessor);
