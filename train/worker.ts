/**
 * A data-parallel training worker: a Deno module worker (its own thread and
 * its own tfjs wasm backend) holding a replica of the model, the optimizer
 * and the weight average. For each step it computes the gradients of its
 * shard of the batch; the run adds up all workers' gradients and every
 * worker applies the same sum, so the replicas stay identical.
 */
/// <reference lib="deno.worker" />
// First, before the npm modules install handlers of their own.
import "./worker_errors.ts";
import { tf } from "../deps_tfjs.ts";
import { pixelsOf } from "../data/mnist.ts";
import { useEngine } from "../kernels/engine.ts";
import { buildArchitecture } from "../models/architectures.ts";
import { augmentBatch, type AugmentRanges } from "../transforms/augment.ts";
import { Random } from "../util/random.ts";
import { decodeCheckpoint, encodeReplica, type ReplicaState } from "./checkpoint.ts";
import { FlatAdam } from "./adam.ts";
import { StatisticsPass } from "./batch_norm_stats.ts";
import { evaluateBatches, shardGradients, teacherTargets } from "./steps.ts";
import { loadTeachers } from "./teachers.ts";
import { WeightAverage } from "./weight_average.ts";
import {
  type WorkerReply,
  type WorkerRequest,
  type WorkerSetup,
  workerStreamSeed,
} from "./worker_protocol.ts";

interface Replica {
  setup: WorkerSetup;
  model: tf.LayersModel;
  /** A second copy for evaluating weights sent by the run (built on first use). */
  evaluationModel?: tf.LayersModel;
  /** The BatchNorm statistics pass in progress on the evaluation copy. */
  statistics?: StatisticsPass;
  optimizer: FlatAdam;
  average?: WeightAverage;
  augmentRandom: Random;
  /** The current epoch's augmentation (null: none). */
  augmentation?: AugmentRanges | null;
  /** The run's teachers, this worker's copy (distillation). */
  teachers?: tf.LayersModel[];
  /**
   * This worker's gradients, in memory shared with the run: the reply passes
   * the array without copying it, and the run reads it before the next request.
   */
  gradients?: Float32Array;
}

let replica: Replica | undefined;

function ready(): Replica {
  if (!replica) throw new Error("the worker got a request before its setup");
  return replica;
}

async function handle(request: WorkerRequest): Promise<WorkerReply> {
  switch (request.type) {
    case "setup": {
      await useEngine(request.setup.engine);
      const model = buildArchitecture(request.setup.architecture, request.setup.name);
      const distillation = request.setup.distillation;
      replica = {
        setup: request.setup,
        model,
        optimizer: FlatAdam.forModel(model, 1e-3),
        augmentRandom: new Random(0),
        ...(distillation ? { teachers: await loadTeachers(distillation.teachers) } : {}),
      };
      return { type: "done" };
    }
    case "load": {
      const { model, optimizer } = ready();
      const checkpoint = decodeCheckpoint<ReplicaState>(
        request.checkpoint,
        "sent to a training worker",
      );
      model.setWeights(checkpoint.weights);
      await optimizer.setWeights(checkpoint.optimizer);
      const { averageDecay, averageUpdates = 0 } = checkpoint.state;
      if (averageDecay > 0) {
        replica!.average ??= new WeightAverage(model, averageDecay);
        replica!.average.load(checkpoint.averages, averageUpdates);
      }
      tf.dispose([
        ...checkpoint.weights,
        ...checkpoint.averages,
        ...checkpoint.optimizer.map((named) => named.tensor),
      ]);
      return { type: "done" };
    }
    case "epoch": {
      const current = ready();
      const { seed, index, workers } = current.setup;
      // Dropout masks come from Math.random (see seedMathRandom in util/random.ts).
      const dropoutRandom = new Random(workerStreamSeed(seed, request.epoch, index, workers, 0));
      Math.random = () => dropoutRandom.next();
      current.augmentRandom = new Random(workerStreamSeed(seed, request.epoch, index, workers, 1));
      current.optimizer.learningRate = request.learningRate;
      current.augmentation = request.augmentation;
      return { type: "done" };
    }
    case "gradients": {
      const current = ready();
      const { setup, model, augmentRandom, optimizer } = current;
      const { indices, batchSize } = request;
      let pixels = pixelsOf(setup.split, indices);
      if (current.augmentation) pixels = augmentBatch(pixels, augmentRandom, current.augmentation);
      const labels = Uint8Array.from(indices, (i) => setup.split.labels[i]);
      current.gradients ??= new Float32Array(new SharedArrayBuffer(optimizer.size * 4));
      const soft = teacherTargets(current.teachers, setup.distillation?.weight ?? 0, pixels);
      const { gradients, lossSum, correct } = shardGradients(
        model,
        pixels,
        labels,
        batchSize,
        current.gradients,
        soft,
      );
      return { type: "gradients", gradients, lossSum, correct };
    }
    case "apply": {
      const { optimizer, average } = ready();
      optimizer.apply(request.gradients);
      average?.update();
      return { type: "done" };
    }
    case "state": {
      const { model, optimizer, average } = ready();
      return { type: "state", checkpoint: await encodeReplica(model, optimizer, average) };
    }
    case "evaluate": {
      const { setup } = ready();
      if (!setup.validation) throw new Error("the worker was given no validation split");
      const model = evaluationCopy(request.weights);
      const sums = evaluateBatches(model, setup.validation, request.fromBatch, request.toBatch);
      return { type: "evaluation", ...sums };
    }
    case "statistics": {
      const current = ready();
      current.statistics?.dispose();
      const model = evaluationCopy(request.weights);
      current.statistics = new StatisticsPass(
        model,
        request.pixels,
        new Random(request.dropoutSeed),
      );
      return { type: "moments", moments: nextMoments(current) };
    }
    case "statistics-next": {
      const current = ready();
      if (!current.statistics) {
        throw new Error("the worker has no BatchNorm statistics pass running");
      }
      current.statistics.resume(request);
      return { type: "moments", moments: nextMoments(current) };
    }
  }
}

/** The evaluation copy of the model, holding `weights` (every weight, in order). */
function evaluationCopy(weights: Float32Array[]): tf.LayersModel {
  const current = ready();
  current.evaluationModel ??= buildArchitecture(current.setup.architecture, current.setup.name);
  const model = current.evaluationModel;
  const tensors = model.getWeights().map((weight, i) => tf.tensor(weights[i], weight.shape));
  model.setWeights(tensors);
  tf.dispose(tensors);
  return model;
}

function nextMoments(current: Replica) {
  const moments = current.statistics!.next();
  if (!moments) current.statistics = undefined;
  return moments;
}

// Requests are handled strictly one after another, in arrival order.
let queue = Promise.resolve();
self.onmessage = (event: MessageEvent<WorkerRequest>) => {
  queue = queue.then(async () => {
    let reply: WorkerReply;
    try {
      reply = await handle(event.data);
    } catch (error) {
      reply = { type: "error", message: (error as Error).message };
    }
    // Gradients are in shared memory, which is passed, not transferred.
    const transfer = reply.type === "state" ? [reply.checkpoint.buffer] : [];
    self.postMessage(reply, transfer as Transferable[]);
  });
};
