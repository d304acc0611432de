/**
 * The residual, separable, transformer and VGG-style families: the layers each builds,
 * the attention layer against a plain reference and through save and load,
 * LayerNorm's training path against tfjs's own, exports that verify, and
 * each family through the project's commands (train one short epoch,
 * resume, export).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { onnx, type OnnxTypes } from "../deps.ts";
import { tf } from "../deps_tfjs.ts";
import { exportModel } from "../export/export_model.ts";
import { useWasmBackend } from "../kernels/backend.ts";
import { MultiHeadSelfAttention } from "../models/attention_layers.ts";
import { buildModel } from "../models/architectures.ts";
import { loadLayersModel, saveLayersModel } from "../models/layers_io.ts";
import { Random } from "../util/random.ts";
import { randomizeWeights } from "./random_weights.ts";
import { runScript } from "./run_script.ts";
import { tempDir } from "./temp_dir.ts";

await useWasmBackend();

const random = new Random(33);
const pixels = Float32Array.from({ length: 16 * 784 }, () => random.next());

const count = (model: tf.LayersModel, className: string) =>
  model.layers.filter((layer) => layer.getClassName() === className).length;
const conv = (k: number, cin: number, cout: number) => k * k * cin * cout;
/** BatchNorm: gamma and beta trainable, moving mean and variance not. */
const bn = (channels: number) => 4 * channels;

Deno.test("resnet: a stem, residual blocks of 32 | 64, 64 with a 1x1 projection where the width changes, global average pooling", () => {
  const model = buildModel("resnet");
  assert.equal(count(model, "Add"), 3);
  assert.equal(count(model, "GlobalAveragePooling2D"), 1);
  assert.equal(count(model, "BatchNormalization"), 1 + 2 + 3 + 2);
  // Each Add takes its block's second BatchNorm and the block's input (the skip).
  const add = model.getLayer("stage1_block1_add");
  const inbound = (add.inboundNodes[0].inboundLayers as tf.layers.Layer[]).map((l) => l.name);
  assert.deepEqual(inbound, ["stage1_block1_b_bn", "stage1_pool"]);
  const expected = conv(3, 1, 32) + bn(32) + // stem
    2 * (conv(3, 32, 32) + bn(32)) + // 32 → 32 at 14×14
    conv(3, 32, 64) + conv(3, 64, 64) + 2 * bn(64) + conv(1, 32, 64) + bn(64) + // projected
    2 * (conv(3, 64, 64) + bn(64)) + // 64 → 64 at 7×7
    64 * 10 + 10;
  assert.equal(model.countParams(), expected);
  model.dispose();
});

Deno.test("separable: depthwise 3x3 then pointwise 1x1, each BatchNorm-ReLU, in blocks of 64, 64 | 128, 128", () => {
  const model = buildModel("separable");
  const depthwise = model.layers.filter((l) => l.getClassName() === "DepthwiseConv2D");
  assert.deepEqual(depthwise.map((l) => l.getWeights()[0].shape), [
    [3, 3, 32, 1],
    [3, 3, 64, 1],
    [3, 3, 64, 1],
    [3, 3, 128, 1],
  ]);
  const pointwise = model.layers.filter((l) =>
    l.getClassName() === "Conv2D" && l.getWeights()[0].shape[0] === 1
  );
  assert.deepEqual(pointwise.map((l) => l.getWeights()[0].shape.slice(2)), [
    [32, 64],
    [64, 64],
    [64, 128],
    [128, 128],
  ]);
  const expected = conv(3, 1, 32) + bn(32) +
    [[32, 64], [64, 64], [64, 128], [128, 128]].reduce(
      (sum, [cin, cout]) => sum + 9 * cin + bn(cin) + cin * cout + bn(cout),
      0,
    ) + 128 * 10 + 10;
  assert.equal(model.countParams(), expected);
  model.dispose();
});

Deno.test("vit: 4x4 patches as 49 tokens of 64, position embedding, four pre-norm blocks of 4-head attention and a GELU MLP", () => {
  const model = buildModel("vit");
  assert.equal(count(model, "MultiHeadSelfAttention"), 4);
  assert.equal(count(model, "LayerNormalization"), 9);
  assert.equal(count(model, "Add"), 8);
  const positions = model.getLayer("positions");
  assert.deepEqual(positions.getWeights()[0].shape, [49, 64]);
  const mlp = model.getLayer("block1_mlp1").getConfig();
  assert.equal(mlp.activation, "gelu");
  assert.equal(mlp.units, 128);
  const width = 64;
  const block = 2 * 2 * width + 4 * (width * width + width) + (width * 128 + 128) +
    (128 * width + width);
  const expected = 16 * width + width + 49 * width + 4 * block + 2 * width + width * 10 + 10;
  assert.equal(model.countParams(), expected);
  model.dispose();
});

