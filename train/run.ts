/**
 * A whole training run: split the data, train epoch by epoch with a
 * checkpoint after each, evaluate, and write the model and its metrics.
 * Printing is left to the caller through `TrainHooks`.
 */
import { activeEngineInfo, type EngineName } from "../kernels/engine.ts";
import { join } from "node:path";
import { VERSIONS } from "../deps.ts";
import { tf } from "../deps_tfjs.ts";
import {
  type Mnist,
  pixelsOf,
  splitTrainValidation,
  subset,
  VALIDATION_SIZE,
} from "../data/mnist.ts";
import {
  type Architecture,
  ARCHITECTURES,
  buildArchitecture,
  type ModelName,
} from "../models/architectures.ts";
import { loadLayersModel, saveLayersModel } from "../models/layers_io.ts";
import {
  augmentBatch,
  AUGMENTED_TEST_SEED,
  type AugmentRanges,
  TRAINING_AUGMENTATION,
} from "../transforms/augment.ts";
import { Random, type RandomState, seedMathRandom } from "../util/random.ts";
import { writeJsonAtomic } from "../util/files.ts";
import {
  decodeCheckpoint,
  encodeReplica,
  loadCheckpoint,
  type ReplicaState,
  saveCheckpoint,
} from "./checkpoint.ts";
import { WorkerFailure, WorkerPool } from "./parallel.ts";
import { FlatAdam } from "./adam.ts";
import {
  inFinishStage,
  learningRateAt,
  MODEL_AUGMENTATION,
  type NamedRecipe,
  type Recipe,
} from "./recipes.ts";
import type { EpochRecord } from "./records.ts";
import {
  evaluate,
  type Evaluation,
  evaluationBatches,
  teacherTargets,
  trainStep,
} from "./steps.ts";
import { type Distillation, loadTeachers, TeacherError } from "./teachers.ts";
import {
  hasBatchNorm,
  keepingStatistics,
  setExactStatistics,
  setStatistics,
  statisticsUnconverged,
  withStatistics,
} from "./batch_norm_stats.ts";
import { WeightAverage } from "./weight_average.ts";
import { beginsRecipe } from "./seeds.ts";
import { exists } from "../util/files.ts";

/** Data-parallel workers by default: the two cores of the machines this was built for. */
export const DEFAULT_WORKERS = 2;

export interface TrainConfig extends Recipe {
  /** The model's name: "baseline", "improved" or an ablation variant's. */
  model: string;
  /** Its layers (default: those of the model of that name). */
  architecture?: Architecture;
  /** The named recipe it trains on instead of its model's own (see NAMED_RECIPES). */
  recipeName?: string;
  /** The augmentation when `augment` is on (default: the improved model's). */
  augmentation?: AugmentRanges;
  seed: number;
  /** Train on the first N training images; also caps validation and test sets. */
  limit?: number;
  /**
   * Training images held out for validation (default: the recipe's, else
   * VALIDATION_SIZE; absent when VALIDATION_SIZE, so that runs from before
   * this option compare equal).
   */
  validation?: number;
  augment: boolean;
  /**
   * Data-parallel workers (1: train in this thread). Part of the run's
   * identity: dropout and augmentation streams depend on it.
   */
  workers?: number;
  /** Teachers whose probabilities join the labels as targets (`--teacher`). */
  distillation?: Distillation;
}

export type { EpochRecord };

/** What a checkpoint remembers of a run. */
export interface RunState {
  config: TrainConfig;
  epochsDone: number;
  history: EpochRecord[];
  dataRandom: RandomState;
  tfRandom: RandomState;
  command: string;
  started: string;
  /** Updates of the weight average so far (when the recipe keeps one). */
  averageUpdates?: number;
  /** The finished run its finishing stage began from (`--start-from`), if any. */
  startedFrom?: StartedFrom;
}

/** A run whose saved model began another run's finishing stage. */
export interface StartedFrom {
  folder: string;
  command: string;
  date: string;
  /** Its epochs: the first part of the recipe that went on from it. */
  epochs: number;
}

export interface TrainHooks {
  epochStart?(epoch: number, epochs: number, batches: number): void;
  batchEnd?(batch: number, loss: number, accuracy: number, imagesPerSecond: number): void;
  epochEnd?(record: EpochRecord, epochs: number): void;
  evaluating?(what: string): void;
}

