import assert from "node:assert/strict";
import { join } from "node:path";
import { onnx, type OnnxTypes, ort, ortWeb } from "../deps.ts";
import { tf } from "../deps_tfjs.ts";
import { useWasmBackend } from "../kernels/backend.ts";
import { buildModel } from "../models/architectures.ts";
import { saveLayersModel } from "../models/layers_io.ts";
import { convertToOnnx, type Layout } from "../export/convert.ts";
import { readLayersArtifacts } from "../export/layers_artifacts.ts";
import { exportModel } from "../export/export_model.ts";
import { compareWithTfjs } from "../export/verify.ts";
import { Random } from "../util/random.ts";
import { randomizeWeights } from "./random_weights.ts";
import { tempDir } from "./temp_dir.ts";

await useWasmBackend();

const random = new Random(11);
const pixels = Float32Array.from({ length: 16 * 784 }, () => random.next());

type LayerList = () => tf.layers.Layer[];
const input = { inputShape: [28, 28, 1] };
const TINY_MODELS: Record<string, LayerList> = {
  "conv with bias, same, relu option; dense softmax": () => [
    tf.layers.conv2d({ ...input, filters: 3, kernelSize: 3, padding: "same", activation: "relu" }),
    tf.layers.flatten(),
    tf.layers.dense({ units: 10, activation: "softmax" }),
  ],
  "conv without bias, valid, stride 2; BN folded; relu layer": () => [
    tf.layers.conv2d({ ...input, filters: 4, kernelSize: 3, strides: 2, useBias: false }),
    tf.layers.batchNormalization(),
    tf.layers.activation({ activation: "relu" }),
    tf.layers.flatten(),
    tf.layers.dense({ units: 10 }),
    tf.layers.activation({ activation: "softmax" }),
  ],
  "conv with bias folded with BN; max pool same and valid; dropout": () => [
    tf.layers.conv2d({ ...input, filters: 2, kernelSize: 5, strides: [1, 2], padding: "same" }),
    tf.layers.batchNormalization(),
    tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: "same" }),
    tf.layers.dropout({ rate: 0.3 }),
    tf.layers.conv2d({ filters: 3, kernelSize: 2, padding: "valid", activation: "relu" }),
    tf.layers.maxPooling2d({ poolSize: 2 }),
    tf.layers.flatten(),
    tf.layers.dense({ units: 10, activation: "softmax" }),
  ],
  "BN after relu (not foldable); dense without bias + BN": () => [
    tf.layers.conv2d({ ...input, filters: 3, kernelSize: 3, activation: "relu" }),
    tf.layers.batchNormalization(),
    tf.layers.flatten(),
    tf.layers.dense({ units: 6, useBias: false }),
    tf.layers.batchNormalization(),
    tf.layers.activation({ activation: "relu" }),
    tf.layers.dropout({ rate: 0.5 }),
    tf.layers.dense({ units: 10, activation: "softmax" }),
  ],
  "flatten not followed by dense keeps tfjs's order": () => [
    tf.layers.conv2d({ ...input, filters: 2, kernelSize: 3, strides: 3 }),
    tf.layers.maxPooling2d({ poolSize: 3 }),
    tf.layers.flatten(),
    tf.layers.activation({ activation: "relu" }),
    tf.layers.dense({ units: 10, activation: "softmax" }),
  ],
};

async function savedModel(layers: tf.layers.Layer[], dir: string): Promise<tf.LayersModel> {
  const model = tf.sequential({ layers });
  randomizeWeights(model, random);
  await saveLayersModel(model, dir);
  return model;
}

Deno.test("every supported layer and option: ONNX Runtime equals tfjs within 1e-5, both layouts", async () => {
  for (const [name, layers] of Object.entries(TINY_MODELS)) {
    await using dirTemp = await tempDir();
    const dir = dirTemp.path;
    const model = await savedModel(layers(), dir);
    const artifacts = await readLayersArtifacts(dir);
    for (const layout of ["nhwc", "nchw"] as Layout[]) {
      const bytes = onnx.ModelProto.encode(convertToOnnx(artifacts, { layout })).finish();
      const agreement = await compareWithTfjs(bytes, model, pixels, layout);
      assert.ok(
        agreement.maxAbsDifference <= 1e-5,
        `${name} (${layout}): ${agreement.maxAbsDifference}`,
      );
      assert.equal(agreement.argmaxAgreement, 1, `${name} (${layout})`);
    }
    model.dispose();
  }
});

Deno.test("the robust model exports and verifies against tfjs", async () => {
  await using dirTemp = await tempDir();
  const model = buildModel("robust");
  randomizeWeights(model, random);
  await saveLayersModel(model, dirTemp.path);
  const result = await exportModel({
    modelDir: dirTemp.path,
    onnxPath: join(dirTemp.path, "robust.onnx"),
    layout: "nhwc",
    verificationPixels: pixels,
  });
  assert.equal(result.argmaxAgreement, 1);
  assert.ok(result.maxAbsDifference < 1e-5, `${result.maxAbsDifference}`);
  model.dispose();
});

