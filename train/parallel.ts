/**
 * Data-parallel training over module workers, one per core: each step's
 * batch is cut into one contiguous shard per worker, the workers' gradients
 * are added up here in a fixed order, and every worker applies that sum with
 * its own identical Adam, so the replicas never drift apart. Gradients and
 * their sum travel in shared memory (a SharedArrayBuffer each), not copied;
 * the request order keeps writer and reader apart (see `gradients`). Dropout masks
 * and augmentation are drawn per shard; BatchNorm normalises each shard with
 * its own statistics (as multi-GPU Keras does without sync-BN).
 */
import { activeEngine, type EngineName } from "../kernels/engine.ts";
import {
  type WorkerReply,
  type WorkerRequest,
  type WorkerSetup,
  workerStreamSeed,
} from "./worker_protocol.ts";
import { type ChannelMoments, combineMoments, type LayerStatistics } from "./batch_norm_stats.ts";
import { combineEvaluations, type Evaluation } from "./steps.ts";
import type { AugmentRanges } from "../transforms/augment.ts";

export class WorkerFailure extends Error {}

export interface WorkerPoolOptions extends Omit<WorkerSetup, "index" | "workers" | "engine"> {
  /** The workers' engine (default: the one this thread started, see kernels/engine.ts). */
  engine?: EngineName;
  workers: number;
  /** The worker module (tests swap in a faulty one). */
  workerUrl?: URL;
  /** A worker that has not answered a request after this long is taken for hung. */
  replyTimeoutMs?: number;
}

export interface SummedGradients {
  gradients: Float32Array;
  lossSum: number;
  correct: number;
  count: number;
}

const DEFAULT_WORKER_URL = new URL("./worker.ts", import.meta.url);
const DEFAULT_REPLY_TIMEOUT_MS = 300_000;
const SETUP_TIMEOUT_MS = 60_000;

interface Pending {
  resolve(reply: WorkerReply): void;
  reject(error: WorkerFailure): void;
  timer: ReturnType<typeof setTimeout>;
}

/** Training workers and the request/reply bookkeeping around them. */
export class WorkerPool {
  readonly size: number;
  #workers: Worker[];
  #pending: Pending[][];
  #failure: WorkerFailure | undefined;
  #timeoutMs: number;
  /** The summed gradients, shared with the workers, which read it in "apply". */
  #sum: Float32Array | undefined;
  /** The last "apply" request's replies: the sum may be rewritten once every worker has answered. */
  #applied: Promise<unknown> = Promise.resolve();

