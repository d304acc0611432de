/**
 * deno task bench [--out DIR] [--steps N] [--workers N] [--profile]
 *
 * Training images/s (batch 64, real MNIST, the improved model with its
 * augmentation) in this thread and over data-parallel workers, and tfjs and
 * ONNX Runtime inference images/s (batch 256) for every model, measured
 * after warm-up; peak resident memory. Writes DIR/metrics/bench.json. If
 * PyTorch is installed (Debian's python3-torch), the twins of the three
 * models in bench/torch_reference.py are timed in the same run and printed
 * as ratios, with the BLAS the reference ran on and a warning when it is the
 * slow reference BLAS (bench/reference.ts). --profile adds the time per
 * kernel of a training step.
 */
import { join } from "node:path";
import { onnx, VERSIONS } from "../deps.ts";
import { tf } from "../deps_tfjs.ts";
import { loadMnist, pixelsOf } from "../data/mnist.ts";
import { engineFlag, sayFallback, useEngine } from "../kernels/engine.ts";
import { blasKind, describeReference, type TorchReference } from "./reference.ts";
import {
  ARCHITECTURES,
  buildModel,
  CNN_NAMES,
  MODEL_NAMES,
  type ModelName,
} from "../models/architectures.ts";
import { augmentBatch } from "../transforms/augment.ts";
import { MODEL_AUGMENTATION } from "../train/recipes.ts";
import { setExactStatistics } from "../train/batch_norm_stats.ts";
import { trainStep } from "../train/steps.ts";
import { FlatAdam } from "../train/adam.ts";
import { encodeReplica } from "../train/checkpoint.ts";
import { WorkerPool } from "../train/parallel.ts";
import { DEFAULT_WORKERS } from "../train/run.ts";
import { type KernelTime, profileKernels } from "../kernels/profile.ts";
import { exportModel } from "../export/export_model.ts";
import { saveLayersModel } from "../models/layers_io.ts";
import { OnnxClassifier, onnxMetadata } from "../infer/classifier.ts";
import { type EnsembleMember, mergeEnsemble } from "../export/ensemble.ts";
import { mergeTurned, type TurnSettings } from "../export/turned.ts";
import { buildTurnNetwork, TURN_MODEL_NAME } from "../models/turn.ts";
import { TURNED_MODEL_NAME as TURNED_KEY } from "../util/results_dir.ts";
import { multiplyAdds } from "../models/cost.ts";
import { commandLine, intFlag, parseFlags, runMain } from "../util/cli.ts";
import { writeJsonAtomic } from "../util/files.ts";
import { Random } from "../util/random.ts";

const TRAIN_BATCH = 64;
const INFER_BATCH = 256;
const WARMUP_STEPS = 5;

let peakRss = 0;
function sampleMemory(): void {
  peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
}

type Data = Awaited<ReturnType<typeof loadMnist>>;

const batchIndices = (data: Data, step: number) =>
  Array.from({ length: TRAIN_BATCH }, (_, j) => (step * TRAIN_BATCH + j) % data.train.count);

/**
 * Training images/s with every step in this thread; `timing` is called when
 * the warm-up is over and the timed steps begin.
 */
function benchTraining(name: ModelName, data: Data, steps: number, timing?: () => void): number {
  const model = buildModel(name);
  const optimizer = FlatAdam.forModel(model, 1e-3);
  const random = new Random(1);
  const step = (i: number) => {
    const indices = batchIndices(data, i);
    let pixels = pixelsOf(data.train, indices);
    const augmentation = MODEL_AUGMENTATION[name];
    if (augmentation) pixels = augmentBatch(pixels, random, augmentation);
    trainStep(model, optimizer, pixels, Uint8Array.from(indices, (k) => data.train.labels[k]));
    sampleMemory();
  };
  for (let i = 0; i < WARMUP_STEPS; i++) step(i);
  timing?.();
  const started = performance.now();
  for (let i = 0; i < steps; i++) step(WARMUP_STEPS + i);
  const imagesPerSecond = (steps * TRAIN_BATCH) / ((performance.now() - started) / 1000);
  model.dispose();
  return imagesPerSecond;
}

