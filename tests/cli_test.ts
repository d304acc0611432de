/**
 * Every command, called wrongly, answers with one sentence on stderr and a
 * non-zero exit, and writes nothing.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runScript } from "./run_script.ts";
import { tempDir } from "./temp_dir.ts";

const run = runScript;

async function assertRefused(script: string, args: string[], message: RegExp, code = 2) {
  const result = await run(script, args);
  assert.equal(
    result.code,
    code,
    `${script} ${args.join(" ")}: exit ${result.code}\n${result.stderr}`,
  );
  assert.equal(result.stderr.split("\n").length, 1, `one line expected, got:\n${result.stderr}`);
  assert.match(result.stderr, message);
}

Deno.test("train: bad flags and nothing to resume", async () => {
  await using outTemp = await tempDir();
  const out = outTemp.path;
  await assertRefused(
    "train/main.ts",
    ["--model", "baseline", "--bogus"],
    /^error: Unknown option '--bogus'\. Run with --help for the flags\.$/,
  );
  await assertRefused(
    "train/main.ts",
    ["--model", "baseline", "--epochs", "many"],
    /^error: --epochs must be a whole number, got "many"\.$/,
  );
  await assertRefused(
    "train/main.ts",
    ["--model", "baseline", "--batch-size", "0"],
    /^error: --batch-size must be from 1 to 4096, got 0\.$/,
  );
  await assertRefused(
    "train/main.ts",
    ["--model", "tiny"],
    /^error: --model must be one of baseline, improved, robust, resnet, separable, vit, vgg, vgg-gap, got "tiny"\.$/,
  );
  await assertRefused(
    "train/main.ts",
    ["--model", "baseline", "--distill", "0.5"],
    /^error: --distill needs --teacher\.$/,
  );
  await assertRefused(
    "train/main.ts",
    ["--model", "baseline", "--teacher", "results/models/robust", "--distill", "0"],
    /^error: --distill must be a number above 0 and at most 1, got "0"\.$/,
  );
  await assertRefused(
    "train/main.ts",
    ["--model", "baseline", "--teacher", "/nonexistent/teacher", "--epochs", "1", "--limit", "64"],
    /^error: --teacher \/nonexistent\/teacher holds no model\.json \(a tfjs model folder\)\.$/,
  );
  await assertRefused(
    "train/main.ts",
    ["--model", "vgg", "--recipe", "robust"],
    /^error: --recipe must be one of clean, light, mild, mild-turn, mild-robust, mild-mix, mild-mix-settle, mild-mix-mild, mild-mix-again, mild-mix-stroke, mild-stroke, mild-shift, mild-shift-stroke, mild-mix-shift, mild-mix-midshift, got "robust"\.$/,
  );
  await assertRefused(
    "train/main.ts",
    ["--model", "vgg", "--recipe", "mild", "--start-from", "results/mild"],
    /^error: --start-from begins a recipe's finishing stage, and recipe mild has none\.$/,
  );
  await assertRefused(
    "train/main.ts",
    [
      "--model",
      "vgg",
      "--recipe",
      "mild-shift",
      "--seeds",
      "2",
      "--start-from",
      "results/mild",
      "--queue",
      "redis://127.0.0.1:1",
    ],
    /^error: --start-from cannot go with --queue: the finished runs are here\.$/,
  );
  await assertRefused(
    "train/main.ts",
    ["--model", "improved", "--resume", "--out", out],
    /^error: Nothing to resume: there is no checkpoint at .*checkpoints\/improved\/checkpoint\.bin\.$/,
    1,
  );
  assert.deepEqual([...Deno.readDirSync(out)], []);
});

Deno.test("train: a corrupt MNIST file is named, and --help works", async () => {
  await using dataTemp = await tempDir();
  const data = dataTemp.path;
  for (
    const name of [
      "train-images-idx3-ubyte",
      "train-labels-idx1-ubyte",
      "t10k-images-idx3-ubyte",
      "t10k-labels-idx1-ubyte",
    ]
  ) {
    await Deno.writeFile(join(data, name), new Uint8Array([0, 0, 8, 3, 0, 0, 0, 9]));
  }
  await assertRefused(
    "train/main.ts",
    ["--model", "baseline", "--data", data, "--out", join(data, "out")],
    /^error: .*-idx3-ubyte is truncated: it is too short for an IDX header\.$/,
    1,
  );
  const help = await run("train/main.ts", ["--model", "baseline", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--resume/);
});

Deno.test("study:batchnorm and eval:handwriting: bad input in one sentence", async () => {
  await using temp = await tempDir();
  await assertRefused(
    "studies/main.ts",
    ["--model", temp.path],
    /^error: .* holds no tfjs model \(no model\.json\): pass a folder written by deno task train:<model>\.$/,
  );
  await assertRefused(
    "studies/main.ts",
    ["--limit", "1"],
    /^error: --limit must be from 2 to 10000, got 1\.$/,
  );
  await Deno.writeFile(join(temp.path, "digit.png"), new Uint8Array([1]));
  await assertRefused(
    "robustness/handwriting_main.ts",
    [temp.path],
    /^error: .*digit\.png does not start with its digit and a dash \(like 7-chalk\.png\), so it cannot be scored\.$/,
  );
  await assertRefused(
    "robustness/handwriting_main.ts",
    [join(temp.path, "missing")],
    /^error: There is no .*missing to score\.$/,
  );
  await assertRefused(
    "robustness/handwriting_main.ts",
    ["--usps-split", "validation"],
    /^error: --usps-split must be test or train, got "validation"\.$/,
  );
  await assertRefused(
    "robustness/handwriting_main.ts",
    ["--mnist", "all"],
    /^error: --mnist must be a whole number, got "all"\.$/,
  );
  assert.deepEqual([...Deno.readDirSync(temp.path)].map((e) => e.name), ["digit.png"]);
});

Deno.test("export, infer, eval:robustness: bad input", async () => {
  await using dirTemp = await tempDir();
  const dir = dirTemp.path;
  await assertRefused(
    "export/main.ts",
    ["--layout", "nwhc"],
    /^error: --layout must be nhwc or nchw, got "nwhc"\.$/,
  );
  await assertRefused(
    "export/main.ts",
    ["--out", dir],
    /^error: There is no .*\/models folder: train a model first/,
  );
  await assertRefused(
    "export/main.ts",
    ["--choose-on", "clean", "--out", dir],
    /^error: --choose-on goes with --ensemble auto\.$/,
  );
  await assertRefused(
    "export/main.ts",
    ["--model", dir, "--out", join(dir, "m.onnx")],
    /^error: tfjs model file .*model\.json does not exist\.$/,
    1,
  );
  await assertRefused("infer/main.ts", ["digit.png"], /^error: --model FILE\.onnx is required/);
  await Deno.writeTextFile(join(dir, "fake.onnx"), "not a model");
  await assertRefused(
    "infer/main.ts",
    ["--model", join(dir, "fake.onnx"), "--test-set"],
    /^error: .*fake\.onnx is not an ONNX model that ONNX Runtime can load/,
    1,
  );
  await assertRefused(
    "robustness/main.ts",
    ["--family", "twirl"],
    /^error: Unknown family "twirl"; known families: mnist_c, rotation/,
  );
  await assertRefused(
    "robustness/main.ts",
    ["--limit", "0"],
    /^error: --limit must be from 1 to 10000, got 0\.$/,
  );
  await assertRefused(
    "robustness/main.ts",
    ["--split", "train"],
    /^error: --split takes test or validation, not "train"\.$/,
  );
  await assertRefused(
    "robustness/main.ts",
    ["--validation", "500"],
    /^error: --validation goes with --split validation: the test set is always whole\.$/,
  );
  await assertRefused(
    "robustness/main.ts",
    ["--out", dir],
    /^error: There is no .*\/models folder: export models first/,
  );
  await assertRefused(
    "robustness/main.ts",
    ["--model", join(dir, "fake.onnx"), "--out", dir],
    /is not an ONNX model/,
    1,
  );
  await assertRefused(
    "bench/bench.ts",
    ["--steps=-3"],
    /^error: --steps must be from 1 to 100000, got -3\.$/,
  );
  await assertRefused(
    "bench/bench.ts",
    ["--steps", "-3"],
    /^error: --steps needs a value; for a value starting with "-" write --steps=VALUE\./,
  );
  // Nothing was written for any of them.
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["fake.onnx"]);
});
