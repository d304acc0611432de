import assert from "node:assert/strict";
import type { ModelRobustness } from "../robustness/evaluate.ts";
import { familyByName } from "../robustness/families.ts";
import { compareFamilies } from "../robustness/paired.ts";
import { holdsZero } from "../util/stats.ts";

const close = (actual: number, expected: number) =>
  assert.ok(Math.abs(actual - expected) < 1e-12, `${actual} is not ${expected}`);

/** A model known only by how many of each family's levels it gets each image right at. */
function model(levelsRight: Record<string, number[]>): ModelRobustness {
  return {
    clean: 1,
    clean_confidence: 1,
    families: {},
    levelsRight: Object.fromEntries(
      Object.entries(levelsRight).map(([family, counts]) => [family, Uint8Array.from(counts)]),
    ),
  };
}

Deno.test("robustness families compared image by image: exact mean differences, noise held at zero", () => {
  const rotation = familyByName("rotation")!; // 13 levels
  const brightness = familyByName("mnist_c/brightness")!, fog = familyByName("mnist_c/fog")!;
  const n = 400;
  const levels = rotation.levels.length;
  // a gets every image right at every level; b misses 100 images at all rotation levels,
  // and 40 under brightness; both miss the same 10 under fog.
  const a = model({
    rotation: new Array(n).fill(levels),
    "mnist_c/brightness": new Array(n).fill(1),
    "mnist_c/fog": Array.from({ length: n }, (_, i) => (i < 10 ? 0 : 1)),
  });
  const b = model({
    rotation: Array.from({ length: n }, (_, i) => (i % 4 === 0 ? 0 : levels)),
    "mnist_c/brightness": Array.from({ length: n }, (_, i) => (i % 10 === 0 ? 0 : 1)),
    "mnist_c/fog": Array.from({ length: n }, (_, i) => (i < 10 ? 0 : 1)),
  });
  const comparisons = compareFamilies({ a, b }, [rotation, brightness, fog], {
    seed: 3,
    resamples: 500,
  });
  const of = (family: string) => comparisons.find((c) => c.family === family)!;
  assert.deepEqual(comparisons.map((c) => [c.a, c.b, c.family]), [
    ["a", "b", "rotation"],
    ["a", "b", "mnist_c/brightness"],
    ["a", "b", "mnist_c/fog"],
    ["a", "b", "mnist_c"],
  ]);
  close(of("rotation").difference, 100 / 400);
  close(of("mnist_c/brightness").difference, 40 / 400);
  close(of("mnist_c/fog").difference, 0);
  // The MNIST-C mean weighs each corruption the same.
  close(of("mnist_c").difference, (40 / 400 + 0) / 2);
  assert.ok(!holdsZero(of("rotation").ci95) && of("rotation").ci95.low > 0.15);
  assert.deepEqual(of("mnist_c/fog").ci95, { low: 0, high: 0 });
  // The same inputs and seed give the same intervals.
  assert.deepEqual(
    compareFamilies({ a, b }, [rotation, brightness, fog], { seed: 3, resamples: 500 }),
    comparisons,
  );
});
