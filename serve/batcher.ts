/**
 * Gathers concurrent single-image predictions into one model call. While a
 * call runs, new images queue; when it returns, everything queued goes in
 * the next call (up to `maxBatch`). A lone request waits for nothing, and
 * under load batches grow by themselves.
 */

const PIXELS = 28 * 28;
const CLASSES = 10;

interface Pending {
  pixels: Float32Array;
  resolve(probabilities: Float32Array): void;
  reject(error: unknown): void;
}

export class PredictionBatcher {
  readonly #predict: (pixels: Float32Array) => Promise<Float32Array>;
  readonly #maxBatch: number;
  #queue: Pending[] = [];
  #running = false;
  /** Sizes of the calls made, for tests and the bench. */
  readonly batchSizes: number[] = [];

  constructor(predict: (pixels: Float32Array) => Promise<Float32Array>, maxBatch = 64) {
    this.#predict = predict;
    this.#maxBatch = maxBatch;
  }

  /** The 10 probabilities for one 28×28 image (784 values in [0, 1]). */
  classify(pixels: Float32Array): Promise<Float32Array> {
    if (pixels.length !== PIXELS) {
      return Promise.reject(new RangeError(`An image has ${PIXELS} pixels, got ${pixels.length}.`));
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ pixels, resolve, reject });
      if (!this.#running) this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#running = true;
    // Let requests that arrived in the same turn of the event loop join.
    await Promise.resolve();
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      const input = new Float32Array(batch.length * PIXELS);
      batch.forEach((pending, i) => input.set(pending.pixels, i * PIXELS));
      this.batchSizes.push(batch.length);
      try {
        const output = await this.#predict(input);
        batch.forEach((pending, i) =>
          pending.resolve(output.slice(i * CLASSES, (i + 1) * CLASSES))
        );
      } catch (error) {
        for (const pending of batch) pending.reject(error);
      }
    }
    this.#running = false;
  }
}
