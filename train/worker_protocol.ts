/**
 * Messages between a data-parallel training run and its workers. Every
 * request gets exactly one reply, in order, so the run can match them up.
 */
import type { MnistSplit } from "../data/mnist.ts";
import type { Architecture } from "../models/architectures.ts";
import type { AugmentRanges } from "../transforms/augment.ts";
import type { EngineName } from "../kernels/engine.ts";
import type { ChannelMoments } from "./batch_norm_stats.ts";
import type { Distillation } from "./teachers.ts";

export interface WorkerSetup {
  name: string;
  architecture: Architecture;
  seed: number;
  /** This worker's place among `workers`. */
  index: number;
  workers: number;
  /** The training split (the indices of "gradients" requests point into it). */
  split: MnistSplit;
  /** The engine the run chose; every worker uses the same. */
  engine: EngineName;
  /** The validation split, when the workers share the evaluation after each epoch. */
  validation?: MnistSplit;
  /** Teachers each worker loads for its share of every batch (distillation). */
  distillation?: Distillation;
}

/**
 * Seed of a worker's random stream for one epoch (stream 0: dropout, 1:
 * augmentation). Streams restart from it every epoch, so a run resumed from
 * an epoch's checkpoint draws what the uninterrupted run drew; they depend on
 * the number of workers, so runs are reproducible for a given count.
 */
export function workerStreamSeed(
  seed: number,
  epoch: number,
  worker: number,
  workers: number,
  stream: number,
): number {
  let hash = 0x811c9dc5;
  for (const value of [seed, epoch, worker, workers, stream]) {
    hash = Math.imul(hash ^ (value >>> 0), 0x01000193) >>> 0;
    hash = (hash ^ (hash >>> 15)) >>> 0;
  }
  return hash;
}

export type WorkerRequest =
  | { type: "setup"; setup: WorkerSetup }
  /** Replace the whole state (weights, optimizer, weight average) with checkpoint bytes. */
  | { type: "load"; checkpoint: Uint8Array }
  /** Reseed this worker's streams for the epoch, set its learning rate and augmentation (null: none). */
  | { type: "epoch"; epoch: number; learningRate: number; augmentation: AugmentRanges | null }
  /** Gradients for these training images, scaled to a batch of `batchSize`. */
  | { type: "gradients"; indices: Int32Array; batchSize: number }
  /** One optimizer step with the whole batch's gradients (and a weight-average update). */
  | { type: "apply"; gradients: Float32Array }
  /** The state as checkpoint bytes. */
  | { type: "state" }
  /** Loss and accuracy of these weights (all of the model's, in order) on validation batches. */
  | { type: "evaluate"; weights: Float32Array[]; fromBatch: number; toBatch: number }
  /**
   * Start a training-mode pass of these images through these weights, for
   * exact BatchNorm statistics; replies with the first BatchNorm layer's moments.
   */
  | { type: "statistics"; weights: Float32Array[]; pixels: Float32Array; dropoutSeed: number }
  /** Set the waiting BatchNorm layer's statistics (over all workers' images) and go on to the next. */
  | { type: "statistics-next"; mean: Float32Array; variance: Float32Array };

export type WorkerReply =
  | { type: "done" }
  | { type: "gradients"; gradients: Float32Array; lossSum: number; correct: number }
  | { type: "state"; checkpoint: Uint8Array }
  | { type: "evaluation"; lossSum: number; correct: number; count: number }
  /** One BatchNorm layer's moments over this worker's images (null: the pass is over). */
  | { type: "moments"; moments: ChannelMoments | null }
  | { type: "error"; message: string };
