/**
 * Training the angle network (models/turn.ts): digits of a seed's training
 * split, each turned by a known angle, and the network regresses the angle.
 * A checkpoint after every epoch; a run resumes from it. Printing is left to
 * the caller.
 */
import { join } from "node:path";
import { VERSIONS } from "../deps.ts";
import { tf } from "../deps_tfjs.ts";
import { type MnistSplit, pixelsOf, splitTrainValidation, subset } from "../data/mnist.ts";
import { activeEngineInfo } from "../kernels/engine.ts";
import { buildTurnNetwork, TURN_MODEL_NAME } from "../models/turn.ts";
import { saveLayersModel } from "../models/layers_io.ts";
import { MAX_TURN, turnBatch } from "../transforms/augment.ts";
import { writeJsonAtomic } from "../util/files.ts";
import { Random, type RandomState, withMathRandom } from "../util/random.ts";
import { FlatAdam } from "./adam.ts";
import { flatGradients } from "./steps.ts";
import { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";

export interface TurnConfig {
  seed: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** The learning rate is multiplied by this after every epoch. */
  learningRateDecay: number;
  /** Training images held out, chosen by the seed as a classifier's split is. */
  validation: number;
  /** Train on the first N training images; also caps the validation and test digits. */
  limit?: number;
}

/**
 * Eight epochs at Adam 1e-3 · 0.8^epoch; 500 digits held out, the split of
 * the mild VGG whose digits it turns back (so it never trains on that
 * network's validation digits).
 */
export const TURN_DEFAULTS: Omit<TurnConfig, "seed"> = {
  epochs: 8,
  batchSize: 64,
  learningRate: 1e-3,
  learningRateDecay: 0.8,
  validation: 500,
};

/** Seed of the fixed turns of the validation and test digits the error is measured on. */
export const TURN_EVALUATION_SEED = 7919;

export interface TurnEpoch {
  epoch: number;
  /** Mean squared error of the training batches (radians²). */
  loss: number;
  /** Mean absolute error on the turned validation digits, in degrees. */
  val_error_degrees: number;
  seconds: number;
  images_per_second: number;
}

interface TurnState {
  config: TurnConfig;
  epochsDone: number;
  history: TurnEpoch[];
  dataRandom: RandomState;
  command: string;
  started: string;
}

/** How well the network reads turns on a split's digits, each turned by a fixed angle. */
export interface TurnError {
  digits: number;
  mean_degrees: number;
  median_degrees: number;
  /** Share of digits whose turn is read within 10°. */
  within_10_degrees: number;
}

export class TurnTrainingError extends Error {}

export interface TurnHooks {
  epochEnd?(record: TurnEpoch, epochs: number): void;
}

export function turnPaths(outDir: string) {
  return {
    modelDir: join(outDir, "models", TURN_MODEL_NAME),
    // Not *_metrics.json: those are classifiers' training metrics to the report.
    metrics: join(outDir, "metrics", `${TURN_MODEL_NAME}_training.json`),
    checkpoint: join(outDir, "checkpoints", TURN_MODEL_NAME, "checkpoint.bin"),
  };
}

/** The angles the network reads for `pixels` (count × 784), in radians. */
export function readTurns(model: tf.LayersModel, pixels: Float32Array, batch = 256): Float32Array {
  const count = pixels.length / 784;
  const out = new Float32Array(count);
  for (let start = 0; start < count; start += batch) {
    const end = Math.min(count, start + batch);
    const values = tf.tidy(() =>
      (model.predict(
        tf.tensor4d(pixels.subarray(start * 784, end * 784), [end - start, 28, 28, 1]),
      ) as tf.Tensor).dataSync()
    );
    out.set(values, start);
  }
  return out;
}

/** The network's error on `split`'s digits, each turned (and augmented) by a fixed draw. */
export function turnError(model: tf.LayersModel, split: MnistSplit): TurnError {
  const indices = Array.from({ length: split.count }, (_, i) => i);
  const { pixels, turns } = turnBatch(pixelsOf(split, indices), new Random(TURN_EVALUATION_SEED));
  const read = readTurns(model, pixels);
  const errors = Array.from(turns, (turn, i) => Math.abs(read[i] - turn) * 180 / Math.PI)
    .sort((a, b) => a - b);
  return {
    digits: errors.length,
    mean_degrees: errors.reduce((sum, e) => sum + e, 0) / errors.length,
    median_degrees: errors[Math.floor(errors.length / 2)],
    within_10_degrees: errors.filter((e) => e <= 10).length / errors.length,
  };
}

/** Mean squared error of one batch and its gradients, flat in trainable-weight order. */
function batchGradients(
  model: tf.LayersModel,
  pixels: Float32Array,
  turns: Float32Array,
): { loss: number; gradients: Float32Array } {
  const { value, gradients } = flatGradients(model, () => {
    const x = tf.tensor4d(pixels, [turns.length, 28, 28, 1]);
    const y = tf.tensor2d(turns, [turns.length, 1]);
    return tf.mean(tf.square(tf.sub(model.apply(x, { training: true }) as tf.Tensor, y)));
  });
  return { loss: value, gradients };
}

const SAME_ON_RESUME = ["seed", "batchSize", "validation", "limit"] as const;

/**
 * Trains (or, with `resume`, continues) the angle network on `train`'s
 * digits under `config`, writing DIR/models/turn, DIR/metrics/turn_training.json
 * and a checkpoint after every epoch.
 */
export async function trainTurnNetwork(options: {
  train: MnistSplit;
  test: MnistSplit;
  config: TurnConfig;
  outDir: string;
  command: string;
  resume?: boolean;
  /** With `resume`: whether `config.epochs` was asked for (else the run keeps its own). */
  epochsGiven?: boolean;
  hooks?: TurnHooks;
}): Promise<{ modelDir: string; metrics: Record<string, unknown> }> {
  const paths = turnPaths(options.outDir);
  const asked = options.config;
  const model = withMathRandom(new Random(asked.seed), () => buildTurnNetwork());
  const optimizer = FlatAdam.forModel(model, asked.learningRate);
  try {
    let state: TurnState = {
      config: asked,
      epochsDone: 0,
      history: [],
      dataRandom: new Random(asked.seed + 1).state,
      command: options.command,
      started: new Date().toISOString(),
    };
    if (options.resume) {
      const checkpoint = await loadCheckpoint<TurnState>(paths.checkpoint);
      for (const key of SAME_ON_RESUME) {
        if (checkpoint.state.config[key] !== asked[key]) {
          tf.dispose([...checkpoint.weights, ...checkpoint.optimizer.map((n) => n.tensor)]);
          throw new TurnTrainingError(
            `--resume continues the run in ${options.outDir} with its own ${key} (${
              checkpoint.state.config[key] ?? "none"
            }); the command asks for ${asked[key] ?? "none"}.`,
          );
        }
      }
      model.setWeights(checkpoint.weights);
      await optimizer.setWeights(checkpoint.optimizer);
      tf.dispose([...checkpoint.weights, ...checkpoint.optimizer.map((n) => n.tensor)]);
      const epochs = options.epochsGiven === false ? checkpoint.state.config.epochs : asked.epochs;
      state = { ...checkpoint.state, config: { ...checkpoint.state.config, epochs } };
    }
    const { config } = state;
    const { train, validation } = splitTrainValidation(
      options.train,
      config.seed,
      config.limit,
      config.validation,
    );
    const dataRandom = new Random(state.dataRandom);
    for (let epoch = state.epochsDone; epoch < config.epochs; epoch++) {
      const began = performance.now();
      optimizer.learningRate = config.learningRate * config.learningRateDecay ** epoch;
      const order = dataRandom.permutation(train.count);
      let lossSum = 0;
      let batches = 0;
      for (let start = 0; start + config.batchSize <= train.count; start += config.batchSize) {
        const { pixels, turns } = turnBatch(
          pixelsOf(train, order.subarray(start, start + config.batchSize)),
          dataRandom,
        );
        const { loss, gradients } = batchGradients(model, pixels, turns);
        if (!Number.isFinite(loss)) {
          throw new TurnTrainingError(
            `The loss became ${loss} at epoch ${epoch + 1}, batch ${batches + 1}; nothing after ` +
              `the last checkpoint was kept.`,
          );
        }
        optimizer.apply(gradients);
        lossSum += loss;
        batches++;
      }
      const seconds = (performance.now() - began) / 1000;
      const record: TurnEpoch = {
        epoch: epoch + 1,
        loss: lossSum / Math.max(1, batches),
        val_error_degrees: turnError(model, validation).mean_degrees,
        seconds,
        images_per_second: batches * config.batchSize / seconds,
      };
      state = {
        ...state,
        epochsDone: epoch + 1,
        history: [...state.history, record],
        dataRandom: dataRandom.state,
      };
      await saveCheckpoint(paths.checkpoint, model, optimizer, state);
      options.hooks?.epochEnd?.(record, config.epochs);
    }
    const test = options.test;
    const testSplit = config.limit
      ? subset(test, Array.from({ length: Math.min(test.count, config.limit) }, (_, i) => i))
      : test;
    const metrics = {
      model: TURN_MODEL_NAME,
      command: state.command,
      seed: config.seed,
      date: new Date().toISOString(),
      started: state.started,
      versions: VERSIONS,
      engine: activeEngineInfo(),
      config,
      max_turn_degrees: MAX_TURN * 180 / Math.PI,
      evaluation_seed: TURN_EVALUATION_SEED,
      history: state.history,
      validation: turnError(model, validation),
      test: turnError(model, testSplit),
    };
    await saveLayersModel(model, paths.modelDir);
    await writeJsonAtomic(paths.metrics, metrics);
    return { modelDir: paths.modelDir, metrics };
  } finally {
    model.dispose();
  }
}