export interface TrainResult {
  metricsPath: string;
  modelDir: string;
  metrics: Metrics;
}

export interface Metrics {
  model: string;
  command: string;
  date: string;
  started: string;
  seed: number;
  config: Omit<TrainConfig, "augmentation"> & {
    architecture: Architecture;
    augmentation: AugmentRanges | null;
  };
  data: { train: number; validation: number; test: number };
  parameters: { total: number; trainable: number; non_trainable: number };
  versions: Record<string, string>;
  history: EpochRecord[];
  test_loss: number;
  test_accuracy: number;
  test_accuracy_augmented: number;
  augmented_test_seed: number;
  train_seconds: number;
  /** Training plus validation and checkpoints, epoch by epoch. */
  wall_seconds: number;
  /** The training engine of the run's last command (kernels/engine.ts). */
  engine: EngineName;
  /** The finished run whose saved model began the finishing stage (`--start-from`). */
  started_from?: StartedFrom;
  /** What the native engine's convolutions ran on ("oneDNN 2.6", "im2col + BLIS"). */
  convolutions?: string;
}

export class TrainingError extends Error {}

export function outputPaths(outDir: string, model: string) {
  return {
    modelDir: join(outDir, "models", model),
    metrics: join(outDir, "metrics", `${model}_metrics.json`),
    checkpoint: join(outDir, "checkpoints", model, "checkpoint.bin"),
  };
}

function countParameters(model: tf.LayersModel) {
  const count = (weights: tf.LayerVariable[]) =>
    weights.reduce((sum, weight) => sum + weight.shape.reduce((a, b) => a! * b!, 1)!, 0);
  const trainable = count(model.trainableWeights);
  const nonTrainable = count(model.nonTrainableWeights);
  return { total: trainable + nonTrainable, trainable, non_trainable: nonTrainable };
}

export interface TrainOptions {
  config: TrainConfig;
  outDir: string;
  command: string;
  /**
   * Continue the run whose checkpoint is in `outDir`; `config.epochs` may
   * extend it and `config.workers` change it.
   */
  resume?: boolean;
  /**
   * On resume: settings the caller named, which must equal the run's own
   * (a changed one is refused, naming both values).
   */
  unchangeable?: Partial<Pick<TrainConfig, "seed" | "batchSize" | "limit" | "validation">>;
  hooks?: TrainHooks;
  /** The training worker module (tests swap in faulty ones). */
  workerUrl?: URL;
  /**
   * Instead of training the recipe's first part, begin its finishing stage
   * from the finished run of that part in this folder (laid out as `outDir`).
   */
  startFrom?: string;
}

/** A run's live parts: what a fresh start builds and a checkpoint restores. */
interface Run {
  config: TrainConfig;
  state: RunState;
  model: tf.LayersModel;
  optimizer: FlatAdam;
  tfRandom: Random;
  average?: WeightAverage;
}

export function architectureOf(config: TrainConfig): Architecture {
  const architecture = config.architecture ?? ARCHITECTURES[config.model as ModelName];
  if (!architecture) throw new TrainingError(`No architecture is known for "${config.model}".`);
  return architecture;
}

export function augmentationOf(config: TrainConfig): AugmentRanges | null {
  return config.augment ? config.augmentation ?? TRAINING_AUGMENTATION : null;
}

/** The augmentation of one epoch (counted from 0): the finishing stage's has its own. */
export function augmentationAt(config: TrainConfig, epoch: number): AugmentRanges | null {
  if (!config.augment) return null;
  return inFinishStage(config, epoch) ? config.finish!.augmentation : augmentationOf(config);
}

/**
 * Whether weights of these shapes fit the config's model. Checkpoints
 * written before runs named their architecture leave it implicit, so their
 * weights are the only record of it.
 */
export function fitsArchitecture(shapes: readonly number[][], config: TrainConfig): boolean {
  const model = buildArchitecture(architectureOf(config), config.model);
  try {
    return hasWeightShapes(model, shapes);
  } finally {
    model.dispose();
  }
}

function hasWeightShapes(model: tf.LayersModel, shapes: readonly number[][]): boolean {
  const own = model.weights.map((weight) => weight.shape);
  return own.length === shapes.length &&
    own.every((shape, i) => shape.join("x") === shapes[i].join("x"));
}

