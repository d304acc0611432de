/// <reference lib="dom" />
/**
 * The digit lab's page script. The person's drawing goes through the same
 * code as `deno task infer` (grayFromPixels, toMnist), is bent by the
 * robustness suite's transforms (bend.ts), and every served model answers in
 * the page through onnxruntime-web. `window.lab` exposes the state for tests.
 */
import type { ortWeb } from "../deps.ts";
import { grayFromPixels, PreprocessError, toMnist } from "../infer/preprocess.ts";
import {
  argmaxRows,
  dimsFor,
  type InputLayout,
  rowsAreProbabilities,
  softmaxRows,
} from "../infer/model_io.ts";
import {
  type Bend,
  BEND_CONTROLS,
  BEND_SEED,
  type BendControl,
  bendDigit,
  NO_BEND,
} from "./bend.ts";
import { curveChart, type CurveSeries, drawDigit, MODEL_COLOURS, renderBars } from "./charts.ts";
import { DrawingPad } from "./pad.ts";

declare const ort: typeof ortWeb;

interface ModelInfo {
  name: string;
  file: string;
  input: string;
  layout: InputLayout;
  test_accuracy: number | null;
}

interface LoadedModel extends ModelInfo {
  session: ortWeb.InferenceSession;
  bars: HTMLElement;
  prediction: HTMLElement;
}

interface Answer {
  prediction: number;
  probabilities: number[];
}

/** What the page shows now, for tests and for people poking at the console. */
interface LabState {
  ready: boolean;
  error: string | null;
  /** Completed rounds of classification (each drawing change, slider move...). */
  updates: number;
  bend: Bend;
  /** The 784 values the models saw last, or null when there is no digit. */
  preprocessed: number[] | null;
  answers: Record<string, Answer>;
  /** What the page classifies as a PNG data URL: what `/api/classify` should get to see the same digit. */
  drawingPng(): string;
  setBend(changes: Partial<Bend>): void;
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $("status");
const seen = $<HTMLCanvasElement>("seen");

let models: LoadedModel[] = [];
let chosen: BendControl = BEND_CONTROLS[0];
const bend: Bend = { ...NO_BEND };
const pad = new DrawingPad($<HTMLCanvasElement>("pad"), () => schedule());

const state: LabState = {
  ready: false,
  error: null,
  updates: 0,
  bend,
  preprocessed: null,
  answers: {},
  drawingPng: () => pad.source().toDataURL("image/png"),
  setBend(changes) {
    Object.assign(bend, changes);
    syncSliders();
    schedule();
  },
};
(globalThis as unknown as { lab: LabState }).lab = state;

function fail(message: string): void {
  state.error = message;
  status.textContent = message;
  status.classList.add("error");
}

async function getJson<T>(path: string): Promise<T> {
  const response = await fetch(path);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error ?? `${path} answered ${response.status}`);
  return body as T;
}

// Classification rounds never overlap (a session runs one call at a time); a
// change during a round asks for one more round, which reads the latest state.
let running = false;
let pending = false;
function schedule(): void {
  if (running) {
    pending = true;
    return;
  }
  running = true;
  // A timer, not requestAnimationFrame: a tab in the background gets no frames.
  setTimeout(() => {
    classifyDrawing().catch((error) => fail(`Classifying failed: ${error.message}`)).finally(
      () => {
        running = false;
        if (pending) {
          pending = false;
          schedule();
        }
      },
    );
  }, 0);
}