/** Training images/s with each step spread over `workers` data-parallel workers. */
async function benchParallelTraining(
  name: ModelName,
  data: Data,
  steps: number,
  workers: number,
): Promise<number> {
  const model = buildModel(name);
  const pool = await WorkerPool.start({
    name,
    architecture: ARCHITECTURES[name],
    seed: 1,
    workers,
    split: data.train,
  });
  try {
    await pool.load(
      await encodeReplica(model, FlatAdam.forModel(model, 1e-3)),
    );
    await pool.beginEpoch(0, 1e-3, MODEL_AUGMENTATION[name]);
    for (let i = 0; i < WARMUP_STEPS; i++) await pool.step(batchIndices(data, i));
    const started = performance.now();
    for (let i = 0; i < steps; i++) {
      await pool.step(batchIndices(data, WARMUP_STEPS + i));
      sampleMemory();
    }
    await pool.states(); // the last update applied
    return (steps * TRAIN_BATCH) / ((performance.now() - started) / 1000);
  } finally {
    pool.close();
    model.dispose();
  }
}

/**
 * Seconds for the exact BatchNorm statistics the improved recipe takes after
 * each epoch (4,096 augmented training images through the averaged weights):
 * in this thread, as before, and shared by `workers` workers.
 */
async function benchStatistics(
  data: Data,
  workers: number,
): Promise<{ thread: number; workers: number }> {
  const model = buildModel("improved");
  const pixels = augmentBatch(
    pixelsOf(data.train, Array.from({ length: 4096 }, (_, i) => i)),
    new Random(2),
    MODEL_AUGMENTATION.improved!,
  );
  const weights = model.getWeights().map((w) => (w.dataSync() as Float32Array).slice());
  const pool = await WorkerPool.start({
    name: "improved",
    architecture: ARCHITECTURES.improved,
    seed: 1,
    workers,
    split: data.train,
  });
  try {
    await pool.batchNormStatistics(weights, pixels.subarray(0, 256 * 784), 1); // warm-up
    let started = performance.now();
    await pool.batchNormStatistics(weights, pixels, 1);
    const shared = (performance.now() - started) / 1000;
    setExactStatistics(model, pixels.subarray(0, 256 * 784), new Random(1)); // warm-up
    started = performance.now();
    setExactStatistics(model, pixels, new Random(1));
    sampleMemory();
    return { thread: (performance.now() - started) / 1000, workers: shared };
  } finally {
    pool.close();
    model.dispose();
  }
}

/** Time per kernel of a training step in this thread, slowest first. */
function profileTraining(name: ModelName, data: Data, steps: number): KernelTime[] {
  const profiler = profileKernels();
  try {
    // Only the timed steps count: the profiler restarts after the warm-up.
    const imagesPerSecond = benchTraining(name, data, steps, () => profiler.reset());
    const stepMilliseconds = (1000 * TRAIN_BATCH) / imagesPerSecond;
    const kernels = profiler.report().map(({ kernel, calls, milliseconds }) => ({
      kernel,
      calls: calls / steps,
      milliseconds: milliseconds / steps,
    }));
    const inKernels = kernels.reduce((sum, k) => sum + k.milliseconds, 0);
    return [
      ...kernels,
      { kernel: "(outside kernels)", calls: 0, milliseconds: stepMilliseconds - inKernels },
    ];
  } finally {
    profiler.stop();
  }
}

