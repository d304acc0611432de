/// <reference lib="deno.worker" />
/**
 * Worker side of perturbLevelsInWorker: receives the clean images, then
 * answers each "next" with the next perturbed level (its buffer transferred).
 */
import {
  familiesByName,
  type PerturbedLevel,
  perturbLevels,
  type WorkerRequest,
} from "./perturb.ts";

let levels: Generator<PerturbedLevel> | undefined;

self.onmessage = (event: MessageEvent<WorkerRequest | "next">) => {
  if (event.data !== "next") {
    const { clean, families, seed } = event.data;
    levels = perturbLevels(clean, familiesByName(families), seed);
    return;
  }
  try {
    const { value } = levels!.next();
    const transfer = value?.images ? [value.images.buffer] : [];
    self.postMessage(value, { transfer });
  } catch (error) {
    self.postMessage({ error: (error as Error).message });
  }
};