Deno.test("vgg: pairs of 3x3 BatchNorm convs 32, 32 | 64, 64 | 128, each block pooled, then the robust CNN's head", () => {
  const model = buildModel("vgg");
  const convs = model.layers.filter((l) => l.getClassName() === "Conv2D");
  assert.deepEqual(convs.map((l) => l.getWeights()[0].shape), [
    [3, 3, 1, 32],
    [3, 3, 32, 32],
    [3, 3, 32, 64],
    [3, 3, 64, 64],
    [3, 3, 64, 128],
  ]);
  assert.equal(count(model, "MaxPooling2D"), 3);
  assert.equal(count(model, "BatchNormalization"), 5 + 1);
  // 28 → 14 → 7 → 3: the dense layer reads 3 × 3 × 128 features.
  const expected = conv(3, 1, 32) + conv(3, 32, 32) + 2 * bn(32) +
    conv(3, 32, 64) + conv(3, 64, 64) + 2 * bn(64) + conv(3, 64, 128) + bn(128) +
    3 * 3 * 128 * 128 + bn(128) + 128 * 10 + 10;
  assert.equal(model.countParams(), expected);
  model.dispose();
});

Deno.test("vgg-gap: the VGG's convolutions, then each channel's mean over the positions in place of Flatten", () => {
  const [model, vgg] = [buildModel("vgg-gap"), buildModel("vgg")];
  const classes = (m: tf.LayersModel) => m.layers.map((l) => l.getClassName());
  // The same layers in the same order but the one that joins the last pool to Dense(128).
  assert.deepEqual(
    classes(model),
    classes(vgg).map((name) => name === "Flatten" ? "GlobalAveragePooling2D" : name),
  );
  const pooled = model.layers[classes(model).indexOf("GlobalAveragePooling2D")];
  assert.deepEqual(pooled.outputShape, [null, 128]);
  // Dense(128) reads 128 features instead of 3 × 3 × 128.
  assert.equal(vgg.countParams() - model.countParams(), (3 * 3 - 1) * 128 * 128);
  // A digit moved by whole pooled positions gives the head the same features.
  const pool = tf.layers.globalAveragePooling2d({});
  const map = tf.tidy(() => tf.randomUniform([1, 3, 3, 128], 0, 1, "float32", 5));
  const shifted = tf.tidy(() => tf.reverse(map, 1));
  const [a, b] = [pool.apply(map) as tf.Tensor, pool.apply(shifted) as tf.Tensor];
  assert.ok(tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).arraySync() as number) < 1e-6);
  tf.dispose([map, shifted, a, b]);
  model.dispose();
  vgg.dispose();
});

/** Self-attention by the textbook, in float64 loops: the layer's reference. */
function referenceAttention(
  x: number[][][],
  weights: Record<string, number[]>,
  heads: number,
): number[][][] {
  const width = x[0][0].length;
  const depth = width / heads;
  const project = (row: number[], part: string) =>
    Array.from(
      { length: width },
      (_, o) =>
        row.reduce((sum, v, i) => sum + v * weights[`${part}_kernel`][i * width + o], 0) +
        weights[`${part}_bias`][o],
    );
  return x.map((tokens) => {
    const q = tokens.map((t) => project(t, "query"));
    const k = tokens.map((t) => project(t, "key"));
    const v = tokens.map((t) => project(t, "value"));
    const merged = tokens.map(() => new Array(width).fill(0));
    for (let h = 0; h < heads; h++) {
      const slice = (row: number[]) => row.slice(h * depth, (h + 1) * depth);
      for (let i = 0; i < tokens.length; i++) {
        const scores = k.map((key) =>
          slice(q[i]).reduce((s, a, d) => s + a * slice(key)[d], 0) / Math.sqrt(depth)
        );
        const max = Math.max(...scores);
        const exp = scores.map((s) => Math.exp(s - max));
        const total = exp.reduce((a, b) => a + b, 0);
        for (let j = 0; j < tokens.length; j++) {
          for (let d = 0; d < depth; d++) {
            merged[i][h * depth + d] += exp[j] / total * v[j][h * depth + d];
          }
        }
      }
    }
    return merged.map((row) => project(row, "output"));
  });
}

Deno.test("self-attention equals the textbook computation, and saves and loads with identical outputs", async () => {
  const input = tf.input({ shape: [5, 6] });
  const layer = new MultiHeadSelfAttention({ heads: 3, name: "attention" });
  const model = tf.model({ inputs: input, outputs: layer.apply(input) as tf.SymbolicTensor });
  randomizeWeights(model, random);
  const values = Array.from(
    { length: 2 },
    () => Array.from({ length: 5 }, () => Array.from({ length: 6 }, () => random.uniform(-1, 1))),
  );
  const weights = Object.fromEntries(
    layer.weights.map((w) => [w.originalName.split("/").at(-1)!, Array.from(w.read().dataSync())]),
  );
  const expected = referenceAttention(values, weights, 3).flat(2);
  const x = tf.tensor3d(values);
  const before = tf.memory().numTensors;
  const actual = tf.tidy(() => Array.from((model.predict(x) as tf.Tensor).dataSync()));
  assert.equal(tf.memory().numTensors, before, "no tensor leaks");
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) < 1e-5, `${i}: ${actual[i]} vs ${expected[i]}`);
  }
  await using dir = await tempDir();
  await saveLayersModel(model, dir.path);
  const loaded = await loadLayersModel(dir.path);
  const reloaded = tf.tidy(() => Array.from((loaded.predict(x) as tf.Tensor).dataSync()));
  assert.deepEqual(reloaded, actual);
  assert.equal(loaded.layers[1].getClassName(), "MultiHeadSelfAttention");
  tf.dispose(x);
  model.dispose();
  loaded.dispose();
});

