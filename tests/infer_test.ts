import assert from "node:assert/strict";
import { join } from "node:path";
import { onnx, sharp } from "../deps.ts";
import { type Dim, GraphBuilder, tensorValueInfo } from "../export/onnx_graph.ts";
import { detectLayout, OnnxClassifier, softmaxRows } from "../infer/classifier.ts";
import { classifyFiles } from "../infer/run.ts";
import { tempDir } from "./temp_dir.ts";

/**
 * A tiny linear "classifier": logit k = 10 · pixel k (the first ten pixels
 * of row 0), optionally followed by Softmax.
 */
async function tinyModel(
  dir: string,
  name: string,
  inputDims: Dim[],
  softmax: boolean,
): Promise<string> {
  const graph = new GraphBuilder();
  const features = (inputDims.slice(1) as number[]).reduce((a, b) => a * b, 1);
  const weights = new Float32Array(features * 10);
  for (let k = 0; k < 10; k++) weights[k * 10 + k] = 10;
  let x = "input";
  graph.name(x);
  if (inputDims.length === 4) x = graph.node("Flatten", [x], "flat", { axis: 1 });
  let y = graph.node("MatMul", [x, graph.constant("w", [features, 10], weights)], "logits");
  if (softmax) y = graph.node("Softmax", [y], "probabilities", { axis: -1 });
  const model = onnx.ModelProto.create({
    irVersion: 7,
    opsetImport: [{ domain: "", version: 13 }],
    graph: {
      name,
      node: graph.nodes,
      initializer: graph.initializers,
      input: [tensorValueInfo("input", inputDims)],
      output: [tensorValueInfo(y, [inputDims[0], 10])],
    },
  });
  const path = join(dir, `${name}.onnx`);
  await Deno.writeFile(path, onnx.ModelProto.encode(model).finish());
  return path;
}

/** Images whose pixel `digit` (row 0) is the brightest of the first ten. */
function probeImages(digits: number[]): Float32Array {
  const pixels = new Float32Array(digits.length * 784);
  digits.forEach((digit, i) => {
    for (let k = 0; k < 10; k++) pixels[i * 784 + k] = k === digit ? 0.5 : 0.1;
  });
  return pixels;
}

Deno.test("input layout detection from the model's input shape", () => {
  assert.equal(detectLayout(["N", 28, 28, 1]), "nhwc");
  assert.equal(detectLayout([1, 1, 28, 28]), "nchw");
  assert.equal(detectLayout(["batch", 784]), "flat");
  assert.equal(detectLayout(["N", 3, 32, 32]), undefined);
  assert.equal(detectLayout(["N", 28, 28]), undefined);
});

Deno.test("models of each layout, batch fixed or dynamic, probabilities or logits", async () => {
  await using dirTemp = await tempDir();
  const dir = dirTemp.path;
  const digits = [3, 0, 9, 7, 7];
  const kinds: Array<[string, Dim[], boolean, string]> = [
    ["nhwc-probabilities", ["N", 28, 28, 1], true, "nhwc"],
    ["nchw-logits", ["N", 1, 28, 28], false, "nchw"],
    ["flat-logits", ["N", 784], false, "flat"],
    ["fixed-batch-2", [2, 1, 28, 28], true, "nchw"],
  ];
  for (const [name, dims, softmax, layout] of kinds) {
    const classifier = await OnnxClassifier.load(await tinyModel(dir, name, dims, softmax));
    assert.equal(classifier.info.layout, layout, name);
    const probabilities = await classifier.predict(probeImages(digits));
    assert.equal(probabilities.length, digits.length * 10);
    assert.equal(classifier.outputsLogits, !softmax, name);
    // Either way the rows are softmax(10 · pixels).
    const expected = softmaxRows(
      Float32Array.from(probeImages(digits).filter((_, i) => i % 784 < 10).map((v) => v * 10)),
      10,
    );
    probabilities.forEach((p, i) => assert.ok(Math.abs(p - expected[i]) < 1e-5, `${name} [${i}]`));
    await classifier.release();
  }
});

