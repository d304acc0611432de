import assert from "node:assert/strict";
import { centreOfMass, type GrayImage, PreprocessError, toMnist } from "../infer/preprocess.ts";

/** A white canvas with black filled rectangles (dark ink on light paper). */
function canvas(
  width: number,
  height: number,
  rects: Array<[number, number, number, number]>,
): GrayImage {
  const data = new Uint8Array(width * height).fill(255);
  for (const [left, top, w, h] of rects) {
    for (let y = top; y < top + h; y++) {
      for (let x = left; x < left + w; x++) data[y * width + x] = 0;
    }
  }
  return { width, height, data };
}

function invert(image: GrayImage): GrayImage {
  return { ...image, data: image.data.map((v) => 255 - v) };
}

function inkBounds(pixels: Float32Array): { width: number; height: number } {
  let left = 28, right = -1, top = 28, bottom = -1;
  pixels.forEach((v, i) => {
    if (v > 0.05) {
      left = Math.min(left, i % 28);
      right = Math.max(right, i % 28);
      top = Math.min(top, Math.floor(i / 28));
      bottom = Math.max(bottom, Math.floor(i / 28));
    }
  });
  return { width: right - left + 1, height: bottom - top + 1 };
}

Deno.test("a centred square stays centred, scaled to 20x20, ink bright on dark", () => {
  const out = toMnist(canvas(100, 100, [[30, 30, 40, 40]]));
  assert.equal(out.length, 784);
  const [cx, cy] = centreOfMass(out, 28);
  assert.ok(Math.abs(cx - 13.5) <= 0.5 && Math.abs(cy - 13.5) <= 0.5, `centre ${cx}, ${cy}`);
  assert.deepEqual(inkBounds(out), { width: 20, height: 20 });
  assert.equal(out[0], 0);
  assert.equal(out[14 * 28 + 14], 1);
});

Deno.test("an off-centre digit is re-centred on its centre of mass", () => {
  // An L shape in a corner: its centre of mass is not its box centre.
  const out = toMnist(canvas(200, 120, [[5, 5, 10, 60], [5, 55, 40, 10]]));
  const [cx, cy] = centreOfMass(out, 28);
  assert.ok(Math.abs(cx - 13.5) <= 0.5 && Math.abs(cy - 13.5) <= 0.5, `centre ${cx}, ${cy}`);
});

Deno.test("inverted polarity gives the same 28x28 image", () => {
  const dark = canvas(64, 80, [[10, 12, 8, 50], [10, 12, 30, 8], [32, 40, 6, 30]]);
  assert.deepEqual(toMnist(invert(dark)), toMnist(dark));
});

Deno.test("the aspect ratio is kept: a tall bar stays tall", () => {
  const out = toMnist(canvas(300, 300, [[140, 50, 20, 200]]));
  const { width, height } = inkBounds(out);
  assert.equal(height, 20);
  assert.equal(width, 2);
});

Deno.test("blank and tiny images are refused with a reason", () => {
  assert.throws(
    () => toMnist(canvas(50, 50, [])),
    new PreprocessError("has no ink: the image is blank"),
  );
  assert.throws(() => toMnist({ width: 1, height: 1, data: Uint8Array.of(0) }), {
    message: "is 1x1 pixels, too small to hold a digit (at least 8x8)",
  });
});
