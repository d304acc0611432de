import assert from "node:assert/strict";
import { PredictionBatcher } from "../serve/batcher.ts";

/** A fake model whose 10 outputs for an image are its first pixel times 0..9. */
function fakePredict(calls: number[]) {
  return (pixels: Float32Array) => {
    const count = pixels.length / 784;
    calls.push(count);
    const out = new Float32Array(count * 10);
    for (let i = 0; i < count; i++) {
      for (let c = 0; c < 10; c++) out[i * 10 + c] = pixels[i * 784] * c;
    }
    return new Promise<Float32Array>((resolve) => setTimeout(() => resolve(out), 5));
  };
}

function image(first: number): Float32Array {
  const pixels = new Float32Array(784);
  pixels[0] = first;
  return pixels;
}

Deno.test("concurrent predictions share model calls and each gets its own row", async () => {
  const calls: number[] = [];
  const batcher = new PredictionBatcher(fakePredict(calls), 16);
  const results = await Promise.all(
    Array.from({ length: 40 }, (_, i) => batcher.classify(image(i + 1))),
  );
  results.forEach((row, i) =>
    assert.deepEqual(Array.from(row), [...Array(10)].map((_, c) => (i + 1) * c))
  );
  assert.ok(calls.length < 40, `40 requests took ${calls.length} calls`);
  assert.ok(Math.max(...calls) <= 16, `a call took ${Math.max(...calls)} images, over the cap`);
  assert.equal(calls.reduce((a, b) => a + b), 40);
  assert.deepEqual(batcher.batchSizes, calls);
});

Deno.test("a lone prediction is not held back, and a failed call fails only its own batch", async () => {
  const calls: number[] = [];
  let fail = true;
  const predict = fakePredict(calls);
  const batcher = new PredictionBatcher((pixels) => {
    if (fail) {
      fail = false;
      return Promise.reject(new Error("model broke"));
    }
    return predict(pixels);
  });
  await assert.rejects(batcher.classify(image(1)), /model broke/);
  assert.deepEqual(Array.from(await batcher.classify(image(2))).slice(0, 3), [0, 2, 4]);
  await assert.rejects(batcher.classify(new Float32Array(10)), /784 pixels, got 10/);
});
