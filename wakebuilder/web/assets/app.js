// The page: run each exported model (ONNX Runtime Web, WebAssembly) on the last window of the
// microphone every hop of its own, draw the score traces and threshold lines, list the detections.
// Each model runs as wb detect runs it alone: its frame k covers 16 kHz samples [k * its hop,
// k * its hop + its window) from the start of the stream (so a shorter model scores from its own first
// full window on), and its scores are smoothed and its events spaced at its hop, the one its threshold
// was calibrated at (page.json's hop_samples of each model).
// URL parameters: autostart=1 (start the microphone at once), threads=N (WebAssembly threads; default
// half the cores, at most 4), selftest=FILE.wav (score a 16 kHz WAV file window by window instead of
// the microphone), path=full (run the end-to-end NAME.onnx every hop instead of streaming the
// speech-embedding pieces, for comparison).
// Speech-embedding models are streamed (stream.js: only the mel frames and CNN rows new since the
// last window are computed, exactly); others (AST) run the end-to-end NAME.onnx on every window.
import * as ort from "./ort/ort.wasm.min.mjs";
import { EventCounter, MovingAverage, centredWindow, decodeWav, firstFrameS, frameStarts } from "./events.js";
import { StreamingScorer } from "./stream.js";

const params = new URLSearchParams(location.search);
const COLOURS = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2"];
const VIEW_S = 10;
const $ = (id) => document.getElementById(id);
const state = { page: null, models: [], maxWindow: 0, frames: 0, dropped: 0, inferMs: [], budgetMs: 0,
                detections: [], audio: null, scoring: null, pending: null };
window.wbState = state;
window.wbRecord = (m, frame, rawScore) => record(m, frame, rawScore); // for tests: a frame of a model, as scored

function status(text) {
  $("status").textContent = text;
}

async function loadModels() {
  state.page = await (await fetch("page.json")).json();
  // threads need cross-origin isolation (wb web serve sends the headers); ONNX Runtime Web's default
  // is half the cores, at most 4
  if (params.get("threads")) ort.env.wasm.numThreads = Number(params.get("threads"));
  if (!self.crossOriginIsolated) ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = new URL("./ort/", location.href).href;
  const sr = state.page.sample_rate;
  for (const [i, entry] of state.page.models.entries()) {
    const model = { ...entry, hopS: entry.hop_samples / sr, colour: COLOURS[i % COLOURS.length], trace: [],
                    path: "full" };
    if (entry.stream && params.get("path") !== "full") {
      model.streamer = await StreamingScorer.create(ort, entry.stream.files, entry.stream, entry.window_samples,
                                                  entry.hop_samples);
      model.path = "stream";
    } else {
      model.session = await ort.InferenceSession.create(entry.onnx, { executionProviders: ["wasm"] });
    }
    state.models.push(model);
  }
  state.maxWindow = Math.max(...state.models.map((m) => m.window_samples));
  resetCounters();
  $("models").innerHTML = state.models.map((m) =>
    `<span class="model" style="color:${m.colour}">${m.wake_word}</span> window ${(m.window_samples / sr).toFixed(2)} s,
     hop ${(m.hopS * 1000).toFixed(0)} ms, threshold ${m.threshold.toFixed(3)}, refractory ${m.refractory_s} s,
     smooth ${m.smooth},
     ${m.path === "stream" ? "streamed" : "whole window every hop"}`).join("<br>");
  status(`ready: ONNX Runtime Web ${ort.env.versions?.web ?? state.page.onnxruntime_web_version}, ` +
         `${ort.env.wasm.numThreads} thread(s)`);
}

// Before a stream of `length` samples (the microphone's has no end): frame 0 of each model is timed at its
// window's centre, which for a recording shorter than the window is the recording's centre.
function resetCounters(length = Infinity) {
  const sr = state.page.sample_rate;
  for (const m of state.models) {
    m.trace = [];
    m.streamer?.reset();
    m.smoother = new MovingAverage(m.smooth);
    m.offsetS = firstFrameS(length, m.window_samples, sr);
    m.counter = new EventCounter(m.threshold, { frameS: m.hopS, refractoryS: m.refractory_s, offsetS: m.offsetS });
  }
  state.frames = 0;
  state.dropped = 0;
  state.inferMs = [];
  state.budgetMs = 0;
  state.detections = [];
  $("detections").innerHTML = "";
}

// The frames that end at 16 kHz sample `end` of a stream of `length` samples: [{m, frame}] for each model
// whose window [end - window, end) starts a whole number of its hops after the stream's start. Past the
// end of a recording only the one window of a model longer than the recording is due (end = its window).
function framesEndingAt(end, length) {
  return state.models.filter((m) => end >= m.window_samples && (end - m.window_samples) % m.hop_samples === 0 &&
                                    end <= Math.max(length, m.window_samples))
    .map((m) => ({ m, frame: (end - m.window_samples) / m.hop_samples }));
}