/** The config with its architecture spelled out, as runs record it (older checkpoints leave the model's default implicit). */
export function withArchitecture(config: TrainConfig): TrainConfig {
  return { ...config, architecture: architectureOf(config) };
}

/**
 * Whether a run that stopped after `epochsDone` epochs is the start of
 * `asked`'s recipe, whose finishing stage it lacks or was trained with other
 * settings, before that stage began (seeds.ts, beginsRecipe); checkpoints
 * that leave their architecture implicit compare by the model's default.
 */
export function beginsFinishingRecipe(
  config: TrainConfig,
  epochsDone: number,
  asked: TrainConfig,
): boolean {
  return beginsRecipe(withArchitecture(config), epochsDone, withArchitecture(asked));
}

function buildSeeded(config: TrainConfig, random: Random): tf.LayersModel {
  const restore = seedMathRandom(random);
  try {
    return buildArchitecture(architectureOf(config), config.model);
  } finally {
    restore();
  }
}

function startRun(given: TrainConfig, command: string): Run {
  // Named in the checkpoint, so that a later change of the model's default is not taken for it.
  const config = withArchitecture(given);
  const tfRandom = new Random(config.seed);
  const model = buildSeeded(config, tfRandom);
  return runFrom(config, model, tfRandom, new Random(config.seed + 1), {
    epochsDone: 0,
    history: [],
    command,
  });
}

/**
 * A run of `model` as its weights stand, with a fresh optimizer and weight
 * average, the random streams given, and what the run has done so far.
 */
function runFrom(
  config: TrainConfig,
  model: tf.LayersModel,
  tfRandom: Random,
  dataRandom: Random,
  done: Pick<RunState, "epochsDone" | "history" | "command" | "startedFrom">,
): Run {
  return {
    config,
    model,
    tfRandom,
    optimizer: FlatAdam.forModel(model, config.learningRate),
    average: config.weightAverageDecay > 0
      ? new WeightAverage(model, config.weightAverageDecay)
      : undefined,
    state: {
      config,
      ...done,
      dataRandom: dataRandom.state,
      tfRandom: tfRandom.state,
      started: new Date().toISOString(),
    },
  };
}

const FLAG_NAMES = {
  seed: "--seed",
  batchSize: "--batch-size",
  limit: "--limit",
  validation: "--validation",
} as const;

/** What a run trained with where its config leaves a setting out. */
const IMPLICIT: Partial<Record<keyof typeof FLAG_NAMES, number>> = { validation: VALIDATION_SIZE };

/** A run's own value of a setting the command may name, defaults filled in. */
export function ownSetting(
  config: Partial<Pick<TrainConfig, keyof typeof FLAG_NAMES>>,
  key: keyof typeof FLAG_NAMES,
): number | undefined {
  return config[key] ?? IMPLICIT[key];
}