function printProfile(name: ModelName, profile: KernelTime[]): void {
  const total = profile.reduce((sum, k) => sum + k.milliseconds, 0);
  console.log(`profile ${name}: ${total.toFixed(1)} ms per step of ${TRAIN_BATCH} in this thread`);
  for (const { kernel, calls, milliseconds } of profile) {
    if (milliseconds < 0.05 * total / 100) continue;
    console.log(
      `  ${kernel.padEnd(28)} ${milliseconds.toFixed(2).padStart(7)} ms ${
        (100 * milliseconds / total).toFixed(1).padStart(5)
      }%  ${calls ? `${calls.toFixed(0)} calls` : ""}`,
    );
  }
}

function benchInference(
  model: tf.LayersModel,
  data: Awaited<ReturnType<typeof loadMnist>>,
  images: number,
): number {
  const batches = Array.from({ length: Math.ceil(images / INFER_BATCH) }, (_, b) =>
    tf.tensor4d(
      pixelsOf(
        data.test,
        Array.from({ length: INFER_BATCH }, (_, i) => (b * INFER_BATCH + i) % data.test.count),
      ),
      [INFER_BATCH, 28, 28, 1],
    ));
  const run = (x: tf.Tensor) => tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync());
  run(batches[0]);
  const started = performance.now();
  for (const x of batches) run(x);
  sampleMemory();
  const imagesPerSecond = (batches.length * INFER_BATCH) / ((performance.now() - started) / 1000);
  tf.dispose(batches);
  return imagesPerSecond;
}

/**
 * ONNX Runtime on the same model, exported by our exporter: the 10,000 test
 * images at batch 256 with 2 threads.
 */
/** The model, untrained, as a verified ONNX file in `dir` (the graph is what counts for speed). */
async function exportUntrained(
  model: tf.LayersModel,
  data: Data,
  dir: string,
  name: string,
): Promise<string> {
  await saveLayersModel(model, join(dir, name));
  const onnxPath = join(dir, `${name}.onnx`);
  await exportModel({
    modelDir: join(dir, name),
    onnxPath,
    layout: "nhwc",
    verificationPixels: pixelsOf(data.test, Array.from({ length: 256 }, (_, i) => i)),
  });
  return onnxPath;
}

/**
 * ONNX Runtime images/s of each file on the 10,000 test images, best of
 * three passes, the files taking turns pass by pass: the machine's speed
 * drifts by 10-20% over minutes, and the ratios between files (the robust
 * model's speed floor is one) should not depend on which ran first.
 */
async function timeOnnx(
  onnxPaths: Record<string, string>,
  data: Data,
): Promise<Record<string, number>> {
  const pixels = pixelsOf(data.test, Array.from({ length: data.test.count }, (_, i) => i));
  const classifiers = new Map<string, OnnxClassifier>();
  const best: Record<string, number> = {};
  try {
    for (const [name, path] of Object.entries(onnxPaths)) {
      const classifier = await OnnxClassifier.load(path, { threads: 2 });
      classifiers.set(name, classifier);
      await classifier.predict(pixels.subarray(0, 4 * INFER_BATCH * 784), INFER_BATCH);
      best[name] = 0;
    }
    // Best of three: ONNX Runtime's thread pool suffers from other load.
    for (let pass = 0; pass < 3; pass++) {
      for (const [name, classifier] of classifiers) {
        const started = performance.now();
        await classifier.predict(pixels, INFER_BATCH);
        best[name] = Math.max(best[name], data.test.count / ((performance.now() - started) / 1000));
      }
    }
    sampleMemory();
  } finally {
    for (const classifier of classifiers.values()) await classifier.release();
  }
  return best;
}

/** The one-file ensembles of record that bench times: a seed's ensemble and the committee. */
const ENSEMBLE_FILES = ["ensemble", "committee"] as const;

/**
 * The members DIR/models/<file>.onnx names (their architectures: a member
 * named by its run's folders, "results/vgg", is a vgg), timed from the
 * untrained exports the single models were timed on; undefined without
 * one, or when a member is not one of the study's architectures.
 */
