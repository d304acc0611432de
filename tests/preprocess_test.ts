import assert from "node:assert/strict";
import {
  centreOfMass,
  type GrayImage,
  inkMap,
  MNIST_CENTRE,
  noiseLevel,
  otsuThreshold,
  PreprocessError,
  saturateStrokes,
  toMnist,
} from "../infer/preprocess.ts";
import { loadTestSet } from "../data/mnist.ts";
import { Random } from "../util/random.ts";

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
  assert.ok(
    Math.abs(cx - MNIST_CENTRE) <= 0.5 && Math.abs(cy - MNIST_CENTRE) <= 0.5,
    `centre ${cx}, ${cy}`,
  );
  assert.deepEqual(inkBounds(out), { width: 20, height: 20 });
  assert.equal(out[0], 0);
  assert.equal(out[14 * 28 + 14], 1);
});

Deno.test("an off-centre digit is re-centred on its centre of mass, where MNIST puts it", () => {
  // An L shape in a corner: its centre of mass is not its box centre.
  const out = toMnist(canvas(200, 120, [[5, 5, 10, 60], [5, 55, 40, 10]]));
  const [cx, cy] = centreOfMass(out, 28);
  assert.ok(
    Math.abs(cx - MNIST_CENTRE) <= 0.5 && Math.abs(cy - MNIST_CENTRE) <= 0.5,
    `centre ${cx}, ${cy}`,
  );
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
    message: "is 1x1 pixels, too small to hold a digit (at least 8 pixels on its longer side)",
  });
});

/** Share of ink (pixels above 0.1) at 0.9 or more: MNIST's test digits run from 0.22 to 0.72. */
function saturatedShare(pixels: Float32Array): number {
  const ink = Array.from(pixels).filter((v) => v > 0.1);
  return ink.filter((v) => v >= 0.9).length / ink.length;
}

/** A soft grey "7" on paper: a blurred pencil line, ink at most 40% as dark as black. */
function softSeven(size = 64, paper = 230): GrayImage {
  const data = new Uint8Array(size * size);
  const distanceToStroke = (x: number, y: number) => {
    const top = Math.abs(y - size * 0.2) + (x < size * 0.2 || x > size * 0.8 ? size : 0);
    // The diagonal from the top right corner down to the bottom middle.
    const t = Math.min(1, Math.max(0, (y - size * 0.2) / (size * 0.6)));
    const dx = x - (size * 0.8 - t * size * 0.35), dy = y - (size * 0.2 + t * size * 0.6);
    return Math.min(top, Math.hypot(dx, dy));
  };
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const ink = 0.4 * Math.exp(-(distanceToStroke(x, y) ** 2) / (2 * 2.5 ** 2));
      data[y * size + x] = Math.round(paper * (1 - ink));
    }
  }
  return { width: size, height: size, data };
}

Deno.test("a soft grey stroke gets MNIST's saturated core; without saturation it would not", () => {
  const plain = toMnist(softSeven(), { saturate: false });
  const saturated = toMnist(softSeven());
  assert.ok(saturatedShare(plain) < 0.22, `plain share ${saturatedShare(plain)}`);
  const share = saturatedShare(saturated);
  assert.ok(share >= 0.22 && share <= 0.72, `saturated share ${share} outside MNIST's range`);
  // The edges stay soft: not a binary image.
  assert.ok(Array.from(saturated).some((v) => v > 0.1 && v < 0.9));
  assert.deepEqual(saturateStrokes(new Float32Array(784)), new Float32Array(784));
});

Deno.test("an MNIST test digit passes through saturation almost unchanged", async () => {
  const test = await loadTestSet();
  let changed = 0, worst = 0;
  for (let k = 0; k < 200; k++) {
    const digit = Float32Array.from(test.images.subarray(k * 784, (k + 1) * 784), (v) => v / 255);
    const out = saturateStrokes(digit);
    const difference = out.reduce((sum, v, i) => sum + Math.abs(v - digit[i]), 0) / 784;
    if (difference > 0) changed++;
    worst = Math.max(worst, difference);
    const share = saturatedShare(out);
    assert.ok(share >= 0.2 && share <= 0.75, `digit ${k}: share ${share}`);
  }
  // Most digits are already as saturated as the rule asks; the rest move little.
  assert.ok(changed < 40, `${changed} of 200 digits changed`);
  assert.ok(worst < 0.05, `mean absolute change up to ${worst}`);
});

Deno.test("uneven light and a stray speck do not change what the model sees", () => {
  const flat = canvas(80, 80, [[30, 15, 8, 50]]);
  const lit: GrayImage = {
    ...flat,
    // Paper from 150 on the left to 250 on the right; ink stays 0.
    data: flat.data.map((v, i) => (v === 0 ? 0 : Math.round(150 + (100 * (i % 80)) / 79))),
  };
  // The same pixels are ink whatever the light (one paper level for all would take the dark side for ink).
  const mask = (image: GrayImage) => Array.from(inkMap(image), (v) => v > 0);
  assert.deepEqual(mask(lit), mask(flat));
  const expected = toMnist(flat);
  assert.deepEqual(inkBounds(toMnist(lit)), inkBounds(expected));
  const specked = canvas(80, 80, [[30, 15, 8, 50], [75, 75, 1, 1]]);
  assert.deepEqual(
    inkBounds(toMnist(specked)),
    inkBounds(expected),
    "a one-pixel speck moved the crop",
  );
});