async function resumeRun(
  checkpointPath: string,
  outDir: string,
  asked: TrainConfig,
  unchangeable: TrainOptions["unchangeable"] = {},
): Promise<Run> {
  const checkpoint = await loadCheckpoint<RunState>(checkpointPath);
  const state = checkpoint.state;
  // A run stopped before its finishing stage goes on into the recipe's current one.
  const adopted = beginsFinishingRecipe(state.config, state.epochsDone, asked);
  const config = {
    ...state.config,
    epochs: asked.epochs,
    ...(asked.workers ? { workers: asked.workers } : {}),
    // The recipe it goes on into is the one it becomes (its name too).
    ...(adopted ? { finish: asked.finish, recipeName: asked.recipeName } : {}),
  };
  try {
    for (
      const [key, value] of Object.entries(unchangeable) as Array<[keyof typeof FLAG_NAMES, number]>
    ) {
      const own = ownSetting(state.config, key);
      if (value !== undefined && value !== own) {
        throw new TrainingError(
          `${FLAG_NAMES[key]} cannot change on --resume: the run in ${outDir} has ${
            own ?? "none"
          }, the command asks for ${value}.`,
        );
      }
    }
    const teachersOf = (d: Distillation) => `${d.teachers.join(", ")} at weight ${d.weight}`;
    if (
      asked.distillation &&
      JSON.stringify(asked.distillation) !== JSON.stringify(state.config.distillation)
    ) {
      const had = state.config.distillation;
      throw new TrainingError(
        `--teacher and --distill cannot change on --resume: the run in ${outDir} distils from ${
          had ? teachersOf(had) : "no teacher"
        }, the command asks for ${teachersOf(asked.distillation)}.`,
      );
    }
    if (state.epochsDone >= config.epochs) {
      throw new TrainingError(
        `Nothing to resume: the run in ${outDir} already finished ${state.epochsDone} of ${config.epochs} epochs (pass a larger --epochs to train further).`,
      );
    }
    // The initial weights are overwritten at once: draw them from a throwaway
    // stream so that the saved one continues exactly where it stopped.
    const model = buildSeeded(config, new Random(0));
    if (!hasWeightShapes(model, checkpoint.weights.map((weight) => weight.shape))) {
      model.dispose();
      throw new TrainingError(
        `The checkpoint in ${outDir} holds a ${config.model} model of another architecture than this one; train it afresh without --resume.`,
      );
    }
    state.config = config;
    model.setWeights(checkpoint.weights);
    const optimizer = FlatAdam.forModel(model, config.learningRate);
    await optimizer.setWeights(checkpoint.optimizer);
    const average = config.weightAverageDecay > 0
      ? new WeightAverage(
        model,
        config.weightAverageDecay,
        checkpoint.averages,
        state.averageUpdates ?? 0,
      )
      : undefined;
    return { config, state, model, optimizer, average, tfRandom: new Random(state.tfRandom) };
  } finally {
    tf.dispose([
      ...checkpoint.weights,
      ...checkpoint.averages,
      ...checkpoint.optimizer.map((n) => n.tensor),
    ]);
  }
}