// Score the frames that end at sample `end` (of `length`; the microphone's has no end): `window` holds the
// samples before `end`, at least the longest due window; each model takes its own last window.
async function scoreFrame(end, window, length = Infinity) {
  const due = framesEndingAt(end, length);
  const raw = [];
  for (const { m, frame } of due) {
    const samples = window.slice(window.length - m.window_samples); // a copy: ORT needs its own buffer
    const start = performance.now();
    if (m.streamer) {
      raw.push(await m.streamer.score(frame, samples));
    } else {
      const input = new ort.Tensor("float32", samples, [1, m.window_samples]);
      const out = await m.session.run({ [m.session.inputNames[0]]: input });
      raw.push(out[m.session.outputNames[0]].data[0]);
    }
    state.inferMs.push(performance.now() - start);
    state.budgetMs += m.hopS * 1000; // live audio allows one hop of the model per window
  }
  due.forEach(({ m, frame }, i) => record(m, frame, raw[i]));
  state.frames += 1;
}

function record(m, frame, rawScore) {
  const score = m.smoother.update(rawScore);
  const timeS = m.offsetS + frame * m.hopS;
  m.trace.push({ frame, timeS, raw: rawScore, score });
  const { fired, final } = m.counter.update(frame, score);
  // after skipped frames one update can end the open event and start the next: finish the old entry first
  for (const event of final) finishDetection(m, event);
  if (fired) addDetection(m, fired);
}

function addDetection(m, fired) {
  const item = document.createElement("li");
  item.className = "detection";
  item.dataset.model = m.name;
  item.dataset.final = "0";
  item.style.borderColor = m.colour;
  const entry = { model: m.name, item, onsetS: fired.onsetS, timeS: fired.onsetS, score: fired.score, final: false };
  m.openEntry = entry;
  state.detections.push(entry);
  describe(entry, m);
  $("detections").prepend(item);
}

function finishDetection(m, event) {
  const entry = m.openEntry;
  if (!entry) return;
  Object.assign(entry, { timeS: event.timeS, score: event.score, final: true });
  entry.item.dataset.final = "1";
  describe(entry, m);
  m.openEntry = null;
}

function describe(entry, m) {
  Object.assign(entry.item.dataset, { time: entry.timeS.toFixed(3), score: entry.score.toFixed(4) });
  entry.item.textContent = `${entry.timeS.toFixed(2)} s  ${m.wake_word}  score ${entry.score.toFixed(3)}` +
    (entry.final ? "" : " …");
}

function draw() {
  const canvas = $("trace");
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 30;
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = "#d1d5db";
  ctx.strokeRect(pad, 5, w - pad - 5, h - pad - 5);
  ctx.fillStyle = "#374151";
  ctx.font = "12px sans-serif";
  for (const v of [0, 0.5, 1]) ctx.fillText(v.toFixed(1), 4, 5 + (1 - v) * (h - pad - 5) + 4);
  const last = Math.max(VIEW_S, ...state.models.map((m) => m.trace.at(-1)?.timeS ?? 0));
  const x = (t) => pad + ((t - (last - VIEW_S)) / VIEW_S) * (w - pad - 5);
  const y = (v) => 5 + (1 - v) * (h - pad - 5);
  ctx.fillText(`${(last - VIEW_S).toFixed(1)} s`, pad, h - 8);
  ctx.fillText(`${last.toFixed(1)} s`, w - 50, h - 8);
  for (const m of state.models) {
    ctx.setLineDash([6, 4]);
    ctx.strokeStyle = m.colour;
    ctx.beginPath();
    ctx.moveTo(pad, y(m.threshold));
    ctx.lineTo(w - 5, y(m.threshold));
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.lineWidth = 2;
    ctx.beginPath();
    for (const [i, p] of m.trace.filter((p) => p.timeS >= last - VIEW_S).entries()) {
      i === 0 ? ctx.moveTo(x(p.timeS), y(p.score)) : ctx.lineTo(x(p.timeS), y(p.score));
    }
    ctx.stroke();
    ctx.lineWidth = 1;
  }
  for (const d of state.detections.filter((d) => d.timeS >= last - VIEW_S)) {
    const m = state.models.find((mm) => mm.name === d.model);
    ctx.fillStyle = m.colour;
    ctx.beginPath();
    ctx.arc(x(d.timeS), y(d.score), 5, 0, 2 * Math.PI);
    ctx.fill();
  }
  const total = state.inferMs.reduce((a, b) => a + b, 0);
  const mean = state.inferMs.length ? total / state.inferMs.length : 0;
  $("stats").textContent = `${state.frames} windows scored, ${state.dropped} skipped; inference ` +
    `${mean.toFixed(1)} ms per window per model (${total ? (state.budgetMs / total).toFixed(1) : "-"}x real time)`;
}

