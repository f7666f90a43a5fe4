// AudioWorklet: resample the microphone to 16 kHz and keep the last (longest) window of audio.
// Each model's frame i covers 16 kHz samples [i * its hop, i * its hop + its window), as wb detect cuts
// a recording for that model; whenever one of them ends (`end` samples seen) it posts {end, window} to
// the page, where window holds the last longest-window samples (zeros before the stream's start).

// Streaming windowed-sinc resampler (Blackman window, 16 zero crossings, cut-off 0.45 x the lower
// rate); the kernel is tabulated at 512 points per input sample and read with linear interpolation.
class Resampler {
  constructor(inRate, outRate, zeros = 16, resolution = 512) {
    this.step = inRate / outRate; // input samples per output sample
    this.cutoff = 0.45 * Math.min(1, outRate / inRate); // cycles per input sample
    this.half = Math.ceil(zeros / (2 * this.cutoff)); // kernel half-width in input samples
    this.resolution = resolution;
    const n = this.half * resolution + 2;
    this.table = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const x = i / resolution;
      const arg = 2 * this.cutoff * x;
      const sinc = x === 0 ? 1 : Math.sin(Math.PI * arg) / (Math.PI * arg);
      const w = x >= this.half ? 0 : 0.42 + 0.5 * Math.cos(Math.PI * x / this.half) + 0.08 * Math.cos(2 * Math.PI * x / this.half);
      this.table[i] = 2 * this.cutoff * sinc * w;
    }
    this.buffer = new Float32Array(1 << 15);
    this.length = 0; // samples held
    this.first = 0; // absolute index of buffer[0]
    this.next = 0; // absolute input position of the next output sample
  }

  kernel(distance) {
    const pos = Math.abs(distance) * this.resolution;
    const i = Math.floor(pos);
    if (i >= this.table.length - 1) return 0;
    return this.table[i] + (pos - i) * (this.table[i + 1] - this.table[i]);
  }

  // Append input samples; return the output samples now computable.
  push(input) {
    if (this.length + input.length > this.buffer.length) {
      const keep = Math.max(0, Math.floor(this.next) - this.half - this.first);
      this.buffer.copyWithin(0, keep, this.length);
      this.first += keep;
      this.length -= keep;
    }
    this.buffer.set(input, this.length);
    this.length += input.length;
    const out = [];
    while (Math.floor(this.next) + this.half < this.first + this.length) {
      const centre = Math.floor(this.next);
      let sum = 0;
      for (let k = centre - this.half + 1; k <= centre + this.half; k++) {
        if (k >= this.first) sum += this.buffer[k - this.first] * this.kernel(this.next - k);
      }
      out.push(sum);
      this.next += this.step;
    }
    return out;
  }
}

class WindowProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { targetRate, frames } = options.processorOptions; // [{window, hop}] of each model
    this.resampler = new Resampler(sampleRate, targetRate);
    this.frames = frames;
    this.windowSamples = Math.max(...frames.map((f) => f.window));
    this.ring = new Float32Array(this.windowSamples);
    this.written = 0; // 16 kHz samples seen
    this.running = true;
    this.port.onmessage = (event) => { if (event.data === "stop") this.running = false; };
  }

  process(inputs) {
    const channels = inputs[0];
    if (channels && channels.length > 0) {
      const mono = new Float32Array(channels[0].length);
      for (const channel of channels) for (let i = 0; i < mono.length; i++) mono[i] += channel[i] / channels.length;
      for (const sample of this.resampler.push(mono)) this.add(sample);
    }
    return this.running;
  }

  add(sample) {
    this.ring[this.written % this.windowSamples] = sample;
    this.written += 1;
    const end = this.written;
    if (!this.frames.some((f) => end >= f.window && (end - f.window) % f.hop === 0)) return;
    const window = new Float32Array(this.windowSamples);
    const split = this.written % this.windowSamples; // oldest sample's slot
    window.set(this.ring.subarray(split), 0);
    window.set(this.ring.subarray(0, split), this.windowSamples - split);
    this.port.postMessage({ end, window }, [window.buffer]);
  }
}

registerProcessor("wb-window", WindowProcessor);
