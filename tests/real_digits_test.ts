/**
 * Other people's digits through the deploy path: hard-but-real captures of
 * MNIST test digits are read and never refused, image files of MNIST digits
 * come back as MNIST's own pixels, and real USPS digits (training split: the
 * test split is read only by eval:handwriting) lose nothing to preprocessing.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadTestSet, subset } from "../data/mnist.ts";
import { loadUspsTrain, type UspsSplit } from "../data/usps.ts";
import { sharp } from "../deps.ts";
import { argmaxRows, OnnxClassifier } from "../infer/classifier.ts";
import { decodeGray } from "../infer/images.ts";
import { toMnist } from "../infer/preprocess.ts";
import { captureCases, inkBounds, SCAN_SIDES } from "../robustness/capture_cases.ts";
import {
  digitShape,
  mnistDigits,
  scoreTwoPaths,
  shapeBreakdown,
  uspsDigits,
  writeDigitFiles,
} from "../robustness/transfer.ts";
import { tempDir } from "./temp_dir.ts";

const MODELS = new URL("../results/models/", import.meta.url).pathname;

async function robust(): Promise<OnnxClassifier> {
  return await OnnxClassifier.load(join(MODELS, "robust.onnx"), { threads: 1 });
}

function digitAt(images: Uint8Array, index: number): Float32Array {
  return Float32Array.from(images.subarray(index * 784, (index + 1) * 784), (v) => v / 255);
}

Deno.test("capture cases are what they name: tight crops touch the edges, scans have their size", async () => {
  const test = await loadTestSet();
  const digit = digitAt(test.images, 0);
  const cases = Object.fromEntries(captureCases(digit).map(({ kind, image }) => [kind, image]));
  const bounds = inkBounds(digit);
  const tight = cases["tight crop"];
  assert.deepEqual([tight.width, tight.height], [bounds.width, bounds.height]);
  const inked = (x: number, y: number) => tight.data[y * tight.width + x] < 255;
  const column = (x: number) => Array.from({ length: tight.height }, (_, y) => inked(x, y));
  const row = (y: number) => Array.from({ length: tight.width }, (_, x) => inked(x, y));
  for (const edge of [column(0), column(tight.width - 1), row(0), row(tight.height - 1)]) {
    assert.ok(edge.some(Boolean), "the tight crop's ink touches every edge");
  }
  for (const side of SCAN_SIDES) {
    assert.equal(cases[`${side} px scan`].width, side);
    assert.equal(cases[`${side} px scan enlarged, blurred`].width, 4 * side);
  }
  // Light on dark: the paper is black.
  assert.equal(cases["light on dark"].data[0], 0);
  assert.ok(cases["faint pencil"].data.every((v) => v >= 205));
});

Deno.test("hard-but-real captures of MNIST test digits: none refused, each kind read", async () => {
  const test = await loadTestSet();
  const classifier = await robust();
  try {
    const byKind = new Map<string, { pixels: Float32Array[]; labels: number[] }>();
    const digits = 40;
    for (let index = 0; index < digits; index++) {
      for (const { kind, image } of captureCases(digitAt(test.images, index))) {
        const entry = byKind.get(kind) ?? { pixels: [], labels: [] };
        byKind.set(kind, entry);
        // toMnist throws for a refused image: none may be.
        entry.pixels.push(toMnist(image));
        entry.labels.push(test.labels[index]);
      }
    }
    let right = 0, total = 0;
    for (const [kind, { pixels, labels }] of byKind) {
      const batch = new Float32Array(pixels.length * 784);
      pixels.forEach((p, i) => batch.set(p, i * 784));
      const answers = argmaxRows(await classifier.predict(batch));
      const correct = labels.filter((label, i) => answers[i] === label).length;
      // The worst kind (an 8-px scan enlarged and blurred) reads about 95% on 300 digits.
      assert.ok(correct >= 0.85 * digits, `${kind}: ${correct} of ${digits}`);
      right += correct;
      total += labels.length;
    }
    assert.ok(right >= 0.97 * total, `${right} of ${total} captures read`);
  } finally {
    await classifier.release();
  }
});

Deno.test("an MNIST digit saved as an image comes back as MNIST's own pixels", async () => {
  const test = await loadTestSet();
  const count = 200;
  let worst = 0, total = 0, samePlace = 0;
  for (let index = 0; index < count; index++) {
    const digit = digitAt(test.images, index);
    const bytes = test.images.subarray(index * 784, (index + 1) * 784).map((v) => 255 - v);
    const png = await sharp(bytes, { raw: { width: 28, height: 28, channels: 1 } }).png()
      .toBuffer();
    const out = toMnist(await decodeGray(new Uint8Array(png)));
    const difference = out.reduce((sum, v, i) => sum + Math.abs(v - digit[i]), 0) / 784;
    worst = Math.max(worst, difference);
    total += difference;
    // Not moved, not rescaled: ink only where MNIST has ink, and all of MNIST's visible ink there.
    if (out.every((v, i) => (v > 0 ? digit[i] > 0 : digit[i] <= 0.06))) samePlace++;
  }
  // The rest differ by stroke saturation (soft digits' haze set to 0), not by place or size.
  assert.ok(samePlace >= 0.8 * count, `${samePlace} of ${count} in the same place`);
  assert.ok(total / count < 0.01, `mean absolute difference ${total / count}`);
  assert.ok(worst < 0.1, `largest mean absolute difference ${worst}`);
});

function firstDigits(split: UspsSplit, count: number): UspsSplit {
  return {
    ink: split.ink.slice(0, count * 256),
    labels: split.labels.slice(0, count),
    count,
  };
}

Deno.test("USPS digits as files: none refused, as accurate as the model alone (training split)", async () => {
  await using temp = await tempDir();
  const set = uspsDigits(firstDigits(await loadUspsTrain(), 400));
  const files = await writeDigitFiles(set, temp.path);
  assert.match(files[7], /\/\d-usps-007\.png$/);
  const classifier = await robust();
  try {
    const score = await scoreTwoPaths(classifier, set, files);
    assert.equal(score.deploy.refused, 0);
    assert.ok(score.reference.accuracy >= 0.97, `model alone ${score.reference.accuracy}`);
    assert.ok(
      score.deploy.accuracy >= score.reference.accuracy - 0.005,
      `deploy ${score.deploy.accuracy} against ${score.reference.accuracy} alone`,
    );
    // The paired counts add up to the two accuracies' difference.
    const { only_deploy, only_reference, value } = score.difference;
    assert.equal(only_deploy - only_reference, score.deploy.correct - score.reference.correct);
    assert.ok(Math.abs(value - (only_deploy - only_reference) / set.count) < 1e-12);
    assert.equal(score.predictions.length, set.count);
  } finally {
    await classifier.release();
  }
});

Deno.test("MNIST digits as files: the deploy path within 0.5 points of the model alone", async () => {
  await using temp = await tempDir();
  const test = await loadTestSet();
  const set = mnistDigits(subset(test, Array.from({ length: 300 }, (_, i) => 5000 + i)));
  const classifier = await robust();
  try {
    const score = await scoreTwoPaths(classifier, set, await writeDigitFiles(set, temp.path));
    assert.equal(score.deploy.refused, 0);
    assert.ok(
      Math.abs(score.difference.value) <= 0.005,
      `deploy ${score.deploy.accuracy}, alone ${score.reference.accuracy}`,
    );
  } finally {
    await classifier.release();
  }
});

Deno.test("digitShape: stroke width of bars and the sign of slant; thirds of the digits by shape", () => {
  const bar = (width: number, lean: number) => {
    const digit = new Float32Array(784);
    for (let y = 4; y < 24; y++) {
      // lean: pixels to the right per row going up.
      const left = Math.round(12 + lean * (14 - y));
      for (let x = left; x < left + width; x++) digit[y * 28 + x] = 1;
    }
    return digit;
  };
  const thin = digitShape(bar(2, 0)), thick = digitShape(bar(5, 0));
  // A w x 20 bar: area 20w over half its perimeter (20 + w): 1.8 and 4.0.
  assert.ok(Math.abs(thin.strokeWidth - 40 / 22) < 1e-9, `thin ${thin.strokeWidth}`);
  assert.ok(Math.abs(thick.strokeWidth - 100 / 25) < 1e-9, `thick ${thick.strokeWidth}`);
  assert.ok(Math.abs(thin.slant) < 1e-9);
  assert.ok(digitShape(bar(3, 0.3)).slant > 0.25, "leaning right is positive");
  assert.ok(digitShape(bar(3, -0.3)).slant < -0.25, "leaning left is negative");
  const shapes = [1, 2, 3, 4, 5, 6].map((w) => ({ strokeWidth: w, slant: (w % 2) * 0.5 }));
  const split = shapeBreakdown(shapes, [true, true, true, false, false, false]);
  assert.deepEqual(split.stroke_width.map((t) => t.accuracy), [1, 0.5, 0]);
  assert.deepEqual(split.stroke_width.map((t) => [t.from, t.to]), [[1, 2], [3, 4], [5, 6]]);
  assert.deepEqual(split.abs_slant.map((t) => t.images), [2, 2, 2]);
});
