/**
 * train:robust behaves like the other training commands: it runs, resumes,
 * refuses bad flags; --seeds trains and summarises several seeds and reads
 * finished ones on --resume.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { useWasmBackend } from "../kernels/backend.ts";
import { ARCHITECTURES, buildCnn } from "../models/architectures.ts";
import { FlatAdam } from "../train/adam.ts";
import { readCheckpointSummary, saveCheckpoint } from "../train/checkpoint.ts";
import { RECIPES } from "../train/recipes.ts";
import type { RunState } from "../train/run.ts";
import { sameRecipe } from "../train/seeds.ts";
import { runScript } from "./run_script.ts";
import { tempDir } from "./temp_dir.ts";

const train = (args: string[]) => runScript("train/main.ts", ["--model", "robust", ...args]);

const readJson = async (path: string) => JSON.parse(await Deno.readTextFile(path));

Deno.test("train:robust --epochs 1 --limit 512 runs, resumes, and seeds summarise", async () => {
  await using temp = await tempDir();
  const out = temp.path;
  const first = await train(["--epochs", "1", "--limit", "512", "--out", out]);
  assert.equal(first.code, 0, first.stderr);
  const metrics = await readJson(join(out, "metrics/robust_metrics.json"));
  assert.equal(metrics.history.length, 1);
  assert.ok(
    metrics.config.augmentation.appearance,
    "the robust model trains with appearance jitter",
  );
  assert.ok(metrics.config.augmentation.shear > 0);
  // Without --validation the run holds out its recipe's count, and records it.
  const heldOut = RECIPES.robust.validation!;
  assert.ok(heldOut < 512, "the recipe's validation set fits within --limit 512");
  assert.equal(metrics.data.validation, heldOut);
  assert.equal(metrics.config.validation, heldOut);

  const resumeBlind = ["--epochs", "2", "--limit", "512", "--out", out, "--resume", "--blind"];
  const resumed = await train(resumeBlind);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(first.stdout, /test accuracy \d+\.\d+%/);
  assert.doesNotMatch(resumed.stdout, /test accuracy/, "--blind: the run's test figures not shown");
  assert.match(resumed.stdout, /not shown \(--blind\)/);
  assert.equal((await readJson(join(out, "metrics/robust_metrics.json"))).history.length, 2);

  // Seed 42 is finished (2 epochs >= 1): read; seed 43 is trained into seeds/seed-43.
  const twoSeeds = ["--seeds", "2", "--epochs", "1", "--limit", "512", "--out", out, "--resume"];
  const seeds = await train(twoSeeds);
  assert.equal(seeds.code, 0, seeds.stderr);
  assert.match(seeds.stdout, /robust seed 42: already trained/);
  const summary = await readJson(join(out, "metrics/robust_seeds.json"));
  assert.deepEqual(summary.seeds, [42, 43]);
  assert.equal(summary.runs[1].dir, join(out, "seeds", "seed-43"));
  // A seed started afresh under --resume trains on the default two workers, not one.
  const seed43 = await readJson(join(out, "seeds", "seed-43", "metrics/robust_metrics.json"));
  assert.equal(seed43.config.workers, 2);
  const accuracies = summary.runs.map((r: { test_accuracy: number }) => r.test_accuracy);
  const mean = (accuracies[0] + accuracies[1]) / 2;
  assert.ok(Math.abs(summary.summary.test_accuracy.mean - mean) < 1e-12);
  for (const run of summary.runs) {
    assert.ok(run.test_ci95.low <= run.test_accuracy && run.test_accuracy <= run.test_ci95.high);
  }
  // Everything finished: nothing retrained.
  const again = await train(twoSeeds);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout.match(/already trained/g)?.length, 2);
  assert.match(again.stdout, /test accuracy/);
  // --blind keeps the test figures out of the output, and still writes the summary.
  await Deno.remove(join(out, "metrics/robust_seeds.json"));
  const blind = await train([...twoSeeds, "--blind"]);
  assert.equal(blind.code, 0, blind.stderr);
  assert.doesNotMatch(blind.stdout, /test accuracy|\d+\.\d+%/);
  assert.match(blind.stdout, /not shown \(--blind\)/);
  assert.deepEqual(
    (await readJson(join(out, "metrics/robust_seeds.json"))).summary,
    summary.summary,
  );
  // A finished seed of another recipe (here: other conv blocks), with no checkpoint of this one,
  // is retrained, not summarised.
  await Deno.remove(join(out, "seeds", "seed-43", "checkpoints"), { recursive: true });
  const seed43Path = join(out, "seeds", "seed-43", "metrics/robust_metrics.json");
  const tampered = {
    ...seed43.config,
    architecture: { ...seed43.config.architecture, convBlocks: [[8]] },
  };
  await Deno.writeTextFile(seed43Path, JSON.stringify({ ...seed43, config: tampered }));
  const changed = await train(twoSeeds);
  assert.equal(changed.code, 0, changed.stderr);
  assert.match(
    changed.stdout,
    /seed-43\/metrics\/robust_metrics\.json holds a run of another recipe/,
  );
  assert.equal(changed.stdout.match(/already trained/g)?.length, 1);
  const retrained = await readJson(seed43Path);
  assert.deepEqual(retrained.config.architecture.convBlocks, seed43.config.architecture.convBlocks);
  // Its checkpoint is of this recipe: with more epochs asked, the seed resumes from it.
  await Deno.writeTextFile(seed43Path, JSON.stringify({ ...retrained, config: tampered }));
  const longer = await train(twoSeeds.map((arg, i) => twoSeeds[i - 1] === "--epochs" ? "2" : arg));
  assert.equal(longer.code, 0, longer.stderr);
  assert.match(longer.stdout, /robust seed 42: already trained/);
  const resumed43 = await readJson(seed43Path);
  assert.equal(resumed43.history.length, 2);
  assert.deepEqual(resumed43.history[0], retrained.history[0], "epoch 1 kept from the checkpoint");
});

Deno.test("a checkpoint of another architecture is refused on --resume and not continued by --seeds", async () => {
  await using temp = await tempDir();
  const out = temp.path;
  const quick = ["--epochs", "1", "--limit", "512", "--out", out];
  assert.equal((await train(quick)).code, 0);
  const checkpoint = join(out, "checkpoints/robust/checkpoint.bin");
  const { state } = await readCheckpointSummary<RunState>(checkpoint);
  assert.deepEqual(state.config.architecture, ARCHITECTURES.robust, "the checkpoint names it");
  // As a checkpoint written before runs named their architecture: the model's
  // default implicit, the weights another model's.
  const { architecture: _named, ...implicit } = state.config;
  await useWasmBackend();
  const other = buildCnn({ ...ARCHITECTURES.robust, convBlocks: [[8], [16]] }, "robust");
  const optimizer = FlatAdam.forModel(other, state.config.learningRate);
  await saveCheckpoint(checkpoint, other, optimizer, { ...state, config: implicit });
  other.dispose();

  const resumed = await train([...quick.with(1, "2"), "--resume"]);
  assert.equal(resumed.code, 1);
  assert.match(
    resumed.stderr,
    /^error: The checkpoint in .* holds a robust model of another architecture than this one; train it afresh without --resume\.$/m,
  );
  // --seeds --resume trains seed 42 afresh (its metrics are of one epoch, two are asked).
  const seeds = await train([...quick.with(1, "2"), "--seeds", "2", "--resume"]);
  assert.equal(seeds.code, 0, seeds.stderr);
  const metrics = await readJson(join(out, "metrics/robust_metrics.json"));
  assert.equal(metrics.history.length, 2);
});

Deno.test("a recipe is its architecture, augmentation and optimiser, not its workers or key order", () => {
  const run = {
    architecture: { convBlocks: [[32]], batchNorm: true },
    augment: true,
    augmentation: { rotation: 0.1, translation: 0.1 },
    batchSize: 64,
    learningRate: 1e-3,
    learningRateDecay: 0.85,
    weightAverageDecay: 0.9998,
    workers: 2,
  };
  assert.ok(sameRecipe(run, { ...run, workers: 1, epochs: 30 }));
  assert.ok(sameRecipe(run, { ...run, augmentation: { translation: 0.1, rotation: 0.1 } }));
  assert.ok(sameRecipe({ ...run, weightAverageStart: null }, run), "null and absent agree");
  assert.ok(
    !sameRecipe(run, { ...run, architecture: { convBlocks: [[32], [64]], batchNorm: true } }),
  );
  assert.ok(!sameRecipe(run, { ...run, augmentation: { rotation: 0.1, translation: 0.15 } }));
  assert.ok(!sameRecipe(run, { ...run, learningRateDecay: 0.88 }));
});

Deno.test("train:robust refuses bad flags in one sentence", async () => {
  for (
    const [args, message] of [
      [["--seeds", "0"], /^error: --seeds must be from 1 to 100, got 0\.$/],
      [["--seeds", "two"], /^error: --seeds must be a whole number, got "two"\.$/],
      [["--shear", "1"], /^error: Unknown option '--shear'\. Run with --help for the flags\.$/],
    ] as const
  ) {
    const result = await train([...args]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, message);
  }
});
