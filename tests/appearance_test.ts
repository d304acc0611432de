/**
 * The robust model's appearance jitter: each family does what it says, the
 * output stays an image, and the improved model's geometry-only stream is
 * untouched by the new options.
 */
import assert from "node:assert/strict";
import {
  type AppearanceJitter,
  jitterAppearance,
  morph,
  NO_JITTER,
  smoothField,
} from "../transforms/appearance.ts";
import { drawPenMark } from "../transforms/pen_marks.ts";
import { augmentBatch, ROBUST_AUGMENTATION, TRAINING_AUGMENTATION } from "../transforms/augment.ts";
import { Random } from "../util/random.ts";

const PIXELS = 784;

/** A 28×28 image with a filled square from (left, top) of side `side`. */
function square(left: number, top: number, side: number, value = 1): Float32Array {
  const image = new Float32Array(PIXELS);
  for (let y = top; y < top + side; y++) {
    for (let x = left; x < left + side; x++) image[y * 28 + x] = value;
  }
  return image;
}

const sum = (image: Float32Array) => image.reduce((a, b) => a + b, 0);

/** Only one family on, at `strength`, applied to every image. */
function only(family: keyof AppearanceJitter, strength: number | boolean): AppearanceJitter {
  return { ...NO_JITTER, cleanShare: 0, chain: 1, [family]: strength };
}

Deno.test("3x3 dilation grows a square by a pixel each side; erosion shrinks it", () => {
  const image = square(10, 10, 6);
  assert.equal(sum(morph(image, "dilate")), 8 * 8);
  assert.equal(sum(morph(image, "erode")), 4 * 4);
  // A frame edge counts as background: a square in the corner erodes from that side too.
  assert.equal(sum(morph(square(0, 0, 4), "erode")), 2 * 2);
});

Deno.test("smooth fields lie in [0, 1] and change slowly between neighbours", () => {
  const field = smoothField(new Random(4));
  let steepest = 0;
  for (let y = 0; y < 28; y++) {
    for (let x = 1; x < 28; x++) {
      steepest = Math.max(steepest, Math.abs(field[y * 28 + x] - field[y * 28 + x - 1]));
    }
  }
  assert.ok(field.every((v) => v >= 0 && v <= 1));
  // Knots 9 pixels apart: a step between neighbours is at most 1/9.
  assert.ok(steepest <= 1 / 9 + 1e-6, `steepest step ${steepest}`);
});

Deno.test("each family changes the image the way it names, within [0, 1]", () => {
  const digit = square(9, 9, 10);
  const apply = (family: keyof AppearanceJitter, strength: number | boolean, seed = 1) =>
    jitterAppearance(digit, new Random(seed), only(family, strength));
  const background = (image: Float32Array) => image[0];
  // Brightness lifts the background, uneven light lifts it by different amounts.
  assert.ok(background(apply("brightness", 0.6)) > 0);
  const lit = apply("illumination", 0.8);
  const paper = Array.from(lit).filter((_, i) => digit[i] === 0);
  assert.ok(Math.max(...paper) - Math.min(...paper) > 0, "uneven light should vary over the paper");
  // Grey ink lowers the stroke and leaves the background black.
  const grey = apply("contrast", 0.3);
  assert.ok(grey[14 * 28 + 14] < 1 && grey[14 * 28 + 14] >= 0.3 && background(grey) === 0);
  // Blur spreads ink beyond the square's edge.
  assert.ok(apply("blur", 2)[14 * 28 + 8] > 0);
  // Noise touches the background; salt-and-pepper sets pixels to exactly 0 or 1.
  assert.ok(apply("noise", 0.5).some((v, i) => digit[i] === 0 && v > 0));
  // Pen: thicker, thinner or outlined, so the ink's area changes.
  assert.notEqual(sum(apply("stroke", true)), sum(digit));
  for (
    const image of [grey, lit, apply("noise", 0.5), apply("impulse", 0.15), apply("erasing", 0.5)]
  ) {
    assert.equal(image.length, PIXELS);
    assert.ok(image.every((v) => v >= 0 && v <= 1));
  }
  // The input is never modified.
  assert.deepEqual(digit, square(9, 9, 10));
});

Deno.test("a pen mark inks its path with soft edges, dashes leave gaps, and ink already there stays", () => {
  const blank = new Float32Array(PIXELS);
  const row = (image: Float32Array, y: number) => Array.from(image.subarray(y * 28, y * 28 + 28));
  const solid = drawPenMark(blank, { points: [[3, 14], [24, 14]], width: 2, ink: 0.8, dash: 0 });
  assert.deepEqual(row(solid, 14).slice(3, 25), new Array(22).fill(0.8).map(Math.fround));
  assert.equal(solid[14 * 28 + 1], 0, "nothing beyond the end's soft edge");
  // Width 2: the core covers the row; rows one pixel away get half the ink, two away none.
  assert.ok(row(solid, 13).slice(3, 25).every((v) => Math.abs(v - 0.4) < 1e-6));
  assert.ok(row(solid, 16).every((v) => v === 0));
  assert.ok(blank.every((v) => v === 0), "the input is never modified");
  const dashed = drawPenMark(blank, { points: [[3, 14], [24, 14]], width: 1, ink: 1, dash: 6 });
  const line = row(dashed, 14).slice(3, 25);
  assert.ok(line.includes(0) && line.includes(1), `dashes: ${line}`);
  // The brighter value wins: a mark crossing a full-ink square leaves it at 1.
  const digit = square(9, 9, 10);
  const crossed = drawPenMark(digit, { points: [[0, 0], [27, 27]], width: 2, ink: 0.5, dash: 0 });
  assert.ok(Array.from(digit).every((v, i) => v === 0 || crossed[i] === 1));
  assert.ok(crossed[2 * 28 + 2] > 0);
});

Deno.test("the pen-marks family adds ink over the background and removes none", () => {
  const digit = square(9, 9, 10);
  for (let seed = 1; seed <= 20; seed++) {
    const marked = jitterAppearance(digit, new Random(seed), only("marks", 3));
    assert.ok(marked.some((v, i) => digit[i] === 0 && v > 0), `seed ${seed} drew nothing`);
    assert.ok(marked.every((v, i) => v >= digit[i] && v <= 1), `seed ${seed} removed ink`);
  }
});

Deno.test("clean share 1 and the empty jitter leave images as they are", () => {
  const digit = square(5, 5, 8);
  assert.equal(jitterAppearance(digit, new Random(1), NO_JITTER), digit);
  const everything = { ...ROBUST_AUGMENTATION.appearance!, cleanShare: 1 };
  assert.equal(jitterAppearance(digit, new Random(1), everything), digit);
});

Deno.test("robust augmentation is seeded; the improved model's stream is unchanged by the new options", () => {
  const batch = new Float32Array(8 * PIXELS);
  for (let i = 0; i < 8; i++) batch.set(square(6 + i, 8, 10), i * PIXELS);
  const robust = augmentBatch(batch, new Random(3), ROBUST_AUGMENTATION);
  assert.deepEqual(augmentBatch(batch, new Random(3), ROBUST_AUGMENTATION), robust);
  assert.ok(robust.every((v) => v >= 0 && v <= 1));
  // Shear 0 and no appearance draw nothing extra: identical to the geometry-only ranges.
  assert.deepEqual(
    augmentBatch(batch, new Random(5), { ...TRAINING_AUGMENTATION, shear: 0 }),
    augmentBatch(batch, new Random(5), TRAINING_AUGMENTATION),
  );
  assert.notDeepEqual(robust, augmentBatch(batch, new Random(3), TRAINING_AUGMENTATION));
});
