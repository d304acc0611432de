import assert from "node:assert/strict";
import { join } from "node:path";
import { onnx } from "../deps.ts";
import { GraphBuilder, tensorValueInfo } from "../export/onnx_graph.ts";
import { loadMnist, pixelsOf, splitTrainValidation } from "../data/mnist.ts";
import { argmaxRows, OnnxClassifier } from "../infer/classifier.ts";
import { MNIST_C, MNIST_C_PREPARE } from "../robustness/corruptions.ts";
import { evaluateRobustness, summarize } from "../robustness/evaluate.ts";
import { FAMILIES, familyByName, perturbBatch } from "../robustness/families.ts";
import { Random } from "../util/random.ts";
import { runScript } from "./run_script.ts";
import { tempDir } from "./temp_dir.ts";

const SIZE = 28;

function digitLike(seed: number): Float32Array {
  // A blob of random strokes in the middle, zero border: like an MNIST digit.
  const random = new Random(seed);
  const image = new Float32Array(SIZE * SIZE);
  for (let y = 6; y < 22; y++) {
    for (let x = 8; x < 20; x++) {
      if (random.next() < 0.4) image[y * SIZE + x] = random.uniform(0.5, 1);
    }
  }
  return image;
}

function apply(name: string, image: Float32Array, level: number, seed = 1): Float32Array {
  const family = familyByName(name)!;
  const prepared = family.prepare?.(image, new Random(seed + 100));
  return perturbBatch(family, image, level, new Random(seed), prepared);
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  return a.reduce((worst, v, i) => Math.max(worst, Math.abs(v - b[i])), 0);
}

Deno.test("the identity level of every sweep leaves the image unchanged", () => {
  const image = digitLike(1);
  for (const family of FAMILIES.filter((f) => f.identity !== undefined)) {
    assert.ok(
      maxDifference(apply(family.name, image, family.identity!), image) < 1e-6,
      family.name,
    );
  }
});

Deno.test("rotation by 90 degrees is the exact pixel rotation; integer shifts are array shifts", () => {
  const image = digitLike(2);
  const rotated = apply("rotation", image, 90);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      // Counter-clockwise on screen.
      assert.ok(Math.abs(rotated[y * SIZE + x] - image[x * SIZE + (SIZE - 1 - y)]) < 1e-5);
    }
  }
  const right = apply("shift_x", image, 3);
  const down = apply("shift_y", image, -2);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      assert.equal(right[y * SIZE + x], x >= 3 ? image[y * SIZE + x - 3] : 0);
      assert.equal(down[y * SIZE + x], y < SIZE - 2 ? image[(y + 2) * SIZE + x] : 0);
    }
  }
});

Deno.test("every corruption is deterministic for a seed, stays in [0, 1] and changes the image", () => {
  const image = digitLike(3);
  for (const [name, corrupt] of Object.entries(MNIST_C)) {
    const run = (seed: number) => {
      const random = new Random(seed);
      return corrupt(image, random, MNIST_C_PREPARE[name]?.(random));
    };
    const first = run(5);
    assert.deepEqual(first, run(5), `${name} is not deterministic`);
    assert.ok(first.every((v) => v >= 0 && v <= 1), `${name} leaves [0, 1]`);
    assert.ok(maxDifference(first, image) > 0.05, `${name} does not change the image`);
  }
  for (const family of FAMILIES.filter((f) => f.group === "sweep")) {
    const level = family.levels.at(-1)!;
    assert.deepEqual(
      apply(family.name, image, level, 9),
      apply(family.name, image, level, 9),
      family.name,
    );
  }
});

Deno.test("MNIST-C definitions: stripe inverts the outer columns, brightness adds 0.5, scale shrinks", () => {
  const image = digitLike(4);
  const striped = MNIST_C.stripe(image, new Random(1));
  assert.equal(striped[3], 1 - image[3]);
  assert.equal(striped[10 * SIZE + 14], image[10 * SIZE + 14]);
  const bright = MNIST_C.brightness(image, new Random(1));
  image.forEach((v, i) => assert.ok(Math.abs(bright[i] - Math.min(1, v + 0.5)) < 1e-6));
  const ink = (x: Float32Array) => x.reduce((a, b) => a + b, 0);
  const scaled = MNIST_C.scale(image, new Random(1));
  assert.ok(
    Math.abs(ink(scaled) / ink(image) - 0.49) < 0.05,
    "0.7x in each direction keeps about 49% of the ink",
  );
});

/** A model that answers "digit = number of the row holding the brightest pixel, mod 10". */
async function rowModel(dir: string): Promise<string> {
  const graph = new GraphBuilder();
  graph.name("input");
  const weights = new Float32Array(784 * 10);
  for (let p = 0; p < 784; p++) weights[p * 10 + (Math.floor(p / 28) % 10)] = 1;
  const logits = graph.node("MatMul", ["input", graph.constant("w", [784, 10], weights)], "logits");
  const model = onnx.ModelProto.create({
    irVersion: 7,
    opsetImport: [{ domain: "", version: 13 }],
    graph: {
      name: "rows",
      node: graph.nodes,
      initializer: graph.initializers,
      input: [tensorValueInfo("input", ["N", 784])],
      output: [tensorValueInfo(logits, ["N", 10])],
    },
  });
  const path = join(dir, "rows.onnx");
  await Deno.writeFile(path, onnx.ModelProto.encode(model).finish());
  return path;
}