async function classifyDrawing(): Promise<void> {
  let pixels: Float32Array | null = null;
  if (!pad.isEmpty) {
    const image = pad.pixels();
    try {
      pixels = bendDigit(
        toMnist(grayFromPixels(image.data, image.width, image.height, 4)),
        bend,
        BEND_SEED,
      );
    } catch (error) {
      if (!(error instanceof PreprocessError)) throw error;
    }
  }
  drawDigit(seen, pixels ?? new Float32Array(784));
  state.preprocessed = pixels ? Array.from(pixels) : null;
  const answers: Record<string, Answer> = {};
  for (const model of models) {
    if (!pixels) {
      renderBars(model.bars, null);
      model.prediction.textContent = "–";
      continue;
    }
    const input = new ort.Tensor("float32", pixels, dimsFor(model.layout, 1));
    const outputs = await model.session.run({ [model.input]: input });
    const raw = outputs[model.session.outputNames[0]].data as Float32Array;
    const probabilities = rowsAreProbabilities(raw, 10) ? raw : softmaxRows(raw, 10);
    const prediction = argmaxRows(probabilities)[0];
    answers[model.name] = { prediction, probabilities: Array.from(probabilities) };
    renderBars(model.bars, probabilities);
    model.prediction.textContent = String(prediction);
  }
  state.answers = answers;
  state.updates++;
  if (state.ready) {
    status.textContent = pixels ? "Bend it with the sliders." : "Draw a digit in the box.";
  }
  if (!$("curve-box").hidden) await showCurve();
}

function buildAnswers(infos: ModelInfo[], sessions: ortWeb.InferenceSession[]): void {
  const container = $("answers");
  container.replaceChildren();
  models = [];
  for (const [i, info] of infos.entries()) {
    const box = document.createElement("div");
    box.className = "model";
    box.dataset.model = info.name;
    const head = document.createElement("div");
    head.className = "model-head";
    const name = document.createElement("span");
    name.className = "model-name";
    name.style.color = MODEL_COLOURS[i % MODEL_COLOURS.length];
    name.textContent = info.name;
    const accuracy = document.createElement("span");
    accuracy.className = "model-accuracy";
    accuracy.textContent = info.test_accuracy === null
      ? ""
      : `${(info.test_accuracy * 100).toFixed(2)}% on the MNIST test set`;
    const prediction = document.createElement("span");
    prediction.className = "prediction";
    prediction.textContent = "–";
    head.append(name, accuracy, prediction);
    const bars = document.createElement("div");
    bars.className = "bars";
    renderBars(bars, null);
    box.append(head, bars);
    container.append(box);
    models.push({ ...info, session: sessions[i], bars, prediction });
  }
}

const sliders = new Map<keyof Bend, { input: HTMLInputElement; output: HTMLOutputElement }>();

function syncSliders(): void {
  for (const [key, { input, output }] of sliders) {
    input.value = String(bend[key]);
    output.textContent = String(bend[key]);
  }
}

function buildSliders(): void {
  const container = $("sliders");
  for (const control of BEND_CONTROLS) {
    const row = document.createElement("div");
    row.className = control === chosen ? "slider chosen" : "slider";
    const label = document.createElement("label");
    label.htmlFor = `bend-${control.key}`;
    label.textContent = control.label;
    const output = document.createElement("output");
    const input = document.createElement("input");
    Object.assign(input, {
      type: "range",
      id: `bend-${control.key}`,
      min: String(control.min),
      max: String(control.max),
      step: String(control.step),
    });
    input.dataset.family = control.family;
    input.addEventListener("input", () => {
      bend[control.key] = Number(input.value);
      output.textContent = input.value;
      chosen = control;
      for (const other of container.children) other.classList.remove("chosen");
      row.classList.add("chosen");
      schedule();
    });
    row.append(label, output, input);
    container.append(row);
    sliders.set(control.key, { input, output });
  }
  syncSliders();
}

interface RobustnessFile {
  models: Record<string, {
    clean: number;
    families: Record<string, Array<{ level: number; accuracy: number }>>;
  }>;
  families: Record<string, { unit: string; levels: number[] }>;
}
let robustness: Promise<RobustnessFile> | undefined;

async function showCurve(): Promise<void> {
  const box = $("curve-box");
  box.hidden = false;
  try {
    robustness ??= getJson<RobustnessFile>("/api/robustness");
    const file = await robustness;
    const family = file.families[chosen.family];
    const series: CurveSeries[] = Object.entries(file.models).map(([name, result]) => {
      const points = result.families[chosen.family] ?? [];
      // A family measured at one MNIST-C severity: clean at 0, then that severity.
      return {
        name,
        points: chosen.severity === undefined ? points : [
          { level: 0, accuracy: result.clean },
          ...points.map((p) => ({ level: chosen.severity!, accuracy: p.accuracy })),
        ],
      };
    });
    box.replaceChildren(
      curveChart(
        `Test accuracy against ${chosen.label}`,
        family?.unit ?? chosen.label,
        series,
        bend[chosen.key],
      ),
    );
  } catch (error) {
    robustness = undefined;
    box.textContent = (error as Error).message;
  }
}

