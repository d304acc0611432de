/**
 * The learned turn: the angle network's training data and run, and the
 * turned model (export/turned.ts) against its pieces run one by one.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { onnx } from "../deps.ts";
import { tf } from "../deps_tfjs.ts";
import { loadMnist, pixelsOf } from "../data/mnist.ts";
import { argmaxRows, classifierFiles, OnnxClassifier, onnxMetadata } from "../infer/classifier.ts";
import { useWasmBackend } from "../kernels/backend.ts";
import { exportTurned, mergeTurned, TurnedError } from "../export/turned.ts";
import { GraphBuilder, tensorValueInfo } from "../export/onnx_graph.ts";
import { buildTurnNetwork } from "../models/turn.ts";
import { MAX_TURN, turnBatch, turnEach } from "../transforms/augment.ts";
import { readTurns } from "../train/turn.ts";
import { Random } from "../util/random.ts";
import { runScript } from "./run_script.ts";
import { loadServedModels } from "../serve/models.ts";
import { tempDir } from "./temp_dir.ts";

const BASELINE = join(import.meta.dirname!, "..", "results", "models", "baseline.onnx");

/** An "angle network" in ONNX reading each digit's turn as pixels · `weights` + `bias`. */
function linearAngleNetwork(
  weights: Float32Array,
  bias: number,
  layout: "nhwc" | "nchw" = "nhwc",
): Uint8Array {
  const g = new GraphBuilder();
  const flat = g.node("Flatten", ["input"], "flat", { axis: 1 });
  const product = g.node("MatMul", [flat, g.constant("w", [784, 1], weights)], "product");
  g.node("Add", [product, g.constant("bias", [1], [bias])], "out", {}, "angle");
  const shape = layout === "nhwc" ? ["N", 28, 28, 1] : ["N", 1, 28, 28];
  return onnx.ModelProto.encode(onnx.ModelProto.create({
    irVersion: 7,
    opsetImport: [{ domain: "", version: 13 }],
    graph: {
      name: "linear_angle",
      node: g.nodes,
      initializer: g.initializers,
      input: [tensorValueInfo("input", shape)],
      output: [tensorValueInfo("angle", ["N", 1])],
    },
  })).finish();
}

/** Reads every digit as turned by `radians`. */
const constantAngleNetwork = (radians: number, layout: "nhwc" | "nchw" = "nhwc") =>
  linearAngleNetwork(new Float32Array(784), radians, layout);

/** Reads each digit's mean ink times `scale` as its turn. */
const inkAngleNetwork = (scale: number) =>
  linearAngleNetwork(new Float32Array(784).fill(scale / 784), 0);

async function probabilities(bytes: Uint8Array, pixels: Float32Array): Promise<Float32Array> {
  const model = await OnnxClassifier.fromBytes(bytes, "model");
  try {
    return await model.predict(pixels);
  } finally {
    await model.release();
  }
}

function largestDifference(a: Float32Array, b: Float32Array): number {
  return a.reduce((largest, value, i) => Math.max(largest, Math.abs(value - b[i])), 0);
}

const { test } = await loadMnist();
const indices = Array.from({ length: 200 }, (_, i) => i);
const digits = pixelsOf(test, indices);
const labels = indices.map((i) => test.labels[i]);
const accuracy = (p: Float32Array) =>
  argmaxRows(p).filter((digit, i) => digit === labels[i]).length / labels.length;

Deno.test("turnBatch turns each digit by its own known angle within ±60°, reproducibly", () => {
  const still = { rotation: 0, translation: 0, zoom: 0 };
  const a = turnBatch(digits.subarray(0, 784 * 20), new Random(3), still);
  const b = turnBatch(digits.subarray(0, 784 * 20), new Random(3), still);
  assert.equal(a.pixels.length, 784 * 20);
  assert.equal(a.turns.length, 20);
  assert.deepEqual(a.pixels, b.pixels);
  assert.ok(a.turns.every((t) => Math.abs(t) <= MAX_TURN));
  assert.ok(new Set(a.turns).size === 20);
  // Without other geometry, each is the digit turned by its angle, and turning back undoes it.
  assert.ok(largestDifference(a.pixels, turnEach(digits.subarray(0, 784 * 20), a.turns)) < 1e-6);
  const back = turnEach(a.pixels, Array.from(a.turns, (t) => -t));
  const original = digits.subarray(0, 784 * 20);
  let error = 0;
  back.forEach((value, i) => error += Math.abs(value - original[i]));
  let ink = 0;
  original.forEach((value) => ink += value);
  assert.ok(error / ink < 0.3, `turning back left ${(error / ink).toFixed(2)} of the ink off`);
});