Deno.test("accuracy counting is exact on a model whose predictions are known", async () => {
  await using dirTemp = await tempDir();
  const dir = dirTemp.path;
  const classifier = await OnnxClassifier.load(await rowModel(dir));
  // Image i: one bright pixel in row i; its row sum makes class i % 10 win.
  const count = 20;
  const images = new Uint8Array(count * 784);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    images[i * 784 + i * 28 + 5] = 255;
    labels[i] = i % 4 === 0 ? (i + 1) % 10 : i % 10; // every fourth label is wrong
  }
  const shiftDown = familyByName("shift_y")!;
  const results = await evaluateRobustness(
    [{ name: "rows", classifier }],
    { images, labels, count },
    [{ ...shiftDown, levels: [0, 1] }],
    0,
  );
  assert.equal(results.rows.clean, 15 / 20);
  const [identity, oneDown] = results.rows.families.shift_y;
  assert.equal(identity.accuracy, 15 / 20);
  // One row down, every prediction becomes (i + 1) % 10: only the 5 shifted labels match.
  assert.equal(oneDown.accuracy, 5 / 20);
  const summary = summarize(results.rows, [shiftDown]);
  assert.equal(summary.families.shift_y, (15 / 20 + 5 / 20) / 2);
  assert.deepEqual(summary.worst, { family: "shift_y", level: 1, accuracy: 5 / 20 });
  // Each image is right at exactly one of the two levels: unshifted when its label is its row's, shifted when not.
  assert.deepEqual(Array.from(results.rows.levelsRight.shift_y), new Array(count).fill(1));
  await classifier.release();
});

Deno.test("eval:robustness --split validation scores one training seed's held-out digits, not the test set", async () => {
  await using temp = await tempDir();
  const model = join(import.meta.dirname!, "..", "results", "models", "baseline.onnx");
  // MNIST-C's corruption functions apply to validation digits when named.
  const result = await runScript("robustness/main.ts", [
    ...["--split", "validation", "--split-seed", "7", "--family", "shift_x", "--family", "fog"],
    ...["--limit", "40", "--model", model, "--out", temp.path],
  ]);
  assert.equal(result.code, 0, result.stderr);
  const written = JSON.parse(
    await Deno.readTextFile(join(temp.path, "metrics", "robustness_validation.json")),
  );
  assert.deepEqual(
    [
      written.config.split,
      written.config.split_seed,
      written.config.images,
      written.config.held_out,
    ],
    ["validation", 7, 40, 6000],
  );
  assert.deepEqual(Object.keys(written.models.baseline.families), ["shift_x", "mnist_c/fog"]);
  // The clean score is the model's accuracy on seed 7's first 40 validation digits.
  const { train } = await loadMnist();
  const validation = splitTrainValidation(train, 7).validation;
  const indices = Array.from({ length: 40 }, (_, i) => i);
  const classifier = await OnnxClassifier.load(model);
  const probabilities = await classifier.predict(pixelsOf(validation, indices));
  const predictions = argmaxRows(probabilities);
  const right = indices.filter((i) => predictions[i] === validation.labels[i]).length;
  assert.equal(written.models.baseline.clean, right / 40);
  // --validation N takes the N digits a run trained with --validation N held out.
  const fewer = await runScript("robustness/main.ts", [
    ...["--split", "validation", "--split-seed", "7", "--validation", "300", "--family", "shift_x"],
    ...["--limit", "40", "--model", model, "--out", temp.path],
  ]);
  assert.equal(fewer.code, 0, fewer.stderr);
  const writtenFewer = JSON.parse(
    await Deno.readTextFile(join(temp.path, "metrics", "robustness_validation.json")),
  );
  assert.equal(writtenFewer.config.held_out, 300);
  const heldOut = splitTrainValidation(train, 7, undefined, 300).validation;
  const fewerPredictions = argmaxRows(await classifier.predict(pixelsOf(heldOut, indices)));
  await classifier.release();
  const fewerRight = indices.filter((i) => fewerPredictions[i] === heldOut.labels[i]).length;
  assert.equal(writtenFewer.models.baseline.clean, fewerRight / 40);
  // Other digits: the shift sweep scores them differently.
  assert.notDeepEqual(
    writtenFewer.models.baseline.families.shift_x,
    written.models.baseline.families.shift_x,
  );
  // Validation runs leave the test-set metrics and plots alone.
  assert.deepEqual([...Deno.readDirSync(temp.path)].map((e) => e.name), ["metrics"]);
  assert.deepEqual(
    [...Deno.readDirSync(join(temp.path, "metrics"))].map((e) => e.name),
    ["robustness_validation.json"],
  );
});
