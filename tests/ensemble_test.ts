/**
 * Ensembles as one ONNX file: the output equals the mean of the members run
 * separately, members are chosen on validation digits by log loss, and bad
 * requests are refused in one sentence with nothing written.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ort } from "../deps.ts";
import { tf } from "../deps_tfjs.ts";
import { chooseMembers, scoreMean } from "../export/ensemble_choice.ts";
import { choiceDigits, distinctNames } from "../export/ensemble_run.ts";
import { type EnsembleMember, exportEnsemble, mergeEnsemble } from "../export/ensemble.ts";
import { exportModel } from "../export/export_model.ts";
import { useWasmBackend } from "../kernels/backend.ts";
import { saveLayersModel } from "../models/layers_io.ts";
import { onnx } from "../deps.ts";
import { Random } from "../util/random.ts";
import { randomizeWeights } from "./random_weights.ts";
import { runScript } from "./run_script.ts";
import { tempDir } from "./temp_dir.ts";

await useWasmBackend();
const random = new Random(5);
const pixels = Float32Array.from({ length: 12 * 784 }, () => random.next());

/** A small classifier with random weights; `logits` leaves out the softmax. */
function tinyModel(filters: number, logits = false): tf.LayersModel {
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters, kernelSize: 3, strides: 2 }),
      tf.layers.globalAveragePooling2d({}),
      tf.layers.dense({ units: 10, activation: logits ? "linear" : "softmax" }),
    ],
  });
}

/** Exports tiny models to `dir/models/<name>.onnx` and returns them as members. */
async function exportedMembers(
  dir: string,
  specs: Array<{ name: string; filters: number; logits?: boolean; layout?: "nhwc" | "nchw" }>,
): Promise<EnsembleMember[]> {
  const members: EnsembleMember[] = [];
  for (const spec of specs) {
    const model = tinyModel(spec.filters, spec.logits);
    randomizeWeights(model, random);
    const modelDir = join(dir, "tfjs", spec.name);
    await saveLayersModel(model, modelDir);
    const onnxPath = join(dir, "models", `${spec.name}.onnx`);
    await exportModel({
      modelDir,
      onnxPath,
      layout: spec.layout ?? "nhwc",
      verificationPixels: pixels,
    });
    members.push({ name: spec.name, bytes: await Deno.readFile(onnxPath) });
    model.dispose();
  }
  return members;
}

/** Runs `deno task export` with `args` and checks it is refused: exit 2 and `message`. */
async function assertExportRefused(args: string[], message: RegExp) {
  const result = await runScript("export/main.ts", args);
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, message);
}

async function run(bytes: Uint8Array, images: Float32Array): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  const count = images.length / 784;
  const out = await session.run({ input: new ort.Tensor("float32", images, [count, 28, 28, 1]) });
  await session.release();
  return out[session.outputNames[0]].data as Float32Array;
}

const softmax = (row: Float32Array) => {
  const max = Math.max(...row);
  const exp = Array.from(row, (v) => Math.exp(v - max));
  const sum = exp.reduce((a, b) => a + b, 0);
  return exp.map((v) => v / sum);
};

Deno.test("the ensemble's output equals the mean of its members' probabilities within 1e-5 (a logits member through softmax)", async () => {
  await using dir = await tempDir();
  const members = await exportedMembers(dir.path, [
    { name: "a", filters: 4 },
    { name: "b", filters: 6 },
    { name: "c", filters: 3, logits: true },
  ]);
  const onnxPath = join(dir.path, "models", "ensemble.onnx");
  const result = await exportEnsemble({ members, onnxPath, verificationPixels: pixels });
  assert.ok(result.maxAbsDifference <= 1e-5);
  const together = await run(await Deno.readFile(onnxPath), pixels);
  const separately = await Promise.all(members.map((member) => run(member.bytes, pixels)));
  for (let image = 0; image < 12; image++) {
    const rows = separately.map((out, m) => {
      const row = out.subarray(image * 10, image * 10 + 10);
      return m === 2 ? softmax(row) : Array.from(row);
    });
    for (let c = 0; c < 10; c++) {
      const mean = rows.reduce((sum, row) => sum + row[c], 0) / 3;
      assert.ok(Math.abs(together[image * 10 + c] - mean) <= 1e-5, `${image}, ${c}`);
    }
  }
  const decoded = onnx.ModelProto.decode(await Deno.readFile(onnxPath));
  assert.equal(decoded.graph!.node!.at(-1)!.opType, "Mean");
  assert.equal(decoded.graph!.input!.length, 1, "one shared input");
  const metadata = Object.fromEntries(decoded.metadataProps.map((p) => [p.key, p.value]));
  assert.deepEqual(JSON.parse(metadata.ensemble_members!).map((m: { name: string }) => m.name), [
    "a",
    "b",
    "c",
  ]);
});

