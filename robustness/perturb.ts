/**
 * The perturbed test sets, level by level, generated as they are needed.
 *
 * Generating the next level in a worker thread while ONNX Runtime classifies
 * the current one was measured slower on two cores (117 to 127 s against
 * 107 s for the default suite): ONNX Runtime's two threads stall whenever a
 * core is taken.
 */
import { Random } from "../util/random.ts";
import { type Family, perturbBatch } from "./families.ts";

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