async function ensembleMembers(outDir: string, file: string): Promise<ModelName[] | undefined> {
  try {
    const metadata = onnxMetadata(await Deno.readFile(join(outDir, "models", `${file}.onnx`)));
    const names = (JSON.parse(metadata.ensemble_members) as Array<{ name: string }>).map((m) =>
      m.name.split("/").at(-1)!
    );
    return names.every((name) => (MODEL_NAMES as readonly string[]).includes(name))
      ? names as ModelName[]
      : undefined;
  } catch {
    return undefined;
  }
}

/** The ensemble of members already exported to `dir/<name>.onnx` by the single-model pass. */
async function exportEnsemble(
  members: ModelName[],
  dir: string,
  file: string,
): Promise<string> {
  // A committee has several members of one architecture; the merged graph needs distinct names.
  const parts: EnsembleMember[] = await Promise.all(members.map(async (name, i) => ({
    name: `${i + 1}-${name}`,
    bytes: await Deno.readFile(join(dir, `${name}.onnx`)),
  })));
  const onnxPath = join(dir, `${file}.onnx`);
  await Deno.writeFile(onnxPath, onnx.ModelProto.encode(mergeEnsemble(parts)).finish());
  return onnxPath;
}

/**
 * The gate and pick of the turned model of record (DIR/turned/models/turned.onnx,
 * `export --turned`), read from its metadata; undefined without one.
 */
async function turnedSettings(outDir: string): Promise<TurnSettings | undefined> {
  try {
    const path = join(outDir, TURNED_KEY, "models", `${TURNED_KEY}.onnx`);
    const turn = JSON.parse(onnxMetadata(await Deno.readFile(path)).turn);
    return { gateDegrees: turn.gate_degrees, pick: turn.pick };
  } catch {
    return undefined;
  }
}