async function loadPicture(blob: Blob): Promise<void> {
  try {
    // Pixels as stored, as sharp decodes them for `deno task infer`.
    const bitmap = await createImageBitmap(blob, {
      colorSpaceConversion: "none",
      premultiplyAlpha: "none",
    });
    pad.setPicture(bitmap, bitmap.width, bitmap.height);
  } catch {
    status.textContent = "That file is not an image this browser can decode.";
  }
}

function wireInputs(): void {
  $("undo").addEventListener("click", () => pad.undo());
  $("clear").addEventListener("click", () => pad.clear());
  $("reset").addEventListener("click", () => state.setBend(NO_BEND));
  $("curve").addEventListener("click", () => {
    const box = $("curve-box");
    if (box.hidden) showCurve();
    else box.hidden = true;
  });
  const upload = $<HTMLInputElement>("upload");
  upload.addEventListener("change", () => {
    if (upload.files?.[0]) loadPicture(upload.files[0]);
    upload.value = "";
  });
  pad.canvas.addEventListener("dragover", (event) => {
    event.preventDefault();
    pad.canvas.classList.add("dragover");
  });
  pad.canvas.addEventListener("dragleave", () => pad.canvas.classList.remove("dragover"));
  pad.canvas.addEventListener("drop", (event) => {
    event.preventDefault();
    pad.canvas.classList.remove("dragover");
    const file = event.dataTransfer?.files[0];
    if (file) loadPicture(file);
  });
}

interface Mistake {
  index: number;
  label: number;
  prediction: number;
  confidence: number;
  pixels: number[];
}

async function showMistakes(model: string): Promise<void> {
  const container = $("mistakes");
  try {
    const { mistakes } = await getJson<{ mistakes: Mistake[] }>(
      `/api/mistakes?model=${encodeURIComponent(model)}`,
    );
    container.replaceChildren();
    if (mistakes.length === 0) {
      container.textContent =
        `No mistakes recorded for ${model}: run deno task infer --test-set --metrics.`;
    }
    for (const mistake of mistakes) {
      const item = document.createElement("button");
      item.className = "mistake";
      item.type = "button";
      const canvas = document.createElement("canvas");
      canvas.width = canvas.height = 28;
      drawDigit(canvas, mistake.pixels, 1 / 255);
      const caption = document.createElement("span");
      caption.textContent = `#${mistake.index}: ${mistake.label} → ${mistake.prediction} (${
        (mistake.confidence * 100).toFixed(1)
      }%)`;
      item.append(canvas, caption);
      item.addEventListener("click", () => pad.setPicture(canvas, 28, 28));
      container.append(item);
    }
  } catch (error) {
    container.textContent = (error as Error).message;
  }
}

async function start(): Promise<void> {
  if (typeof ort === "undefined") {
    fail("onnxruntime-web did not load, so the models cannot run in this page.");
    return;
  }
  ort.env.wasm.wasmPaths = "/vendor/ort/";
  ort.env.wasm.numThreads = 1;
  buildSliders();
  wireInputs();
  try {
    const { models: infos } = await getJson<{ models: ModelInfo[] }>("/api/models");
    const sessions = [];
    for (const info of infos) {
      sessions.push(
        await ort.InferenceSession.create(info.file, {
          executionProviders: ["wasm"],
          graphOptimizationLevel: "all",
        }),
      );
    }
    buildAnswers(infos, sessions);
    const select = $<HTMLSelectElement>("mistakes-model");
    select.replaceChildren(...infos.map((info) => new Option(info.name, info.name)));
    select.addEventListener("change", () => showMistakes(select.value));
    if (infos.length > 0) showMistakes(infos[0].name);
  } catch (error) {
    fail(`The models could not be loaded: ${(error as Error).message}`);
    return;
  }
  state.ready = true;
  status.textContent = `${models.length} models ready (${
    models.map((m) => m.name).join(", ")
  }). Draw a digit in the box.`;
  schedule();
}

start();
