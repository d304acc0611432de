import assert from "node:assert/strict";
import { join } from "node:path";
import { sharp } from "../deps.ts";
import { MetricsError, readMetrics } from "../report/inputs.ts";
import { writeReport } from "../report/main.ts";

function training(model: string, testAccuracy: number) {
  return {
    model,
    history: [1, 2, 3].map((epoch) => ({
      epoch,
      loss: 0.3 / epoch,
      accuracy: 0.95 + epoch / 100,
      val_loss: 0.2 / epoch,
      val_accuracy: 0.97 + epoch / 150,
      seconds: 60,
      images_per_s: 900 + epoch,
    })),
    test_accuracy: testAccuracy,
    test_loss: 0.0271,
    test_accuracy_augmented: 0.8123,
    train_seconds: 180,
    seed: 1,
    command: "test",
    date: "2026-01-01",
    data: { train: 54000, validation: 6000, test: 10000 },
  };
}

function testSet() {
  const confusion = Array.from(
    { length: 10 },
    (_, i) => Array.from({ length: 10 }, (_, j) => (i === j ? 990 : 1)),
  );
  const sample = (index: number, prediction: number) => ({
    index,
    label: [7, 2, 1][index] ?? 0,
    prediction,
    confidence: 0.9,
  });
  return {
    accuracy: 0.9876,
    images_per_s: 20000,
    confusion,
    samples: [sample(0, 7), sample(1, 2), sample(2, 1)],
    confident_mistakes: [sample(1, 3)],
  };
}

async function withMetrics(files: Record<string, unknown>, run: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "metrics"));
    for (const [name, value] of Object.entries(files)) {
      await Deno.writeTextFile(
        join(dir, "metrics", name),
        typeof value === "string" ? value : JSON.stringify(value),
      );
    }
    await run(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("the report writes every plot as a real PNG and REPORT.md with the numbers given", async () => {
  await withMetrics({
    "baseline_metrics.json": training("baseline", 0.9912),
    "improved_metrics.json": training("improved", 0.9934),
    "improved_test.json": testSet(),
  }, async (dir) => {
    const written = await writeReport(dir, "deno task report --out test");
    const pngs = written.filter((path) => path.endsWith(".png")).map((path) =>
      path.split("/").at(-1)
    );
    assert.deepEqual(pngs.sort(), [
      "baseline_accuracy_curve.png",
      "comparison.png",
      "confusion_improved.png",
      "improved_accuracy_curve.png",
      "predictions.png",
    ]);
    for (const path of written.filter((p) => p.endsWith(".png"))) {
      const meta = await sharp(path).metadata();
      assert.equal(meta.format, "png");
      assert.ok(meta.width! >= 600 && meta.height! >= 200, `${path}: ${meta.width}x${meta.height}`);
      assert.ok((await Deno.stat(path)).size > 10_000, `${path} is suspiciously small`);
    }
    const report = await Deno.readTextFile(join(dir, "REPORT.md"));
    for (const text of ["99.12%", "99.34%", "81.23%", "0.0271", "98.76%", "plots/comparison.png"]) {
      assert.ok(report.includes(text), `REPORT.md lacks ${text}`);
    }
  });
});

Deno.test("missing or malformed metrics files are named in one sentence", async () => {
  await withMetrics({ "baseline_metrics.json": "{ broken" }, async (dir) => {
    await assert.rejects(
      () => readMetrics(join(dir, "metrics")),
      (error: Error) =>
        error instanceof MetricsError &&
        error.message ===
          `Metrics file ${join(dir, "metrics", "baseline_metrics.json")} is not valid JSON.`,
    );
  });
  await withMetrics({ "baseline_metrics.json": { history: [] } }, async (dir) => {
    await assert.rejects(() => readMetrics(join(dir, "metrics")), {
      message: /baseline_metrics\.json is malformed: it has no per-epoch history\.$/,
    });
  });
  await withMetrics({
    "baseline_metrics.json": training("baseline", 0.99),
    "baseline_test.json": { accuracy: 1 },
  }, async (dir) => {
    await assert.rejects(() => readMetrics(join(dir, "metrics")), {
      message: /baseline_test\.json is malformed: it has no 10x10 confusion matrix\.$/,
    });
  });
  await withMetrics({}, async (dir) => {
    await assert.rejects(() => readMetrics(join(dir, "metrics")), {
      message: /holds no <model>_metrics\.json files/,
    });
    await assert.rejects(() => readMetrics(join(dir, "nowhere")), {
      message: /There is no metrics folder .*nowhere/,
    });
  });
});
