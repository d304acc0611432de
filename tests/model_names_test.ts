import assert from "node:assert/strict";
import { join } from "node:path";
import { distinctModelNames, fileSafeName } from "../util/model_names.ts";
import { UsageError } from "../util/cli.ts";
import { runScript } from "./run_script.ts";
import { tempDir } from "./temp_dir.ts";

Deno.test("models of the same file name get names of their own, the first its plain one", () => {
  assert.deepEqual(distinctModelNames(["results/models/vgg.onnx", "other/robust.onnx"]), [
    "vgg",
    "robust",
  ]);
  assert.deepEqual(
    distinctModelNames([
      "results/mild/seeds/seed-43/models/vgg.onnx",
      "results/mild-shift/seeds/seed-43/models/vgg.onnx",
      "results/mild-turn/seeds/seed-43/models/vgg.onnx",
      "results/mild/models/vgg.onnx",
      "scratch/vgg.onnx",
    ]),
    // models/ says nothing; the folders above it are added until they are the file's own.
    [
      "vgg",
      "mild-shift/seeds/seed-43/vgg",
      "mild-turn/seeds/seed-43/vgg",
      "mild/vgg",
      "scratch/vgg",
    ],
  );
  assert.throws(
    () => distinctModelNames(["a/models/vgg.onnx", "b/vgg.onnx", "./a/models/vgg.onnx"]),
    (error: Error) =>
      error instanceof UsageError &&
      error.message === "./a/models/vgg.onnx is given twice as a model.",
  );
  assert.equal(fileSafeName("seed-43/vgg"), "seed-43_vgg");
});

/** Two copies of the committed baseline under folders of their own, as two runs' models lie. */
async function twoSameNamedModels(dir: string): Promise<string[]> {
  const committed = join(import.meta.dirname!, "..", "results", "models", "baseline.onnx");
  const files = ["first", "second"].map((run) => join(dir, run, "models", "baseline.onnx"));
  for (const file of files) {
    await Deno.mkdir(join(file, ".."), { recursive: true });
    await Deno.copyFile(committed, file);
  }
  return files;
}

Deno.test("eval:robustness keeps two models of the same file name apart, and refuses one given twice", async () => {
  await using temp = await tempDir();
  const [first, second] = await twoSameNamedModels(temp.path);
  const out = join(temp.path, "out");
  const result = await runScript("robustness/main.ts", [
    ...["--model", first, "--model", second, "--family", "shift_x", "--limit", "20", "--out", out],
  ]);
  assert.equal(result.code, 0, result.stderr);
  const written = JSON.parse(
    await Deno.readTextFile(join(out, "metrics", "robustness.json")),
  );
  assert.deepEqual(Object.keys(written.models), ["baseline", "second/baseline"]);
  assert.equal(written.models.baseline.file, first);
  assert.equal(written.models["second/baseline"].file, second);
  const twice = await runScript("robustness/main.ts", [
    ...["--model", first, "--model", first, "--limit", "20", "--out", out],
  ]);
  assert.equal(twice.code, 2);
  assert.equal(twice.stderr, `error: ${first} is given twice as a model.`);
});

Deno.test("eval:handwriting keeps two models of the same file name apart, each with its picture", async () => {
  await using temp = await tempDir();
  const [first, second] = await twoSameNamedModels(temp.path);
  const out = join(temp.path, "out");
  const result = await runScript("robustness/handwriting_main.ts", [
    ...["--model", first, "--model", second, "--mnist", "0", "--out", out],
  ]);
  assert.equal(result.code, 0, result.stderr);
  const written = JSON.parse(await Deno.readTextFile(join(out, "metrics", "handwriting.json")));
  assert.deepEqual(Object.keys(written.models), ["baseline", "second/baseline"]);
  assert.equal(written.models["second/baseline"].file, second);
  // The same model twice reads the same.
  assert.equal(
    written.models["second/baseline"].usps.deploy.accuracy,
    written.models.baseline.usps.deploy.accuracy,
  );
  assert.deepEqual(
    [...Deno.readDirSync(join(out, "plots"))].map((e) => e.name).sort(),
    ["usps_mistakes_baseline.png", "usps_mistakes_second_baseline.png"],
  );
});