// A window from the microphone: scored at once, or, while one is being scored, kept as the next (replacing,
// and so skipping, one kept before it). state.scoring is the run in progress, for Stop to wait on.
async function onWindow(next) {
  if (state.scoring) {
    if (state.pending) state.dropped += 1;
    state.pending = next;
    return;
  }
  state.scoring = scoreWindows(next);
  try {
    await state.scoring;
  } finally {
    state.scoring = null;
  }
}

async function scoreWindows(first) {
  for (let next = first; next; next = state.pending) {
    state.pending = null;
    await scoreFrame(next.end, next.window);
  }
  draw();
}

// Each model's event still open is final now: no later frame can raise or merge into it.
function finishOpenEvents() {
  for (const m of state.models) for (const event of m.counter.flush()) finishDetection(m, event);
}

async function startMicrophone() {
  resetCounters();
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
  });
  const context = new AudioContext();
  await context.resume(); // started from a click, or by autoplay policy in the tests
  await context.audioWorklet.addModule("worklet.js");
  const source = context.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(context, "wb-window", {
    numberOfInputs: 1, numberOfOutputs: 0,
    processorOptions: { targetRate: state.page.sample_rate,
                        frames: state.models.map((m) => ({ window: m.window_samples, hop: m.hop_samples })) },
  });
  node.port.onmessage = (event) => onWindow(event.data).catch((err) => status(`error: ${err.message}`));
  source.connect(node);
  state.audio = { stream, context, node };
  document.body.dataset.state = "listening";
  $("start").textContent = "Stop";
  status(`listening: microphone at ${context.sampleRate} Hz resampled to ${state.page.sample_rate} Hz`);
}

async function stopMicrophone() {
  const { stream, context, node } = state.audio;
  node.port.onmessage = null; // no window after Stop is scored
  node.port.postMessage("stop");
  stream.getTracks().forEach((t) => t.stop());
  if (state.pending) state.dropped += 1; // waiting to be scored, as a window skipped
  state.pending = null;
  await context.close();
  // the window being scored when Stop was pressed still counts; its error, if any, is already on the status line
  await state.scoring?.catch(() => {});
  finishOpenEvents();
  draw();
  state.audio = null;
  document.body.dataset.state = "stopped";
  $("start").textContent = "Start microphone";
  status("stopped");
}

// Score a WAV file at 16 kHz window by window, exactly as wb detect cuts it for each model (a file
// shorter than a model's window gives it one window with the file centred in it, as training centres
// clips, timed at the file's centre); results in window.wbResult.
async function selfTest(url) {
  const { samples, rate } = decodeWav(await (await fetch(url)).arrayBuffer());
  if (rate !== state.page.sample_rate) throw new Error(`${url}: ${rate} Hz; the self-test needs ${state.page.sample_rate} Hz`);
  resetCounters(samples.length);
  const ends = new Set();
  for (const m of state.models) {
    for (const start of frameStarts(samples.length, m.window_samples, m.hop_samples)) {
      ends.add(Math.max(start, 0) + m.window_samples); // a short file's one window: frame 0, due at its window
    }
  }
  for (const end of [...ends].sort((a, b) => a - b)) {
    // past the file's end only models whose window (`end` samples) is longer than the file are due
    const window = end > samples.length ? centredWindow(samples, end)
      : samples.subarray(Math.max(0, end - state.maxWindow), end);
    await scoreFrame(end, window, samples.length);
  }
  finishOpenEvents();
  draw();
  window.wbResult = {
    inference_ms: state.inferMs, threads: ort.env.wasm.numThreads, cross_origin_isolated: self.crossOriginIsolated,
    models: state.models.map((m) => ({
      name: m.name, hop_samples: m.hop_samples, path: m.path, work: m.streamer?.work ?? null,
      stage_ms: m.streamer?.ms ?? null,
      raw: m.trace.map((p) => p.raw), scores: m.trace.map((p) => p.score),
      events: state.detections.filter((d) => d.model === m.name).map(({ timeS, score, onsetS }) => ({ timeS, score, onsetS })) })),
  };
  document.body.dataset.state = "done";
  status(`self-test: ${state.frames} windows of ${url} scored`);
}

async function main() {
  document.body.dataset.state = "loading";
  await loadModels();
  document.body.dataset.state = "ready";
  draw();
  $("start").onclick = () => (state.audio ? stopMicrophone() : startMicrophone()).catch((err) => status(`error: ${err.message}`));
  if (params.get("selftest")) await selfTest(params.get("selftest"));
  else if (params.get("autostart") === "1") await startMicrophone();
}

main().catch((err) => {
  document.body.dataset.state = "error";
  status(`error: ${err.message}`);
  console.error(err);
});