/** PyTorch's training speed on this machine (bench/torch_reference.py), or why there is none. */
async function torchReference(): Promise<TorchReference | string> {
  const script = new URL("./torch_reference.py", import.meta.url);
  try {
    const { code, stdout, stderr } = await new Deno.Command("/usr/bin/python3", {
      args: [script.pathname],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (code !== 0) {
      const why = new TextDecoder().decode(stderr).trim().split("\n").at(-1);
      return `PyTorch reference not run (${why}; apt-get install python3-torch libopenblas0-pthread)`;
    }
    return JSON.parse(new TextDecoder().decode(stdout).trim().split("\n").at(-1)!);
  } catch (error) {
    return `PyTorch reference not run (${(error as Error).message})`;
  }
}

async function existing(path: string): Promise<Record<string, unknown>> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch {
    return {};
  }
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, {
    out: { type: "string", default: "results" },
    steps: { type: "string" },
    workers: { type: "string" },
    profile: { type: "boolean", default: false },
    "no-reference": { type: "boolean", default: false },
    engine: { type: "string" },
    help: { type: "boolean", default: false },
  });
  if (values.help) {
    console.log(`Measure training and inference speed.

Usage: deno task bench [--out DIR] [--steps N] [--workers N] [--engine E] [--profile] [--no-reference]

  --out DIR        writes DIR/metrics/bench.json (default results/)
  --steps N        timed training steps of batch ${TRAIN_BATCH} per model (default 64 = 4,096 images)
  --workers N      data-parallel training workers to measure besides 1 (default ${DEFAULT_WORKERS})
  --engine E       native, wasm or auto (default auto: native where it can be built)
  --profile        also print the time per kernel of a training step in this thread
  --no-reference   skip the PyTorch reference even if it is installed`);
    return;
  }
  const steps = intFlag(values.steps, "steps", 64, 1, 100000);
  const workers = intFlag(values.workers, "workers", DEFAULT_WORKERS, 1, 64);
  const choice = engineFlag(values.engine);
  const data = await loadMnist();
  const engine = await useEngine(choice);
  sayFallback(engine);
  console.log(
    `engine: ${engine.engine}${
      engine.blas
        ? ` (${engine.blas}, ${engine.blasCore} kernels; convolutions on ${engine.convolutions})`
        : ""
    }`,
  );
  const train: Record<string, number> = {};
  const trainOneThread: Record<string, number> = {};
  const inferTfjs: Record<string, number> = {};
  const profiles: Record<string, KernelTime[]> = {};
  for (const name of MODEL_NAMES) {
    const what = `batch ${TRAIN_BATCH}, ${
      steps * TRAIN_BATCH
    } images after ${WARMUP_STEPS} warm-up steps${
      MODEL_AUGMENTATION[name] ? ", with augmentation" : ""
    }`;
    trainOneThread[name] = Math.round(benchTraining(name, data, steps));
    console.log(
      `train ${name}, 1 worker (this thread): ${trainOneThread[name]} images/s (${what})`,
    );
    train[name] = workers === 1
      ? trainOneThread[name]
      : Math.round(await benchParallelTraining(name, data, steps, workers));
    console.log(
      `train ${name}, ${workers} workers: ${train[name]} images/s (${what}), ${
        (train[name] / trainOneThread[name]).toFixed(2)
      }x 1 worker`,
    );
    if (values.profile) {
      profiles[name] = profileTraining(name, data, Math.min(steps, 32));
      printProfile(name, profiles[name]);
    }
  }
  const multiplyAddsOf: Record<string, number> = {};
  const parametersOf: Record<string, number> = {};
  const onnxDir = await Deno.makeTempDir({ prefix: "bench-onnx-" });
  const onnxPaths: Record<string, string> = {};
  const ensembleMembersOf: Record<string, ModelName[]> = {};
  for (const name of MODEL_NAMES) {
    const model = buildModel(name);
    inferTfjs[name] = Math.round(benchInference(model, data, 4096));
    console.log(
      `infer tfjs ${name}: ${inferTfjs[name]} images/s (batch ${INFER_BATCH}, 4,096 test images)`,
    );
    multiplyAddsOf[name] = multiplyAdds(model);
    parametersOf[name] = model.countParams();
    onnxPaths[name] = await exportUntrained(model, data, onnxDir, name);
    model.dispose();
  }
  for (const file of ENSEMBLE_FILES) {
    const members = await ensembleMembers(values.out!, file);
    if (!members) continue;
    ensembleMembersOf[file] = members;
    multiplyAddsOf[file] = members.reduce((sum, name) => sum + multiplyAddsOf[name], 0);
    parametersOf[file] = members.reduce((sum, name) => sum + parametersOf[name], 0);
    onnxPaths[file] = await exportEnsemble(members, onnxDir, file);
  }
  const turned = await turnedSettings(values.out!);
  if (turned) {
    // The turned model of record: the untrained VGG behind an untrained angle network.
    const angle = buildTurnNetwork();
    multiplyAddsOf[TURNED_KEY] = multiplyAdds(angle) +
      multiplyAddsOf.vgg * (turned.pick === "confident" ? 2 : 1);
    parametersOf[TURNED_KEY] = angle.countParams() + parametersOf.vgg;
    const anglePath = await exportUntrained(angle, data, onnxDir, TURN_MODEL_NAME);
    angle.dispose();
    onnxPaths[TURNED_KEY] = join(onnxDir, `${TURNED_KEY}.onnx`);
    await Deno.writeFile(
      onnxPaths[TURNED_KEY],
      onnx.ModelProto.encode(
        mergeTurned(await Deno.readFile(onnxPaths.vgg), await Deno.readFile(anglePath), turned),
      ).finish(),
    );
  }
  const inferOnnx: Record<string, number> = Object.fromEntries(
    Object.entries(await timeOnnx(onnxPaths, data)).map(([name, rate]) => [name, Math.round(rate)]),
  );
  for (const name of MODEL_NAMES) {
    console.log(
      `infer onnx ${name}: ${
        inferOnnx[name]
      } images/s (onnxruntime-node, 2 threads, batch ${INFER_BATCH}, 10,000 test images), ${
        (inferOnnx[name] / inferTfjs[name]).toFixed(1)
      }x tfjs predict`,
    );
  }
  console.log(
    `infer onnx robust: ${
      (inferOnnx.robust / inferOnnx.improved).toFixed(2)
    }x the improved model's images/s`,
  );
  for (const [file, members] of Object.entries(ensembleMembersOf)) {
    console.log(
      `infer onnx ${file} (${members.join(" + ")}, one graph): ${inferOnnx[file]} images/s`,
    );
  }
  if (turned) {
    console.log(
      `infer onnx turned (vgg behind the angle network, pick ${turned.pick}, one graph): ${
        inferOnnx[TURNED_KEY]
      } images/s`,
    );
  }
  await Deno.remove(onnxDir, { recursive: true });
  for (const name of Object.keys(multiplyAddsOf)) {
    console.log(
      `${name}: ${(multiplyAddsOf[name] / 1e6).toFixed(2)} M multiply-adds an image, ${
        parametersOf[name].toLocaleString("en-US")
      } parameters`,
    );
  }
  // Training and inference's peak, before the statistics pass below grows the heaps further.
  sampleMemory();
  const trainingPeak = peakRss;
  const statistics = workers > 1 ? await benchStatistics(data, workers) : undefined;
  if (statistics) {
    console.log(
      `exact BatchNorm statistics, 4,096 images (improved, after each epoch): ${
        statistics.thread.toFixed(2)
      } s in one thread, ${statistics.workers.toFixed(2)} s over ${workers} workers`,
    );
  }
  console.log(
    `peak resident memory: ${(trainingPeak / 2 ** 20).toFixed(0)} MiB training and inference, ${
      (peakRss / 2 ** 20).toFixed(0)
    } MiB after the statistics pass over 4,096 images (this process and its workers)`,
  );

  const reference = values["no-reference"] ? "skipped (--no-reference)" : await torchReference();
  if (typeof reference === "string") {
    console.log(`reference: ${reference}`);
  } else {
    const { line, warning } = describeReference(reference);
    console.log(line);
    if (warning) console.log(warning);
    for (const name of CNN_NAMES) {
      console.log(
        `train ${name}: ${(train[name] / reference[name]).toFixed(2)}x PyTorch ` +
          `(${reference[name]} images/s, same machine, same run)`,
      );
    }
  }

  const path = join(values.out!, "metrics", "bench.json");
  await writeJsonAtomic(path, {
    ...(await existing(path)),
    engine: engine.engine,
    ...(engine.blas
      ? { blas: engine.blas, blas_core: engine.blasCore, convolutions: engine.convolutions }
      : {}),
    train,
    train_workers: workers,
    train_one_worker: trainOneThread,
    ...(values.profile ? { train_profile_ms_per_step: profiles } : {}),
    infer_tfjs: inferTfjs,
    infer_onnx: inferOnnx,
    multiply_adds: multiplyAddsOf,
    parameters: parametersOf,
    ...(statistics ? { batch_norm_statistics_seconds: statistics } : {}),
    peak_rss_mib: Math.round(trainingPeak / 2 ** 20),
    peak_rss_mib_with_statistics: Math.round(peakRss / 2 ** 20),
    reference_pytorch: typeof reference === "string"
      ? reference
      : { ...reference, blas: blasKind(reference.blas_libraries) },
    command: commandLine("deno task bench", args),
    date: new Date().toISOString(),
    versions: { deno: Deno.version.deno, ...VERSIONS },
    machine: { cpus: navigator.hardwareConcurrency, os: Deno.build.os, arch: Deno.build.arch },
  });
  console.log(`written: ${path}`);
}

if (import.meta.main) await runMain(() => main(Deno.args));