Deno.test("the turned model turns a digit back by the angle read, inside the graph", async () => {
  const classifier = await Deno.readFile(BASELINE);
  const settings = { gateDegrees: 20, pick: "gate" as const };
  const theta = 0.6; // 34°, beyond the gate
  const turned = onnx.ModelProto.encode(
    mergeTurned(classifier, constantAngleNetwork(theta), settings),
  ).finish();
  // Equal to the classifier reading the digits turned back in TypeScript.
  const expected = await probabilities(classifier, turnEach(digits, indices.map(() => -theta)));
  assert.ok(largestDifference(await probabilities(turned, digits), expected) < 1e-4);
  // Digits turned by +θ are read back as the classifier reads them upright.
  const turnedDigits = turnEach(digits, indices.map(() => theta));
  const plain = accuracy(await probabilities(classifier, turnedDigits));
  const back = accuracy(await probabilities(turned, turnedDigits));
  const upright = accuracy(await probabilities(classifier, digits));
  assert.ok(back > plain + 0.1, `turned back ${back}, as they are ${plain}`);
  assert.ok(back > upright - 0.05, `turned back ${back}, upright ${upright}`);
  // Under the gate, the digits are read as they are.
  const gated = onnx.ModelProto.encode(
    mergeTurned(classifier, constantAngleNetwork(0.3), settings),
  ).finish();
  assert.ok(
    largestDifference(await probabilities(gated, digits), await probabilities(classifier, digits)) <
      1e-5,
  );
});

Deno.test("pick confident keeps, digit by digit, the surer of the two reads beyond the gate", async () => {
  const classifier = await Deno.readFile(BASELINE);
  // An "angle network" reading more ink as more turned: some digits under the gate, some beyond.
  const scale = 5;
  const model = onnx.ModelProto.encode(
    mergeTurned(classifier, inkAngleNetwork(scale), { gateDegrees: 20, pick: "confident" }),
  ).finish();
  const angles = indices.map((i) =>
    digits.subarray(i * 784, i * 784 + 784).reduce((sum, v) => sum + v, 0) / 784 * scale
  );
  const out = await probabilities(model, digits);
  const asIs = await probabilities(classifier, digits);
  const back = await probabilities(classifier, turnEach(digits, angles.map((a) => -a)));
  let tookBack = 0;
  let beyond = 0;
  for (const i of indices) {
    const row = (p: Float32Array) => p.subarray(i * 10, i * 10 + 10);
    const isBeyond = Math.abs(angles[i]) > 20 * Math.PI / 180;
    const backIsSurer = isBeyond && Math.max(...row(back)) > Math.max(...row(asIs));
    assert.ok(
      largestDifference(row(out), backIsSurer ? row(back) : row(asIs)) < 1e-4,
      `digit ${i}`,
    );
    if (isBeyond) beyond++;
    if (backIsSurer) tookBack++;
  }
  assert.ok(beyond > 20 && beyond < 180, `${beyond} digits beyond the gate`);
  assert.ok(tookBack > 0 && tookBack < beyond, `${tookBack} turned reads kept`);
  // No digit beyond the gate: the classifier's own reads.
  const none = onnx.ModelProto.encode(
    mergeTurned(classifier, constantAngleNetwork(0.1), { gateDegrees: 20, pick: "confident" }),
  ).finish();
  assert.ok(largestDifference(await probabilities(none, digits), asIs) < 1e-6);
});

Deno.test("export --turned writes only a model that matches its pieces; bad pieces are refused by name", async () => {
  await using temp = await tempDir();
  const classifier = await Deno.readFile(BASELINE);
  const written = join(temp.path, "turned.onnx");
  const result = await exportTurned({
    classifier,
    angle: constantAngleNetwork(0.5),
    settings: { gateDegrees: 20, pick: "gate" },
    onnxPath: written,
    verificationPixels: digits,
  });
  assert.ok(result.maxAbsDifference < 1e-4);
  assert.equal(result.images, 200);
  const session = await OnnxClassifier.load(written);
  assert.equal((await session.predict(digits.subarray(0, 784 * 3))).length, 30);
  await session.release();
  assert.throws(
    () => mergeTurned(classifier, constantAngleNetwork(0.5, "nchw"), settingsOf("gate")),
    (error: Error) =>
      error instanceof TurnedError && /angle network takes \["N",1,28,28\]/.test(error.message),
  );
  // The pieces swapped: each refused for what it gives.
  assert.throws(
    () => mergeTurned(constantAngleNetwork(0.5), constantAngleNetwork(0.5), settingsOf("gate")),
    (error: Error) =>
      error instanceof TurnedError &&
      error.message === "The classifier gives 1 values a digit, not 10 class scores.",
  );
  assert.throws(
    () => mergeTurned(classifier, classifier, settingsOf("gate")),
    (error: Error) =>
      error instanceof TurnedError &&
      error.message === "The angle network gives 10 values a digit, not one angle.",
  );
  assert.throws(
    () => mergeTurned(new Uint8Array([1, 2, 3]), constantAngleNetwork(0.5), settingsOf("gate")),
    (error: Error) =>
      error instanceof TurnedError && /^The classifier is not an ONNX/.test(error.message),
  );
  // The command: refusals in one sentence, nothing written.
  const out = join(temp.path, "cli.onnx");
  const cases: Array<[string[], RegExp]> = [
    [["--turned", BASELINE, "--out", out], /^error: --turned needs --turn ANGLE\.onnx/],
    [
      ["--turned", BASELINE, "--turn", join(temp.path, "none.onnx"), "--out", out],
      /^error: There is no angle network at .*none\.onnx\.$/,
    ],
    [
      ["--turned", BASELINE, "--turn", written, "--pick", "best"],
      /^error: --pick must be gate or confident, got "best"\.$/,
    ],
    [["--gate", "30"], /^error: --gate goes with --turned\.$/],
  ];
  for (const [args, message] of cases) {
    const run = await runScript("export/main.ts", args);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, message);
  }
  await assert.rejects(Deno.stat(out));
});

