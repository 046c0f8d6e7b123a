/**
 * A streaming band-limited resampler for mono Float32 audio.
 *
 * Each output sample is the input convolved with a Kaiser-windowed sinc
 * low-pass evaluated at the output instant, so anti-aliasing and fractional
 * interpolation are one step. The cutoff sits below the lower of the two
 * Nyquist frequencies (by default 87.5 % of it: 7 kHz for 16 kHz output), and
 * the window is long enough that the stopband (about 80 dB down) begins before
 * that Nyquist frequency, so nothing above 8 kHz folds back into speech.
 *
 * The state (recent input history and the exact position of the next output
 * sample) carries over between calls, so feeding the input in 128-frame render
 * quanta gives exactly the same output as feeding it at once. Positions are
 * tracked as a reduced fraction of the two rates, so there is no drift over
 * long streams (44.1 kHz -> 16 kHz steps by exactly 441/160 input samples).
 *
 * It is written for an AudioWorklet: no allocation per call once the history
 * buffer has grown to the render quantum size.
 */

/** Tuning of the low-pass filter. The defaults suit speech to 16 kHz. */
export interface ResamplerOptions {
  /** Zero crossings of the sinc kept on each side; more is sharper. */
  zeroCrossings?: number;
  /** Cutoff as a fraction of the lower Nyquist frequency. */
  rolloff?: number;
  /** Kaiser window shape; 8 gives about 80 dB of stopband attenuation. */
  kaiserBeta?: number;
  /** Kernel table entries per input sample (linearly interpolated). */
  tableResolution?: number;
}

export class StreamingResampler {
  readonly inputRate: number;
  readonly outputRate: number;
  /** Input samples per output sample, as the exact fraction step/den. */
  private readonly step: number;
  private readonly den: number;
  /** Taps on each side of the output instant. */
  private readonly half: number;
  /** The kernel h(|t|) sampled every 1/res input samples, zero-padded. */
  private readonly table: Float32Array;
  private readonly res: number;
  /** Input history; `len` samples are valid. */
  private buf: Float32Array;
  private len: number;
  /** The next output instant is buf index `idx` plus `frac / den`. */
  private idx: number;
  private frac = 0;

  constructor(inputRate: number, outputRate: number, options: ResamplerOptions = {}) {
    const zeroCrossings = options.zeroCrossings ?? 24;
    const rolloff = options.rolloff ?? 0.875;
    const beta = options.kaiserBeta ?? 8;
    this.res = options.tableResolution ?? 256;

    this.inputRate = Math.round(inputRate);
    this.outputRate = Math.round(outputRate);
    if (!(this.inputRate > 0 && this.outputRate > 0)) {
      throw new RangeError(`invalid sample rates ${inputRate} -> ${outputRate}`);
    }
    const g = gcd(this.inputRate, this.outputRate);
    this.step = this.inputRate / g;
    this.den = this.outputRate / g;

    // Cutoff in cycles per input sample.
    const cutoff = 0.5 * Math.min(1, this.outputRate / this.inputRate) * rolloff;
    const width = zeroCrossings / (2 * cutoff); // kernel half-width, input samples
    this.half = Math.ceil(width);

    const n = this.half * this.res;
    this.table = new Float32Array(n + 2); // two zeros of padding for interpolation
    const i0Beta = besselI0(beta);
    for (let i = 0; i <= n; i++) {
      const t = i / this.res;
      if (t >= width) break;
      const r = t / width;
      const window = besselI0(beta * Math.sqrt(1 - r * r)) / i0Beta;
      this.table[i] = 2 * cutoff * sinc(2 * cutoff * t) * window;
    }

    // Start with `half` samples of silence before the first input sample, so
    // that the first output lands on input sample 0 with full history.
    this.buf = new Float32Array(2 * this.half + 256);
    this.len = this.half;
    this.idx = this.half;
  }

  /** The most output samples `inputLength` more input samples can yield. */
  maxOutput(inputLength: number): number {
    return Math.ceil(((this.len - this.idx + inputLength) * this.den) / this.step) + 1;
  }

  /**
   * Consumes `input` and writes the output samples it completes into `out`
   * (which must hold `maxOutput(input.length)`); returns how many it wrote.
   * Output lags input by the filter's half-width (about 1.7 ms).
   */
  process(input: Float32Array, out: Float32Array): number {
    this.append(input);
    const { buf, table, res, half, step, den } = this;
    const taps = 2 * half;
    let written = 0;
    // The output at idx + f needs input up to index idx + half.
    while (this.idx + half < this.len) {
      const f = this.frac / den;
      const base = this.idx - half + 1;
      let acc = 0;
      for (let j = 0; j < taps; j++) {
        // Distance from the output instant to input sample base + j.
        let t = half - 1 - j + f;
        if (t < 0) t = -t;
        const u = t * res;
        const i = u | 0;
        const h = table[i] + (u - i) * (table[i + 1] - table[i]);
        acc += buf[base + j] * h;
      }
      out[written++] = acc;
      this.frac += step;
      const whole = Math.floor(this.frac / den);
      this.idx += whole;
      this.frac -= whole * den;
    }
    this.discardHistory();
    return written;
  }

  /** How much silence `flush` feeds in (for sizing its `out`). */
  get flushLength(): number {
    return this.half + 1;
  }

  /** Feeds silence to push out the samples still held back by the filter. */
  flush(out: Float32Array): number {
    return this.process(new Float32Array(this.flushLength), out);
  }

  private append(input: Float32Array): void {
    const needed = this.len + input.length;
    if (needed > this.buf.length) {
      const grown = new Float32Array(Math.max(needed, 2 * this.buf.length));
      grown.set(this.buf.subarray(0, this.len));
      this.buf = grown;
    }
    this.buf.set(input, this.len);
    this.len = needed;
  }

  /** Drops input that no future output can reach. */
  private discardHistory(): void {
    const drop = this.idx - this.half + 1;
    if (drop <= 0) return;
    this.buf.copyWithin(0, drop, this.len);
    this.len -= drop;
    this.idx -= drop;
  }
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = Math.PI * x;
  return Math.sin(px) / px;
}

/** The zeroth-order modified Bessel function of the first kind (series). */
function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 64; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-12) break;
  }
  return sum;
}