Deno.test("an ensemble refuses one member, repeated names and members of different layouts", async () => {
  await using dir = await tempDir();
  const members = await exportedMembers(dir.path, [
    { name: "a", filters: 2 },
    { name: "b", filters: 2, layout: "nchw" },
  ]);
  assert.throws(
    () => mergeEnsemble([members[0]]),
    /^Error: An ensemble needs at least two members, got 1\.$/,
  );
  assert.throws(() => mergeEnsemble([members[0], members[0]]), /distinct names/);
  assert.throws(
    () => mergeEnsemble(members),
    /^Error: Members take different inputs: a .*, b .* \(export them with the same --layout\)\.$/,
  );
});

Deno.test("members are chosen greedily by validation log loss: the best single model, then whoever lowers the loss", () => {
  // Eight digits of class 0. a is sure and right on the first four, unsure on
  // the rest; b the other way round; c is moderately right everywhere.
  const labels = new Uint8Array(8);
  const rows = (right: (i: number) => number) =>
    Float32Array.from({ length: 80 }, (_, k) => {
      const i = Math.floor(k / 10), c = k % 10;
      return c === 0 ? right(i) : (1 - right(i)) / 9;
    });
  const probabilities = new Map([
    ["a", rows((i) => (i < 4 ? 0.99 : 0.3))],
    ["b", rows((i) => (i < 4 ? 0.3 : 0.99))],
    ["c", rows(() => 0.6)],
  ]);
  const choice = chooseMembers(probabilities, labels);
  // c starts; a alone makes it worse (a second member joins all the same),
  // but b then covers a's unsure digits.
  assert.deepEqual(choice.members, ["c", "a", "b"]);
  const alone = scoreMean(probabilities, ["c"], labels).logLoss;
  assert.equal(choice.steps[0].logLoss, alone);
  assert.ok(choice.steps[1].logLoss > alone && choice.steps[2].logLoss < alone);
  // The loss is the mean of −ln p(true class) of the averaged probabilities.
  const expected = -(4 * Math.log((0.99 + 0.3 + 0.6) / 3) + 4 * Math.log((0.3 + 0.99 + 0.6) / 3)) /
    8;
  assert.ok(Math.abs(choice.steps[2].logLoss - expected) < 1e-6);
});

Deno.test("the choice scores the validation digits and, by default, a seeded corrupted copy of each", () => {
  const labels = Uint8Array.from({ length: 12 }, (_, i) => i % 10);
  const clean = choiceDigits(pixels, labels, "clean");
  assert.equal(clean.pixels, pixels);
  const both = choiceDigits(pixels, labels, "clean+corrupted");
  assert.equal(both.pixels.length, 2 * pixels.length);
  assert.deepEqual(both.pixels.subarray(0, pixels.length), pixels);
  assert.deepEqual([...both.labels], [...labels, ...labels]);
  const copies = both.pixels.subarray(pixels.length);
  for (let image = 0; image < 12; image++) {
    const at = image * 784;
    assert.notDeepEqual(copies.subarray(at, at + 784), pixels.subarray(at, at + 784));
  }
  assert.deepEqual(choiceDigits(pixels, labels, "clean+corrupted").pixels, both.pixels);
});

Deno.test("members given as files of one name are named by their run's folder", () => {
  const named = distinctNames([
    { name: "robust", path: "results/models/robust.onnx" },
    { name: "robust", path: "results/seeds/seed-43/models/robust.onnx" },
    { name: "resnet", path: "results/seeds/seed-43/models/resnet.onnx" },
    { name: "robust", path: "elsewhere/robust.onnx" },
  ]).map((member) => member.name);
  assert.deepEqual(named, ["results/robust", "seed-43/robust", "resnet", "elsewhere/robust"]);
  // Two seed-43 runs of one model, one in a folder of its own: as many folders as tell them apart.
  const deeper = distinctNames([
    { name: "vgg", path: "results/seeds/seed-43/models/vgg.onnx" },
    { name: "vgg", path: "results/clean/seeds/seed-43/models/vgg.onnx" },
    { name: "vgg", path: "results/clean/models/vgg.onnx" },
  ]).map((member) => member.name);
  assert.deepEqual(deeper, ["results/seeds/seed-43/vgg", "clean/seeds/seed-43/vgg", "clean/vgg"]);
});