  private constructor(options: WorkerPoolOptions) {
    this.size = options.workers;
    this.#timeoutMs = options.replyTimeoutMs ?? DEFAULT_REPLY_TIMEOUT_MS;
    this.#pending = Array.from({ length: this.size }, () => []);
    this.#workers = Array.from({ length: this.size }, (_, index) => {
      const worker = new Worker(options.workerUrl ?? DEFAULT_WORKER_URL, { type: "module" });
      worker.onmessage = (event: MessageEvent<WorkerReply>) => this.#reply(index, event.data);
      worker.onerror = (event: ErrorEvent) => {
        event.preventDefault();
        this.#fail(index, event.message.replace(/^Uncaught (\w*Error: )?/, ""));
      };
      return worker;
    });
  }

  /** Starts the workers and gives each the training data. */
  static async start(options: WorkerPoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(options);
    try {
      await pool.#all((index) => ({
        type: "setup",
        setup: {
          name: options.name,
          architecture: options.architecture,
          seed: options.seed,
          index,
          workers: options.workers,
          split: options.split,
          engine: options.engine ?? activeEngine(),
          validation: options.validation,
          distillation: options.distillation,
        },
      }));
    } catch (error) {
      pool.close();
      throw error;
    }
    return pool;
  }

  /** Gives every worker the same state (checkpoint bytes). */
  async load(checkpoint: Uint8Array): Promise<void> {
    await this.#all(() => ({ type: "load", checkpoint }));
  }

  async beginEpoch(
    epoch: number,
    learningRate: number,
    augmentation: AugmentRanges | null,
  ): Promise<void> {
    await this.#all(() => ({ type: "epoch", epoch, learningRate, augmentation }));
  }

  /**
   * The gradient of the batch's mean loss, each worker taking a contiguous
   * shard. The returned gradients are shared memory that the next call
   * overwrites. A worker writes its shared gradients only while answering
   * "gradients", and the sum is rewritten only after every worker has answered
   * the last "apply" (which it handles before any later "gradients").
   */
  async gradients(indices: ArrayLike<number>): Promise<SummedGradients> {
    const batchSize = indices.length;
    const shards = shardBounds(batchSize, this.size);
    const replies = await Promise.all(
      shards.map(([start, end], index) =>
        end > start
          ? this.#request(index, {
            type: "gradients",
            indices: Int32Array.from(Array.prototype.slice.call(indices, start, end)),
            batchSize,
          })
          : undefined
      ),
    );
    const parts = replies.filter((reply): reply is Extract<WorkerReply, { type: "gradients" }> =>
      reply?.type === "gradients"
    );
    if (parts.length === 0) throw new Error("A step needs at least one image.");
    await this.#applied;
    const size = parts[0].gradients.length;
    if (this.#sum?.length !== size) this.#sum = new Float32Array(new SharedArrayBuffer(size * 4));
    const sum = this.#sum;
    sum.set(parts[0].gradients);
    let lossSum = parts[0].lossSum, correct = parts[0].correct;
    for (const part of parts.slice(1)) {
      const gradients = part.gradients;
      for (let i = 0; i < size; i++) sum[i] += gradients[i];
      lossSum += part.lossSum;
      correct += part.correct;
    }
    return { gradients: sum, lossSum, correct, count: batchSize };
  }

  /**
   * Every worker applies the summed gradients. Not awaited by `step`: the
   * workers handle requests in order, so the next step's gradients queue
   * behind it, and a failure surfaces at the next request.
   */
  async apply(gradients: Float32Array): Promise<void> {
    const applied = this.#all(() => ({ type: "apply", gradients }));
    this.#applied = applied.catch(() => {});
    await applied;
  }

  async step(indices: ArrayLike<number>): Promise<{ loss: number; correct: number }> {
    const { gradients, lossSum, correct, count } = await this.gradients(indices);
    this.apply(gradients).catch(() => {});
    return { loss: lossSum / count, correct };
  }

  /**
   * Loss and accuracy of `weights` (every weight of the model, in order) on
   * the validation split the workers were given, each worker taking a run
   * of whole batches; the sums are added in worker order, so the result is
   * the single-thread evaluation's up to float rounding.
   */
  async evaluate(weights: Float32Array[], batches: number): Promise<Evaluation> {
    const replies = await Promise.all(
      shardBounds(batches, this.size).map(([fromBatch, toBatch], index) =>
        toBatch > fromBatch
          ? this.#request(index, { type: "evaluate", weights, fromBatch, toBatch })
          : undefined
      ),
    );
    return combineEvaluations(
      replies.filter((r): r is Extract<WorkerReply, { type: "evaluation" }> =>
        r?.type === "evaluation"
      ),
    );
  }

  /**
   * Exact BatchNorm statistics of `weights` (every weight of the model, in
   * order) over `pixels` (count × 784), each worker taking a contiguous share
   * of the images: layer by layer, the workers' moments are combined here
   * and sent back before any goes on. Returns each BatchNorm layer's moving
   * mean and variance, in layer order.
   */
  async batchNormStatistics(
    weights: Float32Array[],
    pixels: Float32Array,
    dropoutSeed: number,
  ): Promise<LayerStatistics[]> {
    const shares = shardBounds(pixels.length / 784, this.size).filter(([start, end]) =>
      end > start
    );
    const moments = (replies: WorkerReply[]) =>
      replies.map((reply) => (reply as Extract<WorkerReply, { type: "moments" }>).moments);
    let parts = moments(
      await Promise.all(shares.map(([start, end], index) =>
        this.#request(index, {
          type: "statistics",
          weights,
          pixels: pixels.slice(start * 784, end * 784),
          dropoutSeed: workerStreamSeed(dropoutSeed, 0, index, this.size, 2),
        })
      )),
    );
    const layers: LayerStatistics[] = [];
    while (parts.every((part) => part !== null)) {
      const { mean, variance } = combineMoments(parts as ChannelMoments[]);
      layers.push({ mean, variance });
      parts = moments(
        await Promise.all(
          shares.map((_, index) =>
            this.#request(index, { type: "statistics-next", mean, variance })
          ),
        ),
      );
    }
    if (parts.some((part) => part !== null)) {
      throw new WorkerFailure("Workers disagree on the model's BatchNorm layers.");
    }
    return layers;
  }

  /** Each worker's state, as checkpoint bytes, in worker order. */
  async states(): Promise<Uint8Array[]> {
    const replies = await this.#all(() => ({ type: "state" }));
    return replies.map((reply) => (reply as Extract<WorkerReply, { type: "state" }>).checkpoint);
  }

  /** Stops every worker (idempotent). */
  close(): void {
    this.#stop(new WorkerFailure("The training workers were stopped."));
  }

  async #all(request: (index: number) => WorkerRequest): Promise<WorkerReply[]> {
    return await Promise.all(this.#workers.map((_, index) => this.#request(index, request(index))));
  }

  #request(index: number, request: WorkerRequest): Promise<WorkerReply> {
    if (this.#failure) return Promise.reject(this.#failure);
    // Setup starts a thread and its tfjs backend, which a loaded machine may
    // take a while to do: it gets at least SETUP_TIMEOUT_MS.
    const timeoutMs = request.type === "setup"
      ? Math.max(this.#timeoutMs, SETUP_TIMEOUT_MS)
      : this.#timeoutMs;
    return new Promise<WorkerReply>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          this.#fail(
            index,
            `no reply to "${request.type}" within ${Math.round(timeoutMs / 1000)} s`,
          ),
        timeoutMs,
      );
      this.#pending[index].push({ resolve, reject, timer });
      this.#workers[index].postMessage(request);
    });
  }

  #reply(index: number, reply: WorkerReply): void {
    if (reply.type === "error") {
      this.#fail(index, reply.message);
      return;
    }
    const pending = this.#pending[index].shift();
    if (!pending) return;
    clearTimeout(pending.timer);
    pending.resolve(reply);
  }

  #fail(index: number, why: string): void {
    this.#stop(
      new WorkerFailure(
        `Training worker ${index + 1} of ${this.size} failed: ${why.replace(/\.$/, "")}.`,
      ),
    );
  }

  /** Terminates every worker and rejects what is pending with the first failure. */
  #stop(failure: WorkerFailure): void {
    if (this.#failure) return;
    this.#failure = failure;
    for (const worker of this.#workers) worker.terminate();
    for (const queue of this.#pending) {
      for (const pending of queue.splice(0)) {
        clearTimeout(pending.timer);
        pending.reject(failure);
      }
    }
  }
}

/** [start, end) of each worker's shard of a batch: contiguous, sizes differing by at most one. */
export function shardBounds(batchSize: number, workers: number): Array<[number, number]> {
  return Array.from({ length: workers }, (_, index) => [
    Math.floor((index * batchSize) / workers),
    Math.floor(((index + 1) * batchSize) / workers),
  ]);
}
