// The event rule of wakebuilder.events (EventCounter) and wakebuilder.streaming (MovingAverage, windows) in JS.
// An event fires at a rising edge (a frame at or above the threshold after one below it); a rising
// edge less than refractoryS after the last firing belongs to that event. An event reports the time
// and score of its highest frame and the time it fired; it is final once the score is below the
// threshold and no later rising edge can merge into it.

export class EventCounter {
  constructor(threshold, { frameS, refractoryS = 1.0, offsetS = 0.0 }) {
    Object.assign(this, { threshold, frameS, refractoryS, offsetS });
    this.prevAbove = false;
    this.open = null; // {fired, peak, score}
  }

  merges(frame) {
    return this.open !== null && (frame - this.open.fired) * this.frameS < this.refractoryS - 1e-9;
  }

  emit() {
    const { fired, peak, score } = this.open;
    this.open = null;
    return { timeS: this.offsetS + peak * this.frameS, score, onsetS: this.offsetS + fired * this.frameS };
  }

  // Feed the score of frame `frame` (frames must increase); returns {fired, final} where fired is the
  // event that has just begun (or null) and final lists events that became final.
  update(frame, value) {
    // NaN is below every threshold: counted, it would read as no detection (events.py refuses it too)
    if (Number.isNaN(value)) {
      const timeS = (this.offsetS + frame * this.frameS).toFixed(2);
      throw new Error(`the model scored the window at ${timeS} s NaN, not a probability; check or re-export the model`);
    }
    const final = [];
    let fired = null;
    const above = value >= this.threshold;
    if (above && !this.prevAbove && !this.merges(frame)) {
      if (this.open !== null) final.push(this.emit());
      this.open = { fired: frame, peak: frame, score: value };
      fired = { onsetS: this.offsetS + frame * this.frameS, score: value };
    } else if (above && this.open !== null && value > this.open.score) {
      this.open = { fired: this.open.fired, peak: frame, score: value };
    } else if (!above && this.open !== null && !this.merges(frame + 1)) {
      final.push(this.emit());
    }
    this.prevAbove = above;
    return { fired, final };
  }

  flush() {
    return this.open !== null ? [this.emit()] : [];
  }
}

// Causal moving average over the last k scores (fewer at the start), like smooth_scores.
export class MovingAverage {
  constructor(k) {
    this.k = Math.max(1, k);
    this.history = [];
  }

  update(value) {
    this.history.push(value);
    if (this.history.length > this.k) this.history.shift();
    return this.history.reduce((a, b) => a + b, 0) / this.history.length;
  }
}

// Start of the one window of a recording shorter than it, as wakebuilder.streaming._short_start: the
// recording centred in it as training centres its clips, floor((window - n) / 2) zeros before it.
function shortStart(nSamples, windowSamples) {
  return nSamples < windowSamples ? -Math.floor((windowSamples - nSamples) / 2) : 0;
}

// Start sample of every window of an n-sample recording, as wakebuilder.streaming.frame_starts (a recording
// shorter than the window: one window, starting before it).
export function frameStarts(nSamples, windowSamples, hop) {
  if (nSamples <= windowSamples) return [shortStart(nSamples, windowSamples)];
  const starts = [];
  for (let s = 0; s + windowSamples <= nSamples; s += hop) starts.push(s);
  return starts;
}

// The one window of a recording shorter than it (`samples`), the recording centred in zeros, as
// wakebuilder.streaming.frame_windows cuts it.
export function centredWindow(samples, windowSamples) {
  const window = new Float32Array(windowSamples);
  window.set(samples, -shortStart(samples.length, windowSamples));
  return window;
}

// Time of frame 0, its window's centre, in a recording of n samples (Infinity: the microphone), as
// wakebuilder.streaming.first_frame_s: half a window in, or the centre of a recording shorter than the window.
export function firstFrameS(nSamples, windowSamples, sampleRate) {
  return (shortStart(nSamples, windowSamples) + windowSamples / 2) / sampleRate;
}

// The 14 bytes after the format code in the sub-format GUID of every standard WAVE_FORMAT_EXTENSIBLE format
const STANDARD_GUID_TAIL = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];

// The fmt chunk of `size` bytes at `body`: {format, channels, rate, bits}. A WAVE_FORMAT_EXTENSIBLE one (0xFFFE)
// gives its sub-format's code (1: PCM, 3: float); one with a GUID outside the standard family keeps 0xFFFE.
function readFmt(view, body, size) {
  const extensible = size >= 2 && body + 2 <= view.byteLength && view.getUint16(body, true) === 0xfffe;
  if (size < (extensible ? 40 : 16) || body + (extensible ? 40 : 16) > view.byteLength) {
    throw new Error("WAV fmt chunk cut off or too short: not a whole WAV file; record or copy it again");
  }
  const fmt = { format: view.getUint16(body, true), channels: view.getUint16(body + 2, true),
                rate: view.getUint32(body + 4, true), bits: view.getUint16(body + 14, true) };
  if (fmt.channels === 0) throw new Error("WAV fmt chunk gives 0 channels");
  if (extensible && STANDARD_GUID_TAIL.every((byte, i) => view.getUint8(body + 26 + i) === byte)) {
    fmt.format = view.getUint16(body + 24, true);
  }
  return fmt;
}

// Mono float samples of a PCM16 or float32 WAV file (channels averaged; WAVE_FORMAT_EXTENSIBLE too), and its
// sample rate. A file cut off before the end its data chunk's size gives yields the whole frames it holds.
export function decodeWav(buffer) {
  const view = new DataView(buffer);
  const tag = (at) => String.fromCharCode(...new Uint8Array(buffer, at, 4));
  if (buffer.byteLength < 12 || tag(0) !== "RIFF" || tag(8) !== "WAVE") throw new Error("not a WAV file");
  let fmt = null;
  for (let at = 12; at + 8 <= buffer.byteLength; ) {
    const id = tag(at), size = view.getUint32(at + 4, true), body = at + 8;
    if (id === "fmt ") {
      fmt = readFmt(view, body, size);
    } else if (id === "data" && fmt !== null) {
      if (!(fmt.bits === 16 && fmt.format === 1) && !(fmt.bits === 32 && fmt.format === 3)) {
        throw new Error(`WAV format ${fmt.format}/${fmt.bits} bits: use 16-bit PCM or 32-bit float`);
      }
      const bytes = fmt.bits / 8, held = Math.min(size, buffer.byteLength - body);
      const frames = Math.floor(held / (bytes * fmt.channels));
      if (frames === 0) throw new Error("WAV file with no samples");
      const out = new Float32Array(frames);
      for (let i = 0; i < frames; i++) {
        let sum = 0;
        for (let c = 0; c < fmt.channels; c++) {
          const pos = body + (i * fmt.channels + c) * bytes;
          sum += fmt.bits === 16 ? view.getInt16(pos, true) / 32768 : view.getFloat32(pos, true);
        }
        out[i] = sum / fmt.channels;
      }
      return { samples: out, rate: fmt.rate };
    }
    at = body + size + (size % 2);
  }
  throw new Error("WAV file without fmt/data chunks");
}
