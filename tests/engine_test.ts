/**
 * The two training engines: the native one (BLIS or OpenBLAS through FFI,
 * convolutions on oneDNN where it is installed) where it can be built, else
 * wasm with one line saying why; a forced engine that cannot run is one
 * sentence. Both train, and a native run resumes bit for bit. With
 * MNIST_REQUIRE_NATIVE set (CI's first run) the native engine must be there.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadMnist } from "../data/mnist.ts";
import { type EngineName, useEngine } from "../kernels/engine.ts";
import { RECIPES } from "../train/recipes.ts";
import { defaultConfig, type Metrics, trainModel } from "../train/run.ts";
import { resumeMatchesStraight } from "./resume.ts";
import { tempDir } from "./temp_dir.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const data = await loadMnist();
const native = await useEngine("native").then(() => true, (error) => {
  if (Deno.env.get("MNIST_REQUIRE_NATIVE")) throw error;
  console.warn(`skipping the native engine's tests: ${error.message}`);
  return false;
});
const ENGINES: EngineName[] = native ? ["native", "wasm"] : ["wasm"];

const quick = (epochs: number, workers = 1) => ({
  ...defaultConfig("baseline", RECIPES.baseline, 11),
  epochs,
  limit: 512,
  batchSize: 64,
  workers,
  weightAverageDecay: 0,
});

for (const engine of ENGINES) {
  Deno.test(`a short run on the ${engine} engine lowers the loss and records its engine`, async () => {
    await useEngine(engine);
    await using out = await tempDir("mnist-engine-test-");
    const { metrics } = await trainModel(data, {
      config: quick(3),
      outDir: out.path,
      command: "t",
    });
    const losses = metrics.history.map((record) => record.loss);
    assert.ok(losses[2] < losses[0], `losses ${losses}`);
    assert.equal(metrics.engine, engine);
    if (engine === "native") assert.match(metrics.convolutions!, /^(oneDNN \d|im2col \+ )/);
    assert.ok(metrics.wall_seconds >= metrics.train_seconds);
  });
}

Deno.test({
  name: "a native run on two workers, stopped and resumed, continues bit for bit",
  ignore: !native,
  async fn() {
    await useEngine("native");
    await resumeMatchesStraight(data, (epochs) => quick(epochs, 2), 2, 1, async (outDir) => {
      const metrics: Metrics = JSON.parse(
        await Deno.readTextFile(join(outDir, "metrics", "baseline_metrics.json")),
      );
      assert.equal(metrics.engine, "native");
    });
  },
});

const DNNL_HEADER = "/usr/include/oneapi/dnnl/dnnl.h";
const dnnlInstalled = await Deno.stat(DNNL_HEADER).then(() => true, () => false);

Deno.test({
  name: "with oneDNN installed the convolutions run on it; MNIST_CONVOLUTIONS=im2col turns it off",
  ignore: !native || !dnnlInstalled,
  async fn() {
    const convolutions = async (value?: string) => {
      const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
        args: [
          "eval",
          `import { useEngine } from "./kernels/engine.ts";
           const info = await useEngine("auto");
           console.log(info.convolutions ?? info.fallback);`,
        ],
        cwd: ROOT,
        env: value === undefined ? {} : { MNIST_CONVOLUTIONS: value },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(code, 0, new TextDecoder().decode(stderr));
      return new TextDecoder().decode(stdout).trim();
    };
    assert.match(await convolutions(), /^oneDNN \d+\.\d+$/);
    assert.match(await convolutions("im2col"), /^im2col \+ (BLIS|OpenBLAS)$/);
  },
});

async function train(args: string[], env: Record<string, string> = {}) {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "train/main.ts", "--model", "baseline", ...args],
    cwd: ROOT,
    env: { RUST_BACKTRACE: "0", NO_COLOR: "1", ...env },
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code, stderr: new TextDecoder().decode(stderr).trim() };
}

Deno.test("without the native library: auto falls back in one line, --engine native refuses", async () => {
  await using out = await tempDir("mnist-engine-test-");
  const missing = { MNIST_NATIVE_LIBRARY: "/nonexistent/libmnist-engine.so" };
  const quickArgs = ["--epochs", "1", "--limit", "128", "--workers", "1", "--out", out.path];
  const fallback = await train(quickArgs, missing);
  assert.equal(fallback.code, 0, fallback.stderr);
  const notes = fallback.stderr.split("\n").filter((line) => line.startsWith("note:"));
  assert.equal(notes.length, 1, fallback.stderr);
  assert.match(
    notes[0],
    /^note: The native engine is not available \(its library \/nonexistent\/libmnist-engine\.so cannot be opened .*\), so training runs on the wasm engine; for the native one: apt-get install libblis-dev libdnnl-dev gcc\.$/,
  );
  const metrics: Metrics = JSON.parse(
    await Deno.readTextFile(join(out.path, "metrics", "baseline_metrics.json")),
  );
  assert.equal(metrics.engine, "wasm");
  const forced = await train([...quickArgs, "--engine", "native"], missing);
  assert.equal(forced.code, 1);
  assert.match(
    forced.stderr,
    /^error: The native engine cannot run here: its library \/nonexistent\/libmnist-engine\.so cannot be opened .*; install it with: apt-get install libblis-dev libdnnl-dev gcc\.$/,
  );
  assert.equal(forced.stderr.split("\n").length, 1);
  // A misspelt setting is the user's to fix: no fallback to the slower engine, no install hint.
  const misspelt = await train(quickArgs, { MNIST_CONVOLUTIONS: "cudnn" });
  assert.equal(misspelt.code, 1);
  assert.equal(misspelt.stderr, 'error: MNIST_CONVOLUTIONS must be onednn or im2col, not "cudnn".');
  const bogus = await train(["--engine", "gpu"]);
  assert.equal(bogus.code, 2);
  assert.equal(bogus.stderr, 'error: --engine must be one of auto, native, wasm, got "gpu".');
});

Deno.test("--resume accepts the run's own --seed, --limit and --batch-size and refuses a change", async () => {
  await using out = await tempDir("mnist-engine-test-");
  const run = ["--limit", "128", "--seed", "5", "--batch-size", "32", "--workers", "1"];
  const first = await train(["--epochs", "1", ...run, "--out", out.path]);
  assert.equal(first.code, 0, first.stderr);
  // The default validation set, named, is the run's own.
  const repeated = await train(
    ["--epochs", "2", ...run, "--validation", "6000", "--out", out.path, "--resume"],
  );
  assert.equal(repeated.code, 0, repeated.stderr);
  const changed = await train(["--epochs", "3", "--seed", "6", "--out", out.path, "--resume"]);
  assert.equal(changed.code, 1);
  assert.match(
    changed.stderr,
    /^error: --seed cannot change on --resume: the run in .* has 5, the command asks for 6\.$/,
  );
  const metrics: Metrics = JSON.parse(
    await Deno.readTextFile(join(out.path, "metrics", "baseline_metrics.json")),
  );
  assert.equal(metrics.history.length, 2);
});

Deno.test("--validation holds out fewer images, is kept on --resume, and a change is refused", async () => {
  await using out = await tempDir("mnist-engine-test-");
  const run = ["--limit", "128", "--workers", "1", "--out", out.path];
  const first = await train(["--epochs", "1", "--validation", "40", ...run]);
  assert.equal(first.code, 0, first.stderr);
  const read = async (): Promise<Metrics> =>
    JSON.parse(await Deno.readTextFile(join(out.path, "metrics", "baseline_metrics.json")));
  assert.deepEqual((await read()).data, { train: 128, validation: 40, test: 128 });
  assert.equal((await read()).config.validation, 40);
  // Without the flag the run goes on with its own validation set.
  const continued = await train(["--epochs", "2", ...run, "--resume"]);
  assert.equal(continued.code, 0, continued.stderr);
  assert.equal((await read()).data.validation, 40);
  const changed = await train(["--epochs", "3", "--validation", "6000", ...run, "--resume"]);
  assert.equal(changed.code, 1);
  assert.match(
    changed.stderr,
    /^error: --validation cannot change on --resume: the run in .* has 40, the command asks for 6000\.$/,
  );
  const none = await train(["--validation", "0", ...run]);
  assert.equal(none.code, 2);
  assert.equal(none.stderr, "error: --validation must be from 1 to 30000, got 0.");
});
