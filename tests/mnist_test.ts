import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import {
  DataError,
  loadMnist,
  parseIdxImages,
  parseIdxLabels,
  pixelsOf,
  splitTrainValidation,
  VALIDATION_SIZE,
} from "../data/mnist.ts";
import { tempDir } from "./temp_dir.ts";

function idx(words: number[], body: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(words.length * 4 + body.length);
  const view = new DataView(bytes.buffer);
  words.forEach((word, i) => view.setUint32(i * 4, word));
  bytes.set(body, words.length * 4);
  return bytes;
}

Deno.test("the embedded MNIST has 60,000 + 10,000 images and the published test histogram", async () => {
  const { train, test } = await loadMnist();
  assert.equal(train.count, 60000);
  assert.equal(test.count, 10000);
  assert.equal(train.images.length, 60000 * 784);
  const histogram = Array(10).fill(0);
  for (const label of test.labels) histogram[label]++;
  assert.deepEqual(histogram, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
  // Ink is bright on dark: corners are background.
  assert.equal(test.images[0], 0);
  assert.ok(test.images.subarray(0, 784).some((pixel) => pixel === 255 || pixel > 200));
});

Deno.test("IDX headers are parsed: counts, sizes, magic numbers", () => {
  const body = Uint8Array.from({ length: 2 * 784 }, (_, i) => i % 256);
  const images = parseIdxImages(idx([0x803, 2, 28, 28], body));
  assert.equal(images.length, 2 * 784);
  assert.equal(images[785], 785 % 256);
  assert.deepEqual([...parseIdxLabels(idx([0x801, 3], Uint8Array.of(7, 0, 9)))], [7, 0, 9]);
  const pixels = pixelsOf({ images, labels: Uint8Array.of(1, 2), count: 2 }, [1]);
  assert.equal(pixels.length, 784);
  assert.equal(pixels[0], Math.fround((784 % 256) / 255));
});

Deno.test("corrupt IDX files give one clear sentence", () => {
  const body = new Uint8Array(784);
  assert.throws(() => parseIdxImages(idx([0x801, 1, 28, 28], body), "x"), {
    message: "x is not an IDX image file (magic number 0x00000801, expected 0x00000803).",
  });
  assert.throws(
    () => parseIdxImages(idx([0x803, 2, 28, 28], body), "x"),
    { message: "x is truncated: its header promises 2 images (1584 bytes) but it has 800 bytes." },
  );
  assert.throws(() => parseIdxImages(new Uint8Array(5), "x"), { message: /x is truncated/ });
  assert.throws(() => parseIdxImages(idx([0x803, 1, 32, 32], body), "x"), {
    message: /32x32 images/,
  });
  assert.throws(() => parseIdxLabels(idx([0x801, 4], Uint8Array.of(1, 2)), "y"), {
    message: /y is truncated/,
  });
  assert.throws(() => parseIdxLabels(idx([0x801, 1], Uint8Array.of(12)), "y"), {
    message: /label 12/,
  });
  assert.throws(() => parseIdxLabels(idx([0x803, 1], Uint8Array.of(1)), "y"), DataError);
});

Deno.test("a folder without MNIST files is named in the error", async () => {
  await using dirTemp = await tempDir();
  const dir = dirTemp.path;
  await assert.rejects(
    () => loadMnist(pathToFileURL(dir + "/")),
    (error: Error) =>
      error instanceof DataError && error.message.includes(join(dir, "t")) &&
      /is missing\.$/.test(error.message),
  );
});

Deno.test("the validation split: 6,000 held-out images, disjoint from training, fixed by the seed", () => {
  // Image i holds the bytes [i, i] so that every image can be traced back to its index.
  const count = 6100;
  const images = new Uint8Array(count * 784);
  for (let i = 0; i < count; i++) {
    images.fill(i % 256, i * 784, i * 784 + 1).fill(i >> 8, i * 784 + 1, i * 784 + 2);
  }
  const source = { images, labels: Uint8Array.from({ length: count }, (_, i) => i % 10), count };
  const indexOf = (split: { images: Uint8Array; count: number }) =>
    Array.from(
      { length: split.count },
      (_, i) => split.images[i * 784] + 256 * split.images[i * 784 + 1],
    );
  const { train, validation } = splitTrainValidation(source, 3);
  assert.equal(validation.count, VALIDATION_SIZE);
  assert.equal(train.count, count - VALIDATION_SIZE);
  const seen = [...indexOf(train), ...indexOf(validation)].sort((a, b) => a - b);
  assert.deepEqual(seen, Array.from({ length: count }, (_, i) => i));
  assert.deepEqual(indexOf(splitTrainValidation(source, 3).validation), indexOf(validation));
  assert.notDeepEqual(indexOf(splitTrainValidation(source, 4).validation), indexOf(validation));
  const limited = splitTrainValidation(source, 3, 50);
  assert.equal(limited.train.count, 50);
  assert.equal(limited.validation.count, 50);

  // A smaller validation set is part of the default one; the rest of it trains.
  const smaller = splitTrainValidation(source, 3, undefined, 500);
  assert.equal(smaller.validation.count, 500);
  assert.equal(smaller.train.count, count - 500);
  const defaultValidation = new Set(indexOf(validation));
  assert.ok(indexOf(smaller.validation).every((i) => defaultValidation.has(i)));
  assert.deepEqual(indexOf(smaller.train).slice(0, train.count), indexOf(train));
  const smallerSeen = [...indexOf(smaller.train), ...indexOf(smaller.validation)];
  assert.deepEqual(smallerSeen.sort((a, b) => a - b), seen);
  for (const bad of [0, count, 2.5]) {
    assert.throws(
      () => splitTrainValidation(source, 3, undefined, bad),
      { message: `The validation set must hold 1 to ${count - 1} images, got ${bad}.` },
    );
  }
});
