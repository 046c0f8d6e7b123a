// Checks the capture resampler: flat passband, no aliasing above 8 kHz, the
// same output whatever the chunking, exact timing. Run with `npm test`.
import assert from "node:assert/strict";
import { test } from "node:test";
import { StreamingResampler } from "../src/resampler";

const OUT = 16000;

/** Resamples `seconds` of a sine at `freq` Hz, fed in `chunk`-frame pieces. */
function resampleSine(rate: number, freq: number, chunk: number, seconds = 1): Float32Array {
  const resampler = new StreamingResampler(rate, OUT);
  const input = new Float32Array(rate * seconds);
  for (let i = 0; i < input.length; i++) input[i] = Math.sin((2 * Math.PI * freq * i) / rate);
  const output: number[] = [];
  for (let i = 0; i < input.length; i += chunk) {
    const part = input.subarray(i, i + chunk);
    const out = new Float32Array(resampler.maxOutput(part.length));
    const count = resampler.process(part, out);
    for (let j = 0; j < count; j++) output.push(out[j]);
  }
  return Float32Array.from(output);
}

/** Level in dB relative to a full-scale sine, away from the edges. */
function levelDb(signal: Float32Array): number {
  const from = 2000;
  const to = signal.length - 2000;
  let sum = 0;
  for (let i = from; i < to; i++) sum += signal[i] * signal[i];
  return 20 * Math.log10(Math.sqrt(sum / (to - from)) / Math.SQRT1_2 + 1e-12);
}

for (const rate of [44100, 48000, 96000]) {
  test(`${rate} Hz: passband is flat`, () => {
    for (const freq of [100, 1000, 3000, 6000]) {
      const db = levelDb(resampleSine(rate, freq, 128));
      assert.ok(Math.abs(db) < 0.3, `${freq} Hz at ${db.toFixed(2)} dB`);
    }
  });

  test(`${rate} Hz: nothing above 8 kHz aliases`, () => {
    for (const freq of [8100, 9000, 12000, 15000, 20000]) {
      const db = levelDb(resampleSine(rate, freq, 128));
      assert.ok(db < -70, `${freq} Hz leaks at ${db.toFixed(1)} dB`);
    }
  });

  test(`${rate} Hz: output does not depend on the chunking`, () => {
    const whole = resampleSine(rate, 1234, rate);
    for (const chunk of [1, 7, 128, 1000]) {
      assert.deepEqual(resampleSine(rate, 1234, chunk), whole, `chunks of ${chunk}`);
    }
  });

  test(`${rate} Hz: output sample n is the input at time n / 16 kHz`, () => {
    const output = resampleSine(rate, 1000, 128);
    for (let n = 1000; n < 15000; n++) {
      const expected = Math.sin((2 * Math.PI * 1000 * n) / OUT);
      assert.ok(Math.abs(output[n] - expected) < 1e-4, `sample ${n}: ${output[n]} vs ${expected}`);
    }
  });
}

test("a long stream at 44.1 kHz yields exactly its length at 16 kHz (no drift)", () => {
  // A short filter keeps this fast; the position arithmetic is the same.
  const resampler = new StreamingResampler(44100, OUT, { zeroCrossings: 2 });
  const seconds = 20 * 60;
  const quantum = new Float32Array(128);
  const out = new Float32Array(resampler.maxOutput(128));
  let fed = 0;
  let produced = 0;
  while (fed < 44100 * seconds) {
    const part = quantum.subarray(0, Math.min(128, 44100 * seconds - fed));
    produced += resampler.process(part, out);
    fed += part.length;
  }
  produced += resampler.flush(new Float32Array(resampler.maxOutput(resampler.flushLength)));
  assert.ok(Math.abs(produced - OUT * seconds) <= 1, `${produced} samples`);
});
