// Streaming scorer for speech-embedding models: keeps the mel frames and CNN rows that consecutive
// windows share and computes only the new ones; exact under each window's dB floor. This mirrors
// wakebuilder/web/stream.py (the Python reference the tests hold it to) step for step; read that
// module's docstring for why it is exact.

function valid(entry, floor) {
  return entry.floor === floor || entry.min >= Math.max(entry.floor, floor);
}

function firstInvalid(cache, starts, floor) {
  const i = starts.findIndex((s) => !cache.has(s) || !valid(cache.get(s), floor));
  return i < 0 ? null : i;
}

export class StreamingScorer {
  // sessions: {front, stage1, stage2, tail} ONNX Runtime Web sessions; geometry: page.json's "stream"
  constructor(ort, sessions, geometry, windowSamples, hopSamples) {
    this.ort = ort;
    this.sessions = sessions;
    this.frameLen = geometry.receptive.front;
    this.frameHop = geometry.stride.front;
    if (hopSamples % this.frameHop) throw new Error(`hop ${hopSamples}: not a multiple of ${this.frameHop}`);
    this.hopFrames = hopSamples / this.frameHop;
    this.dbRange = geometry.db_range;
    [this.r1, this.s1, this.r2, this.s2] = [geometry.receptive.stage1, geometry.stride.stage1,
                                            geometry.receptive.stage2, geometry.stride.stage2];
    this.windowSamples = windowSamples;
    this.frames = Math.floor((windowSamples - this.frameLen) / this.frameHop) + 1;
    this.n1 = Math.floor((this.frames - this.r1) / this.s1) + 1;
    this.n2 = Math.floor((this.n1 - this.r2) / this.s2) + 1;
    this.reset();
  }

  // Forget every kept row (a new audio stream numbers its hops from 0 again).
  reset() {
    this.mel = new Map(); // frame -> {row, min, max}
    this.rows1 = new Map(); // start frame -> {row, floor, min}
    this.rows2 = new Map();
    this.work = { frames: 0, rows1: 0, rows2: 0 }; // computed so far, to show the reuse
    this.ms = { front: 0, stage1: 0, stage2: 0, tail: 0 }; // time in each piece's session.run
  }

  static async create(ort, urls, geometry, windowSamples, hopSamples) {
    const sessions = {};
    for (const stage of ["front", "stage1", "stage2", "tail"]) {
      sessions[stage] = await ort.InferenceSession.create(urls[stage], { executionProviders: ["wasm"] });
    }
    return new StreamingScorer(ort, sessions, geometry, windowSamples, hopSamples);
  }

  async run(stage, data, dims) {
    const session = this.sessions[stage];
    const start = performance.now();
    const out = await session.run({ [session.inputNames[0]]: new this.ort.Tensor("float32", data, dims) });
    this.ms[stage] += performance.now() - start;
    return out[session.outputNames[0]];
  }

  async front(f, window) {
    let first = null;
    for (let t = f; t < f + this.frames; t++) if (!this.mel.has(t)) { first = t; break; }
    if (first === null) return;
    const begin = (first - f) * this.frameHop;
    const end = (this.frames - 1) * this.frameHop + this.frameLen;
    const db = await this.run("front", window.slice(begin, end), [1, end - begin]);
    const bins = db.dims[3];
    for (let i = 0; i < db.dims[2]; i++) {
      const row = db.data.subarray(i * bins, (i + 1) * bins);
      let min = Infinity, max = -Infinity;
      for (const v of row) { if (v < min) min = v; if (v > max) max = v; }
      this.mel.set(first + i, { row, min, max });
    }
    this.bins = bins;
    this.work.frames += db.dims[2];
  }

  smallest(start, span) {
    let min = Infinity;
    for (let t = start; t < start + span; t++) min = Math.min(min, this.mel.get(t).min);
    return min;
  }

  // rows of a time-major output (1, n, C, W) as subarrays; remembers the row shape for the next stage
  static rows(tensor) {
    const size = tensor.dims[2] * tensor.dims[3];
    return Array.from({ length: tensor.dims[1] }, (_, i) => tensor.data.subarray(i * size, (i + 1) * size));
  }

  async stage1(starts, i0, floor) {
    const first = starts[i0], count = starts.at(-1) + this.r1 - first, bins = this.bins;
    const db = new Float32Array(count * bins);
    for (let i = 0; i < count; i++) {
      const row = this.mel.get(first + i).row;
      for (let j = 0; j < bins; j++) db[i * bins + j] = Math.max(row[j], floor);
    }
    const out = await this.run("stage1", db, [1, 1, count, bins]);
    this.shape1 = [out.dims[2], out.dims[3]];
    StreamingScorer.rows(out).forEach((row, k) => {
      const a = starts[i0 + k];
      this.rows1.set(a, { row, floor, min: this.smallest(a, this.r1) });
    });
    this.work.rows1 += out.dims[1];
  }

  async stage2(starts, q0, floor) {
    const count = this.s2 * (this.n2 - 1 - q0) + this.r2;
    const size = this.shape1[0] * this.shape1[1];
    const below = new Float32Array(count * size);
    for (let i = 0; i < count; i++) below.set(this.rows1.get(starts[q0] + this.s1 * i).row, i * size);
    const out = await this.run("stage2", below, [1, count, ...this.shape1]);
    this.shape2 = [out.dims[2], out.dims[3]];
    const span = this.s1 * (this.r2 - 1) + this.r1;
    StreamingScorer.rows(out).forEach((row, k) => {
      const b = starts[q0 + k];
      this.rows2.set(b, { row, floor, min: this.smallest(b, span) });
    });
    this.work.rows2 += out.dims[1];
  }

  // Score the window of hop number `frame` (its samples `window`, a Float32Array of windowSamples).
  async score(frame, window) {
    const f = frame * this.hopFrames;
    await this.front(f, window);
    let top = -Infinity;
    for (let t = f; t < f + this.frames; t++) top = Math.max(top, this.mel.get(t).max);
    const floor = Math.fround(top - this.dbRange);
    const starts1 = Array.from({ length: this.n1 }, (_, i) => f + this.s1 * i);
    const i0 = firstInvalid(this.rows1, starts1, floor);
    if (i0 !== null) await this.stage1(starts1, i0, floor);
    const starts2 = Array.from({ length: this.n2 }, (_, q) => f + this.s1 * this.s2 * q);
    const q0 = firstInvalid(this.rows2, starts2, floor);
    if (q0 !== null) await this.stage2(starts2, q0, floor);
    for (const cache of [this.mel, this.rows1, this.rows2]) {
      for (const key of cache.keys()) if (key < f) cache.delete(key);
    }
    const size = this.shape2[0] * this.shape2[1];
    const rows = new Float32Array(this.n2 * size);
    starts2.forEach((b, q) => rows.set(this.rows2.get(b).row, q * size));
    return (await this.run("tail", rows, [1, this.n2, ...this.shape2])).data[0];
  }
}