/** Why `--start-from` cannot go with a config whose recipe has no finishing stage. */
export function noStageToStart(config: Pick<TrainConfig, "model" | "recipeName">): string {
  return `--start-from begins a recipe's finishing stage, and ${
    config.recipeName ? `recipe ${config.recipeName}` : `${config.model}'s own recipe`
  } has none.`;
}

/**
 * A run that begins the asked recipe's finishing stage from the saved model of
 * a finished run of its first part in `folder`: the same seed, data split and
 * settings, as many epochs as come before the stage. The stage would begin
 * from those weights on --resume too (the averaged weights the model was saved
 * with); what a checkpoint would add, Adam's moments and the random streams'
 * places, starts afresh (the streams from the seed, apart from the first
 * part's), so the run is its own, not the resumed one step for step.
 */
async function startFromFinished(
  folder: string,
  asked: TrainConfig,
  command: string,
): Promise<Run> {
  const refuse = (why: string) => new TrainingError(`--start-from ${folder}: ${why}`);
  const finish = asked.finish;
  if (!finish) throw new TrainingError(noStageToStart(asked));
  const paths = outputPaths(folder, asked.model);
  if (!(await exists(paths.metrics))) {
    throw refuse(`there is no finished ${asked.model} run here (no ${paths.metrics}).`);
  }
  let source: Metrics;
  try {
    source = JSON.parse(await Deno.readTextFile(paths.metrics));
  } catch (error) {
    throw refuse(`${paths.metrics} could not be read: ${(error as Error).message}.`);
  }
  if (source.seed !== asked.seed) {
    throw refuse(`its run has seed ${source.seed}, this one ${asked.seed}.`);
  }
  for (const key of ["limit", "validation"] as const) {
    const own = ownSetting(source.config, key);
    if (own !== ownSetting(asked, key)) {
      throw refuse(
        `its run has ${FLAG_NAMES[key]} ${own ?? "none"}, this one ${
          ownSetting(asked, key) ?? "none"
        }.`,
      );
    }
  }
  const before = finish.fromEpoch - 1;
  if (
    source.history.length !== before ||
    !beginsFinishingRecipe(source.config as TrainConfig, before, asked)
  ) {
    throw refuse(
      `its run (${
        source.config.recipeName ?? "its model's own recipe"
      }, ${source.history.length} epochs) is not the first ${before} epochs of ${
        asked.recipeName ?? "this recipe"
      }.`,
    );
  }
  const config = withArchitecture(asked);
  const model = buildSeeded(config, new Random(0));
  let saved: tf.LayersModel | undefined;
  try {
    saved = await loadLayersModel(paths.modelDir);
  } catch (error) {
    model.dispose();
    throw refuse(`its model in ${paths.modelDir} could not be read: ${(error as Error).message}`);
  }
  try {
    const weights = saved.getWeights();
    if (!hasWeightShapes(model, weights.map((weight) => weight.shape))) {
      throw refuse(`its model is of another architecture than this ${asked.model}.`);
    }
    model.setWeights(weights);
  } catch (error) {
    model.dispose();
    throw error;
  } finally {
    saved.dispose();
  }
  // Streams of their own: the first part drew from seed and seed + 1.
  return runFrom(config, model, new Random(config.seed + 2), new Random(config.seed + 3), {
    epochsDone: before,
    history: [...source.history],
    command,
    startedFrom: { folder, command: source.command, date: source.date, epochs: before },
  });
}

/** Hands the run's state to every worker. */
async function pushState(pool: WorkerPool, run: Run): Promise<void> {
  await pool.load(await encodeReplica(run.model, run.optimizer, run.average));
}

/**
 * Takes the workers' state into the run's model: weights, optimizer and
 * weight average from the first (replicas are identical), BatchNorm moving
 * statistics averaged over all (each saw its own shards). The moving
 * averages are linear, so averaging them once an epoch equals keeping one
 * over the shards' mean statistics.
 */
async function pullState(pool: WorkerPool, run: Run): Promise<void> {
  const states = (await pool.states()).map((bytes, i) =>
    decodeCheckpoint<ReplicaState>(bytes, `from training worker ${i + 1}`)
  );
  const [first] = states;
  try {
    const weights = run.model.weights.map((weight, i) =>
      weight.trainable
        ? first.weights[i]
        : tf.tidy(() => tf.div(tf.addN(states.map((state) => state.weights[i])), states.length))
    );
    run.model.setWeights(weights);
    tf.dispose(weights.filter((weight, i) => weight !== first.weights[i]));
    await run.optimizer.setWeights(first.optimizer);
    run.average?.load(first.averages, first.state.averageUpdates ?? 0);
  } finally {
    for (const state of states) {
      tf.dispose([...state.weights, ...state.averages, ...state.optimizer.map((n) => n.tensor)]);
    }
  }
}

export async function trainModel(data: Mnist, options: TrainOptions): Promise<TrainResult> {
  const { outDir, hooks = {} } = options;
  const paths = outputPaths(outDir, options.config.model);
  const run = options.resume
    ? await resumeRun(paths.checkpoint, outDir, options.config, options.unchangeable)
    : options.startFrom !== undefined
    ? await startFromFinished(options.startFrom, options.config, options.command)
    : startRun(options.config, options.command);
  const { config, state, model, optimizer, tfRandom, average } = run;

  const { train, validation } = splitTrainValidation(
    data.train,
    config.seed,
    config.limit,
    config.validation,
  );
  const test = config.limit
    ? subset(
      data.test,
      Array.from({ length: Math.min(config.limit, data.test.count) }, (_, i) => i),
    )
    : data.test;
  const dataRandom = new Random(state.dataRandom);
  const augmentation = augmentationOf(config);
  const distillation = config.distillation;
  let epochAugmentation = augmentation;
  const batches = Math.ceil(train.count / config.batchSize);
  const validationBatches = evaluationBatches(validation);
  // Exact BatchNorm statistics (for short runs and for averaged weights) come
  // from training images, augmented as the epoch's training images were and
  // with dropout as in training.
  const statisticsImages = (salt: number) => {
    const pixels = pixelsOf(
      train,
      Array.from({ length: Math.min(train.count, 4096) }, (_, i) => i),
    );
    const random = new Random(config.seed + salt);
    return {
      pixels: epochAugmentation ? augmentBatch(pixels, random, epochAugmentation) : pixels,
      random,
    };
  };
  /** With workers, they take the statistics of `weights`, a share of the images each. */
  const statisticsOverWorkers = (weights: Float32Array[], salt: number) => {
    const { pixels, random } = statisticsImages(salt);
    return pool!.batchNormStatistics(weights, pixels, random.nextUint32());
  };
  const setStatisticsFromTraining = async (salt: number) => {
    if (pool) {
      setStatistics(model, await statisticsOverWorkers(weightsOf(model), salt));
    } else {
      const { pixels, random } = statisticsImages(salt);
      setExactStatistics(model, pixels, random);
    }
  };

  // One step in this thread: augmentation draws from the run's data stream.
  const stepHere = (indices: Uint32Array) => {
    let pixels = pixelsOf(train, indices);
    if (epochAugmentation) pixels = augmentBatch(pixels, dataRandom, epochAugmentation);
    const labels = Uint8Array.from(indices, (i) => train.labels[i]);
    const soft = teacherTargets(teachers, distillation?.weight ?? 0, pixels);
    const step = trainStep(model, optimizer, pixels, labels, soft);
    average?.update();
    return step;
  };
  const workers = config.workers ?? 1;
  let pool: WorkerPool | undefined;
  let teachers: tf.LayersModel[] | undefined;

  try {
    if (workers > 1 && state.epochsDone < config.epochs) {
      pool = await WorkerPool.start({
        name: config.model,
        architecture: architectureOf(config),
        seed: config.seed,
        workers,
        split: train,
        validation,
        distillation,
        workerUrl: options.workerUrl,
      });
      await pushState(pool, run);
    }
    // With workers, each worker asks its own copy of the teachers.
    if (distillation && !pool && state.epochsDone < config.epochs) {
      teachers = await loadTeachers(distillation.teachers);
    }
    const averageStart = (config.weightAverageStart ?? 1) - 1;
    for (let epoch = state.epochsDone; epoch < config.epochs; epoch++) {
      if (average && config.finish?.fromEpoch === epoch + 1) {
        // The finishing stage goes on from the averaged weights, as the model
        // saved so far has them, and averages its own steps only.
        average.apply();
        average.restart();
        if (pool) await pushState(pool, run);
      }
      const averaging = average && epoch >= averageStart ? average : undefined;
      const learningRate = learningRateAt(config, epoch);
      optimizer.learningRate = learningRate;
      epochAugmentation = augmentationAt(config, epoch);
      await pool?.beginEpoch(epoch, learningRate, epochAugmentation);
      hooks.epochStart?.(epoch, config.epochs, batches);
      const order = dataRandom.permutation(train.count);
      const started = performance.now();
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      const restore = seedMathRandom(tfRandom);
      try {
        for (let batch = 0; batch < batches; batch++) {
          const indices = order.subarray(batch * config.batchSize, (batch + 1) * config.batchSize);
          const step = pool ? await pool.step(indices) : stepHere(indices);
          if (!Number.isFinite(step.loss)) {
            throw new TrainingError(
              `Training diverged: the loss became ${step.loss} at epoch ${epoch + 1}, batch ${
                batch + 1
              }. Lower the learning rate; the last checkpoint (epoch ${state.epochsDone}) is kept.`,
            );
          }
          lossSum += step.loss * indices.length;
          correct += step.correct;
          seen += indices.length;
          const elapsed = (performance.now() - started) / 1000;
          hooks.batchEnd?.(batch + 1, lossSum / seen, correct / seen, seen / elapsed);
        }
        if (pool) await pullState(pool, run);
      } finally {
        restore();
      }
      const seconds = (performance.now() - started) / 1000;
      if (statisticsUnconverged(model, (epoch + 1) * batches)) {
        await setStatisticsFromTraining(epoch);
      }
      hooks.evaluating?.("validation");
      // With workers, the weights to validate are taken here and the workers
      // share the evaluation; alone, this thread evaluates them at once.
      const measure = (): Float32Array[] | Evaluation =>
        pool ? weightsOf(model) : evaluate(model, validation);
      const measureAveraged = async (averaging: WeightAverage) => {
        if (!hasBatchNorm(model)) return averaging.with(measure);
        if (!pool) {
          return averaging.with(() =>
            keepingStatistics(model, () => {
              const { pixels, random } = statisticsImages(epoch);
              setExactStatistics(model, pixels, random);
              return measure();
            })
          );
        }
        // The workers take the averaged weights' statistics, and then validate them.
        const weights = averaging.with(() => weightsOf(model));
        return withStatistics(model, weights, await statisticsOverWorkers(weights, epoch));
      };
      const measured = averaging ? await measureAveraged(averaging) : measure();
      const measuredLive = averaging ? measure() : undefined;
      const finish = async (result: Float32Array[] | Evaluation): Promise<Evaluation> =>
        Array.isArray(result) ? await pool!.evaluate(result, validationBatches) : result;
      const val = await finish(measured);
      const live = measuredLive && await finish(measuredLive);
      const record: EpochRecord = {
        epoch: epoch + 1,
        learning_rate: learningRate,
        loss: lossSum / seen,
        accuracy: correct / seen,
        val_loss: val.loss,
        val_accuracy: val.accuracy,
        ...(live && { val_accuracy_live: live.accuracy }),
        seconds,
        images_per_s: seen / seconds,
      };
      state.history.push(record);
      state.epochsDone = epoch + 1;
      state.dataRandom = dataRandom.state;
      state.tfRandom = tfRandom.state;
      // The average starts from this epoch's final weights; the checkpoint and
      // the workers get it restarted.
      if (average && epoch + 1 === averageStart) average.restart();
      if (average) state.averageUpdates = average.updates;
      record.wall_seconds = (performance.now() - started) / 1000;
      await saveCheckpoint(paths.checkpoint, model, optimizer, state, average?.tensors());
      hooks.epochEnd?.(record, config.epochs);
      // Exact BatchNorm statistics and averaged moving statistics go back to the workers.
      if (pool && epoch + 1 < config.epochs) await pushState(pool, run);
    }
    if (average && config.epochs > averageStart) {
      average.apply();
      if (hasBatchNorm(model)) await setStatisticsFromTraining(config.epochs);
    }
    pool?.close();
    hooks.evaluating?.("test");
    const testResult = evaluate(model, test);
    const augmentRandom = new Random(AUGMENTED_TEST_SEED);
    const augmented = evaluate(model, test, 256, (pixels) => augmentBatch(pixels, augmentRandom));
    const { engine, convolutions } = activeEngineInfo();
    const metrics: Metrics = {
      model: config.model,
      command: state.command === options.command
        ? options.command
        : `${state.command} (resumed as: ${options.command})`,
      date: new Date().toISOString(),
      started: state.started,
      seed: config.seed,
      config: { ...config, architecture: architectureOf(config), augmentation },
      data: { train: train.count, validation: validation.count, test: test.count },
      parameters: countParameters(model),
      versions: { deno: Deno.version.deno, ...VERSIONS },
      history: state.history,
      test_loss: testResult.loss,
      test_accuracy: testResult.accuracy,
      test_accuracy_augmented: augmented.accuracy,
      augmented_test_seed: AUGMENTED_TEST_SEED,
      train_seconds: state.history.reduce((sum, record) => sum + record.seconds, 0),
      wall_seconds: state.history.reduce((sum, r) => sum + (r.wall_seconds ?? r.seconds), 0),
      engine,
      ...(convolutions ? { convolutions } : {}),
      ...(state.startedFrom ? { started_from: state.startedFrom } : {}),
    };
    await saveLayersModel(model, paths.modelDir);
    await writeJsonAtomic(paths.metrics, metrics);
    return { metricsPath: paths.metrics, modelDir: paths.modelDir, metrics };
  } catch (error) {
    if (error instanceof WorkerFailure) {
      throw new TrainingError(
        `${error.message} The last checkpoint (epoch ${state.epochsDone}) is kept: --resume continues from it.`,
      );
    }
    if (error instanceof TeacherError) throw new TrainingError(error.message);
    throw error;
  } finally {
    pool?.close();
    model.dispose();
    average?.dispose();
    teachers?.forEach((teacher) => teacher.dispose());
  }
}

/** Copies of every weight of the model, in `model.weights` order. */
function weightsOf(model: tf.LayersModel): Float32Array[] {
  return model.getWeights().map((weight) => (weight.dataSync() as Float32Array).slice());
}

/**
 * A model's configuration on `recipe` and, by default, its own augmentation;
 * `named` trains it on one of NAMED_RECIPES instead.
 */
export function defaultConfig(
  model: ModelName,
  recipe: Recipe,
  seed = 42,
  named?: { name: string; recipe: NamedRecipe },
): TrainConfig {
  if (named) recipe = named.recipe.recipe;
  const augmentation = named ? named.recipe.augmentation : MODEL_AUGMENTATION[model];
  return {
    ...recipe,
    model,
    ...(named ? { recipeName: named.name } : {}),
    seed,
    augment: augmentation !== null,
    ...(augmentation ? { augmentation } : {}),
  };
}