function settingsOf(pick: "gate" | "confident") {
  return { gateDegrees: 20, pick };
}

Deno.test("train:turn trains, resumes and refuses another seed; the angle network leaks no tensors", async () => {
  await useWasmBackend();
  const model = buildTurnNetwork();
  const before = tf.memory().numTensors;
  const read = readTurns(model, digits.subarray(0, 784 * 10));
  assert.equal(read.length, 10);
  assert.equal(tf.memory().numTensors, before);
  model.dispose();

  await using temp = await tempDir();
  const flags = ["--limit", "256", "--engine", "wasm", "--out", temp.path];
  const first = await runScript("train/turn_main.ts", [...flags, "--epochs", "1"]);
  assert.equal(first.code, 0, first.stderr);
  const metricsPath = join(temp.path, "metrics", "turn_training.json");
  const once = JSON.parse(await Deno.readTextFile(metricsPath));
  assert.equal(once.history.length, 1);
  assert.equal(once.seed, 42);
  assert.ok(once.validation.mean_degrees > 0 && once.test.digits === 256);
  const again = await runScript("train/turn_main.ts", [...flags, "--epochs", "2", "--resume"]);
  assert.equal(again.code, 0, again.stderr);
  const twice = JSON.parse(await Deno.readTextFile(metricsPath));
  assert.equal(twice.history.length, 2);
  assert.deepEqual(twice.history[0], once.history[0]);
  // Resumed without --epochs, a finished run keeps its own count: nothing more to train.
  const same = await runScript("train/turn_main.ts", [...flags, "--resume"]);
  assert.equal(same.code, 0, same.stderr);
  assert.equal(JSON.parse(await Deno.readTextFile(metricsPath)).history.length, 2);
  const other = await runScript("train/turn_main.ts", [...flags, "--resume", "--seed", "7"]);
  assert.equal(other.code, 1);
  assert.match(other.stderr, /^error: --resume continues the run in .* with its own seed \(42\)/);
  // Its export is a model ONNX Runtime runs: one angle per digit.
  const onnxPath = join(temp.path, "turn.onnx");
  const exported = await runScript("export/main.ts", [
    ...["--model", join(temp.path, "models", "turn"), "--out", onnxPath],
  ]);
  assert.equal(exported.code, 0, exported.stderr);
  // Its metadata names no classes: it gives an angle.
  const metadata = onnxMetadata(await Deno.readFile(onnxPath));
  assert.equal(metadata.class_labels, undefined);
  assert.match(metadata.output, /^1 value\(s\) a digit/);
});

Deno.test("the lab and the evaluations take a turned model and leave the angle network beside it out", async () => {
  await using temp = await tempDir();
  const classifier = await Deno.readFile(BASELINE);
  const angle = constantAngleNetwork(0.5);
  await Deno.writeFile(join(temp.path, "turn.onnx"), angle);
  await Deno.writeFile(
    join(temp.path, "turned.onnx"),
    onnx.ModelProto.encode(mergeTurned(classifier, angle, settingsOf("confident"))).finish(),
  );
  // The folder's listing for eval:robustness and eval:handwriting leaves it out too.
  assert.deepEqual(
    await classifierFiles([join(temp.path, "turn.onnx"), join(temp.path, "turned.onnx"), BASELINE]),
    [join(temp.path, "turned.onnx"), BASELINE],
  );
  const served = await loadServedModels(temp.path, temp.path, { threads: 1 });
  try {
    assert.deepEqual(served.map((model) => model.name), ["turned"]);
    assert.equal((await served[0].classifier.predict(digits.subarray(0, 784))).length, 10);
  } finally {
    for (const model of served) await model.classifier.release();
  }
  await Deno.remove(join(temp.path, "turned.onnx"));
  await assert.rejects(
    loadServedModels(temp.path, temp.path, { threads: 1 }),
    /holds no classifiers to serve\.$/,
  );
});