Deno.test("MNIST_CENTRE is where MNIST's own digits have their centre of mass", async () => {
  const test = await loadTestSet();
  let sumX = 0, sumY = 0;
  const count = 1000;
  for (let k = 0; k < count; k++) {
    const digit = Float32Array.from(test.images.subarray(k * 784, (k + 1) * 784), (v) => v / 255);
    const [cx, cy] = centreOfMass(digit, 28);
    sumX += cx;
    sumY += cy;
  }
  assert.ok(Math.abs(sumX / count - MNIST_CENTRE) < 0.1, `mean x ${sumX / count}`);
  assert.ok(Math.abs(sumY / count - MNIST_CENTRE) < 0.1, `mean y ${sumY / count}`);
});

/** Grey paper with Gaussian sensor noise (seeded), optionally with a dark bar. */
function noisyPaper(size: number, noise: number, bar?: number): GrayImage {
  const random = new Random(7);
  const data = new Uint8Array(size * size);
  for (let i = 0; i < data.length; i++) {
    const x = i % size, y = Math.floor(i / size);
    const inBar = bar !== undefined && Math.abs(x - size / 2) < size / 20 && y > size / 5 &&
      y < (4 * size) / 5;
    data[i] = Math.max(0, Math.min(255, Math.round((inBar ? bar : 200) + noise * random.normal())));
  }
  return { width: size, height: size, data };
}

Deno.test("blank means no ink structure: one value, noise alone, a big empty page", () => {
  const blank = new PreprocessError("has no ink: the image is blank");
  assert.throws(() => toMnist(noisyPaper(120, 0)), blank);
  assert.throws(() => toMnist(noisyPaper(120, 12)), blank, "sensor noise alone is not a digit");
  const page = { width: 1240, height: 1754, data: new Uint8Array(1240 * 1754).fill(246) };
  assert.throws(() => toMnist(page), blank, "an A4 page at 150 dpi");
  // The same noise with a stroke in it is a digit: a bar, tall and thin.
  const bar = inkBounds(toMnist(noisyPaper(120, 12, 110)));
  assert.equal(bar.height, 20);
  assert.ok(bar.width <= 5, `bar width ${bar.width}`);
});

Deno.test("faint ink, frame-filling ink and a narrow crop are read, not called blank", () => {
  // Pencil 12 grey levels darker than the paper.
  const faint = canvas(40, 40, [[18, 8, 4, 24]]);
  const pencil = { ...faint, data: faint.data.map((v) => (v === 0 ? 243 : 255)) };
  assert.deepEqual(inkBounds(toMnist(pencil)), { width: 3, height: 20 });
  // A thick ring filling a 16x16 frame: more ink than paper, touching every edge.
  const ring: GrayImage = {
    width: 16,
    height: 16,
    data: Uint8Array.from({ length: 256 }, (_, i) => {
      const r = Math.hypot((i % 16) - 7.5, Math.floor(i / 16) - 7.5);
      return Math.abs(r - 5.5) < 2.5 ? 0 : 255;
    }),
  };
  assert.ok(ring.data.filter((v) => v === 0).length > 128, "more ink than paper");
  const out = toMnist(ring);
  assert.deepEqual(inkBounds(out), { width: 20, height: 20 });
  assert.equal(out[MNIST_CENTRE * 28 + MNIST_CENTRE], 0, "the ring's hole stays paper");
  // A crop tight to a "1": 3 pixels wide is fine when the longer side is 8 or more.
  assert.deepEqual(inkBounds(toMnist(canvas(3, 24, [[1, 0, 1, 24]]))).height, 20);
  assert.throws(() => toMnist(canvas(7, 7, [[3, 0, 1, 7]])), { message: /too small/ });
});

Deno.test("noiseLevel recovers a known sensor noise, and a clean digit that fills its frame has none", () => {
  const random = new Random(11);
  for (const sigma of [0.02, 0.05, 0.1]) {
    const contrast = Float32Array.from({ length: 200 * 200 }, () => sigma * random.normal());
    const estimate = noiseLevel(contrast, 200, 200);
    assert.ok(Math.abs(estimate - sigma) < 0.1 * sigma, `sigma ${sigma}: estimated ${estimate}`);
  }
  // A 16x16 ring with more ink than paper, no noise: edges alone must not read as noise.
  const ring = Float32Array.from({ length: 256 }, (_, i) => {
    const r = Math.hypot((i % 16) - 7.5, Math.floor(i / 16) - 7.5);
    return Math.abs(r - 5.5) < 2.5 ? 1 : 0;
  });
  assert.equal(noiseLevel(ring, 16, 16), 0);
});

Deno.test("otsuThreshold splits two clusters between them", () => {
  const values = Float32Array.from([
    ...Array.from({ length: 300 }, (_, i) => 0.1 + (i % 10) * 0.005),
    ...Array.from({ length: 100 }, (_, i) => 0.8 + (i % 10) * 0.005),
  ]);
  const split = otsuThreshold(values);
  assert.ok(split > 0.145 && split < 0.8, `split ${split}`);
  assert.equal(otsuThreshold(new Float32Array(10).fill(0.3)), Math.fround(0.3), "one value");
});
