import assert from "node:assert/strict";
import { inverseAffine, warpAffine, warpBatch } from "../transforms/affine.ts";
import {
  augmentBatch,
  MILD_AUGMENTATION,
  MILD_MIXED_AUGMENTATION,
  randomAffine,
  TRAINING_AUGMENTATION,
} from "../transforms/augment.ts";
import { Random } from "../util/random.ts";

const SIZE = 28;

function randomImage(seed: number, count = 1): Float32Array {
  const random = new Random(seed);
  return Float32Array.from({ length: count * SIZE * SIZE }, () => random.next());
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

Deno.test("zero parameters give the identity", () => {
  const image = randomImage(1, 2);
  assert.ok(maxDifference(warpBatch(image, {}), image) < 1e-6);
  assert.ok(
    maxDifference(warpBatch(image, { rotation: 0, zoom: 1, shear: 0, shiftX: 0 }), image) < 1e-6,
  );
  const noRanges = augmentBatch(image, new Random(3), { rotation: 0, translation: 0, zoom: 0 });
  assert.ok(maxDifference(noRanges, image) < 1e-6);
});

Deno.test("a known shift moves a known pixel", () => {
  const image = new Float32Array(SIZE * SIZE);
  image[10 * SIZE + 5] = 1; // row 10, column 5
  const moved = warpBatch(image, { shiftX: 3, shiftY: -2 });
  assert.equal(moved[8 * SIZE + 8], 1);
  assert.equal(moved.reduce((a, b) => a + b), 1);
});

Deno.test("rotating by 90 degrees is the exact pixel rotation, counter-clockwise on screen", () => {
  const image = randomImage(4);
  const rotated = warpBatch(image, { rotation: Math.PI / 2 });
  // Counter-clockwise on screen: the right edge moves to the top, so
  // out[y][x] = in[x][size-1-y].
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      assert.ok(Math.abs(rotated[y * SIZE + x] - image[x * SIZE + (SIZE - 1 - y)]) < 1e-5);
    }
  }
});

Deno.test("zoom about the centre keeps the centre and scales distances", () => {
  const image = new Float32Array(SIZE * SIZE);
  image[13 * SIZE + 13] = 1;
  const matrix = inverseAffine({ zoom: 2 });
  // The output point at distance 2 from the centre samples distance 1.
  const [a, b, c] = matrix;
  assert.ok(Math.abs(a * 15.5 + b * 13.5 + c - 14.5) < 1e-9);
  const out = new Float32Array(SIZE * SIZE);
  warpAffine(image, 0, out, 0, matrix);
  assert.ok(out[13 * SIZE + 13] > 0);
});

Deno.test("augmentation is random per image, seeded, and leaves its input alone", () => {
  const one = randomImage(5);
  const batch = new Float32Array(3 * SIZE * SIZE);
  for (let i = 0; i < 3; i++) batch.set(one, i * SIZE * SIZE);
  const copy = batch.slice();
  const first = augmentBatch(batch, new Random(9), TRAINING_AUGMENTATION);
  const again = augmentBatch(batch, new Random(9), TRAINING_AUGMENTATION);
  assert.deepEqual(first, again);
  assert.deepEqual(batch, copy);
  const images = [0, 1, 2].map((i) => first.subarray(i * SIZE * SIZE, (i + 1) * SIZE * SIZE));
  assert.ok(maxDifference(images[0], images[1]) > 0.01);
  assert.ok(maxDifference(images[0], one) > 0.01);
  for (const value of first) assert.ok(value >= 0 && value <= 1);
});

Deno.test("a wide share rotates that share of the images over the wider range, and leaves other ranges' draws alone", () => {
  const degrees = (ranges: typeof MILD_AUGMENTATION, seed: number, n: number) => {
    const random = new Random(seed);
    return Array.from({ length: n }, () => randomAffine(random, ranges).rotation! * 180 / Math.PI);
  };
  const mixed = degrees(MILD_MIXED_AUGMENTATION, 7, 4000);
  const wide = MILD_MIXED_AUGMENTATION.wide!;
  const [narrowLimit, wideLimit] = [MILD_AUGMENTATION.rotation * 360, wide.rotation * 360];
  assert.ok(mixed.every((d) => Math.abs(d) <= wideLimit));
  // Beyond the narrow range: the wide share times the wide range's part outside it.
  const expected = wide.share * (1 - narrowLimit / wideLimit);
  const beyond = mixed.filter((d) => Math.abs(d) > narrowLimit).length / mixed.length;
  assert.ok(Math.abs(beyond - expected) < 0.03, `${beyond} of rotations beyond ${narrowLimit}°`);
  // A range without a wide share draws nothing more: its rotations stay within the narrow limit
  // and follow the seed's stream as a range of the same limit always did.
  const mild = degrees(MILD_AUGMENTATION, 7, 200);
  assert.ok(mild.every((d) => Math.abs(d) <= narrowLimit));
  assert.deepEqual(mild, degrees({ ...MILD_MIXED_AUGMENTATION, wide: undefined }, 7, 200));
  const mixedStart = mixed.slice(0, mild.length);
  assert.ok(mild.some((d, i) => d !== mixedStart[i]));
});
