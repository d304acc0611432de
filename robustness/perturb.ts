/**
 * The perturbed test sets, level by level: generated in this thread, or in a
 * worker thread one level ahead, so that perturbing the next level overlaps
 * with ONNX Runtime classifying the current one.
 */
import { Random } from "../util/random.ts";
import { type Family, familyByName, perturbBatch } from "./families.ts";

export interface PerturbedLevel {
  family: string;
  level: number;
  /** null for a family's identity level: the clean images. */
  images: Float32Array | null;
}

/** A seed for one family and level, independent of which other families run. */
export function levelSeed(seed: number, family: string, levelIndex: number): number {
  let hash = (seed ^ 0x9e3779b9) >>> 0;
  for (const char of `${family}#${levelIndex}`) {
    hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193) >>> 0;
  }
  return hash;
}

/** Every level of every family, in order (index −1 seeds a family's shared preparation). */
export function* perturbLevels(
  clean: Float32Array,
  families: Family[],
  seed: number,
): Generator<PerturbedLevel> {
  for (const family of families) {
    const prepared = family.prepare?.(clean, new Random(levelSeed(seed, family.name, -1)));
    for (const [index, level] of family.levels.entries()) {
      yield {
        family: family.name,
        level,
        images: level === family.identity ? null : perturbBatch(
          family,
          clean,
          level,
          new Random(levelSeed(seed, family.name, index)),
          prepared,
        ),
      };
    }
  }
}

export interface WorkerRequest {
  clean: Float32Array;
  families: string[];
  seed: number;
}

/** perturbLevels run in a worker thread, one level ahead of the consumer. */
export async function* perturbLevelsInWorker(
  clean: Float32Array,
  families: Family[],
  seed: number,
): AsyncGenerator<PerturbedLevel> {
  const worker = new Worker(new URL("./perturb_worker.ts", import.meta.url).href, {
    type: "module",
  });
  const next = () =>
    new Promise<PerturbedLevel | { error: string }>((resolve, reject) => {
      worker.onmessage = (event) => resolve(event.data);
      worker.onerror = (event) => {
        event.preventDefault();
        reject(new Error(`The perturbation worker failed: ${event.message}`));
      };
      worker.postMessage("next");
    });
  try {
    const request: WorkerRequest = { clean, families: families.map((f) => f.name), seed };
    worker.postMessage(request);
    const total = families.reduce((sum, family) => sum + family.levels.length, 0);
    let pending = next();
    for (let i = 0; i < total; i++) {
      const message = await pending;
      if ("error" in message) throw new Error(message.error);
      if (i + 1 < total) pending = next();
      yield message;
    }
  } finally {
    worker.terminate();
  }
}

/** Looks up families by name (the worker receives names, not functions). */
export function familiesByName(names: string[]): Family[] {
  return names.map((name) => {
    const family = familyByName(name);
    if (!family) throw new Error(`Unknown family "${name}".`);
    return family;
  });
}