Deno.test("models that are not ONNX, or cannot take 28x28 images, are refused in one sentence", async () => {
  await using dirTemp = await tempDir();
  const dir = dirTemp.path;
  const text = join(dir, "notes.onnx");
  await Deno.writeTextFile(text, "this is not a model");
  await assert.rejects(() => OnnxClassifier.load(text), {
    message: new RegExp(`^${text} is not an ONNX model that ONNX Runtime can load \\(.*\\)\\.$`),
  });
  const cifar = await tinyModel(dir, "cifar", ["N", 3, 32, 32], true);
  await assert.rejects(() => OnnxClassifier.load(cifar), {
    message: /takes input "input" of shape \[N, 3, 32, 32\], which cannot hold a 28x28 image/,
  });
  await assert.rejects(() => OnnxClassifier.load(join(dir, "missing.onnx")), {
    message: /missing\.onnx does not exist\.$/,
  });
});

/** Sets a PNG's IHDR size (and its CRC), to fake an enormous image cheaply. */
function withPngSize(png: Uint8Array, width: number, height: number): Uint8Array {
  const out = png.slice();
  const view = new DataView(out.buffer);
  view.setUint32(16, width);
  view.setUint32(20, height);
  let crc = 0xffffffff;
  for (const byte of out.subarray(12, 29)) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  view.setUint32(29, (crc ^ 0xffffffff) >>> 0);
  return out;
}

Deno.test("each bad image (empty, not an image, truncated, blank, fully transparent, one pixel, over the pixel limit) gets its own error line and the others are still classified", async () => {
  await using dirTemp = await tempDir();
  const dir = dirTemp.path;
  const classifier = await OnnxClassifier.load(await tinyModel(dir, "m", ["N", 784], true));
  const digit = await sharp({
    create: { width: 60, height: 60, channels: 3, background: "#fff" },
  })
    .composite([{
      input: await sharp({ create: { width: 20, height: 40, channels: 3, background: "#000" } })
        .png().toBuffer(),
      left: 20,
      top: 10,
    }])
    .png()
    .toBuffer();
  const blank = await sharp({
    create: { width: 40, height: 40, channels: 3, background: "#fff" },
  }).png().toBuffer();
  const tiny = await sharp({ create: { width: 1, height: 1, channels: 3, background: "#000" } })
    .png().toBuffer();
  // Black ink, fully transparent: flattened onto white, nothing is left.
  const clear = await sharp({
    create: { width: 40, height: 40, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } },
  }).png().toBuffer();
  const files: Record<string, Uint8Array> = {
    "good.png": new Uint8Array(digit),
    "empty.png": new Uint8Array(0),
    "truncated.png": new Uint8Array(digit).subarray(0, 60),
    "text.jpg": new TextEncoder().encode("not an image"),
    "blank.png": new Uint8Array(blank),
    "tiny.png": new Uint8Array(tiny),
    "transparent.png": new Uint8Array(clear),
    "enormous.png": withPngSize(new Uint8Array(blank), 30000, 30000),
  };
  for (const [name, bytes] of Object.entries(files)) await Deno.writeFile(join(dir, name), bytes);
  const results = await classifyFiles(classifier, [dir, join(dir, "absent.png")], {
    savePreprocessedDir: join(dir, "seen"),
  });
  const byName = Object.fromEntries(results.map((r) => [r.file.split("/").at(-1)!, r]));
  const error = (name: string) => {
    const result = byName[name];
    assert.ok("error" in result, `${name} should fail`);
    return result.error;
  };
  assert.match(error("empty.png"), /empty\.png is empty \(0 bytes\)\.$/);
  assert.match(
    error("truncated.png"),
    /truncated\.png cannot be decoded: it is truncated or corrupt/,
  );
  assert.match(error("text.jpg"), /text\.jpg is not an image in a format sharp can decode\.$/);
  assert.match(error("blank.png"), /blank\.png has no ink: the image is blank\.$/);
  assert.match(error("transparent.png"), /transparent\.png has no ink: the image is blank\.$/);
  assert.match(error("tiny.png"), /tiny\.png is 1x1 pixels, too small to hold a digit/);
  assert.match(
    error("enormous.png"),
    /enormous\.png is too large: it exceeds the decoder's limit of 268 megapixels\.$/,
  );
  assert.match(error("absent.png"), /absent\.png does not exist\.$/);
  const good = byName["good.png"];
  assert.ok(!("error" in good) && good.top.length === 3 && good.preprocessed);
  const seen = await sharp(await Deno.readFile(good.preprocessed!)).metadata();
  assert.deepEqual([seen.width, seen.height, seen.channels], [28, 28, 1]);
  await classifier.release();
});