Deno.test("export --ensemble: auto writes the choice and the file; a missing member or a lone one is one sentence, nothing written", async () => {
  await using dir = await tempDir();
  await exportedMembers(dir.path, [{ name: "a", filters: 3 }, { name: "b", filters: 5 }]);
  await Deno.mkdir(join(dir.path, "metrics"));
  for (const name of ["a", "b"]) {
    await Deno.writeTextFile(
      join(dir.path, "metrics", `${name}_metrics.json`),
      JSON.stringify({ seed: 42, config: { validation: 300 } }),
    );
  }
  const auto = await runScript("export/main.ts", ["--ensemble", "auto", "--out", dir.path]);
  assert.equal(auto.code, 0, auto.stderr);
  assert.match(auto.stdout, /validation digits held out by every candidate \(seed 42\): 300/);
  const choice = JSON.parse(
    await Deno.readTextFile(join(dir.path, "metrics", "ensemble_choice.json")),
  );
  assert.equal(choice.members.length, 2);
  assert.equal(choice.validation_images, 300);
  assert.match(choice.digits, /under the robust recipe's augmentation/);
  await assertExportRefused([
    "--ensemble",
    "auto",
    "--choose-on",
    "test",
    "--out",
    dir.path,
  ], /^error: --choose-on must be clean\+corrupted or clean, got "test"\.$/);
  await Deno.remove(join(dir.path, "models", "ensemble.onnx"));
  await assertExportRefused(
    ["--ensemble", "a,zzz", "--out", dir.path],
    /^error: Ensemble member .*zzz\.onnx does not exist: export it first \(deno task export\)\.$/,
  );
  await assertExportRefused(["--ensemble", "a", "--out", dir.path], /needs two or more members/);
  await assertExportRefused([
    "--ensemble",
    "a,b",
    "--name",
    "../x",
    "--out",
    dir.path,
  ], /^error: --name must be letters, digits, "-" or "_" .*, got "\.\.\/x"\.$/);
  const files = [...Deno.readDirSync(join(dir.path, "models"))].map((entry) => entry.name).sort();
  assert.deepEqual(files, ["a.onnx", "b.onnx"]);
  // A named ensemble beside them; auto still chooses among trained models only.
  const named = await runScript("export/main.ts", [
    "--ensemble",
    "a,b",
    "--name",
    "committee",
    "--out",
    dir.path,
  ]);
  assert.equal(named.code, 0, named.stderr);
  const committee = onnx.ModelProto.decode(
    await Deno.readFile(join(dir.path, "models", "committee.onnx")),
  );
  const modelName = committee.metadataProps?.find((entry) => entry.key === "model_name");
  assert.equal(modelName?.value, "committee");
  const again = await runScript("export/main.ts", ["--ensemble", "auto", "--out", dir.path]);
  assert.equal(again.code, 0, again.stderr);
  assert.doesNotMatch(again.stdout, /committee:/);
});

Deno.test("export --ensemble auto: a candidate from another run's folder brings that run's metrics", async () => {
  await using dir = await tempDir();
  const other = join(dir.path, "other");
  await exportedMembers(dir.path, [{ name: "a", filters: 3 }]);
  await exportedMembers(other, [{ name: "a", filters: 5 }]);
  const writeMetrics = async (runDir: string, validation: number) => {
    await Deno.mkdir(join(runDir, "metrics"), { recursive: true });
    await Deno.writeTextFile(
      join(runDir, "metrics", "a_metrics.json"),
      JSON.stringify({ seed: 42, config: { validation } }),
    );
  };
  await writeMetrics(dir.path, 300);
  const otherModel = join(other, "models", "a.onnx");
  const args = ["--ensemble", "auto", "--candidates", `a,${otherModel}`, "--out", dir.path];
  await assertExportRefused(args, /other\/metrics\/a_metrics\.json cannot be read/);
  // The other run held out fewer digits: the choice reads the 200 both held out.
  await writeMetrics(other, 200);
  const chosen = await runScript("export/main.ts", args);
  assert.equal(chosen.code, 0, chosen.stderr);
  assert.match(chosen.stdout, /held out by every candidate \(seed 42\): 200/);
  assert.match(chosen.stdout, /^ {2}other\/a: log loss/m);
  const choice = JSON.parse(
    await Deno.readTextFile(join(dir.path, "metrics", "ensemble_choice.json")),
  );
  assert.ok(choice.members.includes("other/a"), JSON.stringify(choice.members));
  const record = JSON.parse(
    await Deno.readTextFile(join(dir.path, "metrics", "ensemble_members.json")),
  );
  assert.deepEqual(
    record.members.find((member: { name: string }) => member.name === "other/a").file,
    otherModel,
  );
});