Deno.test("self-attention refuses a width its heads do not divide, in one sentence", () => {
  const input = tf.input({ shape: [5, 6] });
  assert.throws(
    () => new MultiHeadSelfAttention({ heads: 4 }).apply(input),
    /^Error: Token width 6 does not divide into 4 heads\.$/,
  );
});

Deno.test("LayerNorm's training path gives tfjs's own outputs and gradients", () => {
  const layer = tf.layers.layerNormalization({ epsilon: 1e-3 });
  const x = tf.randomNormal([3, 7, 8], 0.5, 2, "float32", 5);
  layer.apply(x);
  layer.setWeights([
    tf.randomNormal([8], 1, 0.3, "float32", 6),
    tf.randomNormal([8], 0, 0.3, "float32", 7),
  ]);
  const run = (training: boolean) =>
    tf.tidy(() => {
      const [gx, y] = [
        tf.grad((input: tf.Tensor) =>
          tf.sum(
            tf.mul(
              layer.apply(input, { training }) as tf.Tensor,
              tf.range(0, 168).reshape([3, 7, 8]),
            ),
          )
        )(x),
        layer.apply(x, { training }) as tf.Tensor,
      ];
      return [Array.from(y.dataSync()), Array.from(gx.dataSync())];
    });
  const [fastY, fastGrad] = run(true);
  const [ownY, ownGrad] = run(false);
  fastY.forEach((v, i) => assert.ok(Math.abs(v - ownY[i]) < 1e-5, `output ${i}`));
  const scale = Math.max(...ownGrad.map(Math.abs));
  fastGrad.forEach((v, i) => assert.ok(Math.abs(v - ownGrad[i]) <= 1e-4 * scale, `gradient ${i}`));
  x.dispose();
});

Deno.test("each family exports to ONNX and verifies against tfjs within 1e-5", async () => {
  const expectedOps: Record<string, string[]> = {
    resnet: ["Add", "Conv", "ReduceMean", "Softmax"],
    separable: ["Conv", "ReduceMean"],
    vit: ["Erf", "MatMul", "Reshape", "Softmax", "Transpose", "ReduceMean", "Sqrt"],
    "vgg-gap": ["Conv", "MaxPool", "ReduceMean"],
  };
  for (const [name, ops] of Object.entries(expectedOps)) {
    await using dir = await tempDir();
    const model = buildModel(name as "resnet");
    randomizeWeights(model, random);
    await saveLayersModel(model, dir.path);
    const path = join(dir.path, `${name}.onnx`);
    const result = await exportModel({
      modelDir: dir.path,
      onnxPath: path,
      layout: "nhwc",
      verificationPixels: pixels,
    });
    assert.equal(result.argmaxAgreement, 1, name);
    assert.ok(result.maxAbsDifference <= 1e-5, `${name}: ${result.maxAbsDifference}`);
    const graph = onnx.ModelProto.decode(await Deno.readFile(path)).graph as OnnxTypes.GraphProto;
    const types = new Set(graph.node.map((node) => node.opType));
    for (const op of ops) assert.ok(types.has(op), `${name} has ${op}`);
    // Every BatchNorm follows a bias-free convolution and is folded into it.
    assert.ok(!types.has("BatchNormalization") && (name === "vit" || !types.has("Mul")), name);
    if (name === "separable") {
      const groups = graph.node.filter((node) =>
        node.opType === "Conv" && (node.attribute ?? []).some((a) => a.name === "group")
      );
      assert.equal(groups.length, 4, "four depthwise convolutions as grouped Conv");
    }
    model.dispose();
  }
});

for (const name of ["resnet", "separable", "vit", "vgg-gap"]) {
  Deno.test(`train:${name} trains one short epoch, resumes a second and exports with verification`, async () => {
    await using dir = await tempDir();
    const train = (extra: string[]) =>
      runScript("train/main.ts", ["--model", name, "--limit", "512", "--out", dir.path, ...extra]);
    const first = await train(["--epochs", "1"]);
    assert.equal(first.code, 0, first.stderr);
    const resumed = await train(["--epochs", "2", "--resume"]);
    assert.equal(resumed.code, 0, resumed.stderr);
    const metrics = JSON.parse(
      await Deno.readTextFile(join(dir.path, "metrics", `${name}_metrics.json`)),
    );
    assert.equal(metrics.history.length, 2);
    assert.equal(
      metrics.config.architecture.kind ?? metrics.config.architecture.head,
      { resnet: "residual", separable: "separable", vit: "transformer", "vgg-gap": "average" }[
        name
      ],
    );
    const exported = await runScript("export/main.ts", ["--out", dir.path]);
    assert.equal(exported.code, 0, exported.stderr);
    assert.match(exported.stdout, new RegExp(`${name}\\.onnx .*argmax agreement 100\\.00%`));
  });
}