Deno.test("the improved model decodes back to the expected graph", async () => {
  await using dirTemp = await tempDir();
  const dir = dirTemp.path;
  const model = buildModel("improved");
  randomizeWeights(model, random);
  await saveLayersModel(model, dir);
  const path = join(dir, "improved.onnx");
  const result = await exportModel({
    modelDir: dir,
    onnxPath: path,
    layout: "nhwc",
    verificationPixels: pixels,
  });
  assert.equal(result.argmaxAgreement, 1);
  const decoded = onnx.ModelProto.decode(await Deno.readFile(path));
  const graph = decoded.graph as OnnxTypes.GraphProto;
  // BatchNorm folded into the bias-free convolutions and dense layer; dropout gone.
  assert.deepEqual(graph.node.map((node) => node.opType), [
    "Transpose",
    "Conv",
    "Relu",
    "MaxPool",
    "Conv",
    "Relu",
    "MaxPool",
    "Flatten",
    "Gemm",
    "Relu",
    "Gemm",
    "Softmax",
  ]);
  const shapes = Object.fromEntries(
    graph.initializer.map((t) => [t.name, (t.dims ?? []).map(Number)]),
  );
  assert.deepEqual(Object.values(shapes), [
    [32, 1, 3, 3],
    [32],
    [64, 32, 3, 3],
    [64],
    [3136, 128],
    [128],
    [128, 10],
    [10],
  ]);
  const dims = (info: OnnxTypes.IValueInfoProto) =>
    info.type!.tensorType!.shape!.dim!.map((dim: OnnxTypes.TensorShapeProto.IDimension) =>
      dim.dimParam || Number(dim.dimValue)
    );
  assert.equal(graph.input[0].name, "input");
  assert.deepEqual(dims(graph.input[0]), ["N", 28, 28, 1]);
  assert.equal(graph.output[0].name, "probabilities");
  assert.deepEqual(dims(graph.output[0]), ["N", 10]);
  assert.ok(Number(decoded.opsetImport[0].version) >= 13);
  assert.equal(decoded.producerName, "mnist-cnn-robustness");
  const metadata = Object.fromEntries(
    decoded.metadataProps.map((entry) => [entry.key, entry.value]),
  );
  assert.deepEqual(JSON.parse(metadata.class_labels!), [
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "8",
    "9",
  ]);
  assert.equal(JSON.parse(metadata.preprocessing!).layout, "nhwc");
  assert.match(metadata.exporter!, /^mnist-cnn-robustness tfjs-to-onnx \d/);

  // The same file runs in onnxruntime-web (wasm) with the same answers.
  const bytes = await Deno.readFile(path);
  const feeds = (runtime: typeof ort | typeof ortWeb) => ({
    input: new runtime.Tensor("float32", pixels.slice(0, 4 * 784), [4, 28, 28, 1]),
  });
  const nodeSession = await ort.InferenceSession.create(bytes);
  ortWeb.env.wasm.numThreads = 1;
  const webSession = await ortWeb.InferenceSession.create(bytes);
  const fromNode = (await nodeSession.run(feeds(ort))).probabilities.data as Float32Array;
  const fromWeb = (await webSession.run(feeds(ortWeb))).probabilities.data as Float32Array;
  assert.equal(fromWeb.length, 40);
  fromNode.forEach((value, i) => assert.ok(Math.abs(value - fromWeb[i]) < 1e-5));
  await nodeSession.release();
  await webSession.release();
  model.dispose();
});

async function exportError(
  prepare: (dir: string) => Promise<string | void> | string | void,
  onnxName = "out.onnx",
) {
  await using dirTemp = await tempDir();
  const dir = dirTemp.path;
  const modelDir = (await prepare(dir)) ?? dir;
  const onnxPath = join(dir, onnxName);
  const error = await exportModel({
    modelDir,
    onnxPath,
    layout: "nhwc",
    verificationPixels: pixels,
  })
    .then(() => undefined, (error: Error) => error);
  assert.ok(error, "export should fail");
  await assert.rejects(() => Deno.stat(onnxPath));
  return error.message;
}

Deno.test("unsupported layers and bad model files: one sentence, no file", async () => {
  const tiny = TINY_MODELS["conv with bias, same, relu option; dense softmax"];
  assert.match(
    await exportError(async (dir) => {
      (await savedModel([
        tf.layers.averagePooling2d({ ...input, poolSize: 2 }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 10 }),
      ], dir)).dispose();
    }),
    /^Layer "average_pooling2d_AveragePooling2D\d+" \(AveragePooling2D\) is not supported by the ONNX exporter; supported layers: InputLayer, Conv2D/,
  );
  assert.match(
    await exportError(async (dir) => {
      (await savedModel([
        tf.layers.flatten(input),
        tf.layers.dense({ units: 10, activation: "tanh" }),
      ], dir)).dispose();
    }),
    /cannot be exported: activation "tanh" \(supported: linear, relu, softmax, gelu\)\.$/,
  );
  assert.match(
    await exportError(() => {}),
    /^tfjs model file .*model\.json does not exist\.$/,
  );
  assert.match(
    await exportError((dir) => join(dir, "nowhere")),
    /^Model folder .*nowhere does not exist\.$/,
  );
  assert.match(
    await exportError(async (dir) => {
      await Deno.writeTextFile(join(dir, "model.json"), "{ not json");
    }),
    /^.*model\.json is not valid JSON\.$/,
  );
  assert.match(
    await exportError(async (dir) => {
      (await savedModel(tiny(), dir)).dispose();
      const weights = await Deno.readFile(join(dir, "weights.bin"));
      await Deno.writeFile(join(dir, "weights.bin"), weights.subarray(0, weights.length - 40));
    }),
    /weights\.bin holds \d+ bytes, but the shapes in .*model\.json need \d+: the weights do not match the model\.$/,
  );
  assert.match(
    await exportError(async (dir) => {
      (await savedModel(tiny(), dir)).dispose();
      await Deno.remove(join(dir, "weights.bin"));
    }),
    /^weights file .*weights\.bin does not exist\.$/,
  );
  assert.match(
    await exportError(async (dir) => {
      (await savedModel(tiny(), dir)).dispose();
      await Deno.writeTextFile(join(dir, "blocker"), "a file where a folder should be");
    }, "blocker/out.onnx"),
    /^Cannot write .*blocker\/out\.onnx: /,
  );
});
