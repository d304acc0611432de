/**
 * People-like digits: the labelled set scores every committed model above a
 * floor, and the scoring names what it cannot score.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { OnnxClassifier } from "../infer/classifier.ts";
import { labelFromFileName } from "../infer/run.ts";
import {
  HANDWRITING_SETS,
  HandwritingError,
  labelledImages,
  scoreHandwriting,
  scoreResults,
} from "../robustness/handwriting.ts";
import { tempDir } from "./temp_dir.ts";

const ROOT = new URL("..", import.meta.url).pathname;
/** Every committed model scored at least 97% when this floor was set; a regression shows here. */
const FLOOR = 0.93;

Deno.test("file names carry the labels; an unlabelled file is named", async () => {
  assert.equal(labelFromFileName("examples/digits/7-chalk.png"), 7);
  assert.equal(labelFromFileName("/a/b/0-scan-3.jpg"), 0);
  assert.equal(labelFromFileName("seven.png"), undefined);
  await using temp = await tempDir();
  await Deno.copyFile(join(ROOT, "examples/digits/7-chalk.png"), join(temp.path, "seven.png"));
  await assert.rejects(
    labelledImages([temp.path]),
    (error: Error) =>
      error instanceof HandwritingError &&
      /seven\.png does not start with its digit/.test(error.message),
  );
});

Deno.test("scores count per source and list the mistakes", () => {
  const score = scoreResults([
    { file: "x/3-scan-1.png", prediction: 3, confidence: 0.9, top: [] },
    { file: "x/3-font-a.png", prediction: 5, confidence: 0.9, top: [] },
    { file: "x/4-font-b.png", error: "unreadable" },
    { file: "x/4-font-c.png", prediction: 4, confidence: 0.9, top: [] },
  ]);
  assert.equal(score.accuracy, 0.5);
  assert.deepEqual(score.by_source, {
    font: { images: 3, accuracy: 1 / 3 },
    scan: { images: 1, accuracy: 1 },
  });
  assert.deepEqual(score.mistakes.map((m) => [m.label, m.prediction]), [[3, 5], [4, -1]]);
});

Deno.test("every committed model reads the people-like set above the floor", async () => {
  const files = await labelledImages(HANDWRITING_SETS.map((set) => join(ROOT, set)));
  assert.ok(files.length >= 300, `only ${files.length} labelled images`);
  const models = [...Deno.readDirSync(join(ROOT, "results/models"))]
    .filter((e) => e.name.endsWith(".onnx")).map((e) => e.name);
  assert.ok(models.length >= 2);
  for (const name of models) {
    const classifier = await OnnxClassifier.load(join(ROOT, "results/models", name));
    try {
      const score = await scoreHandwriting(classifier, files, true);
      assert.ok(score.accuracy >= FLOOR, `${name}: ${score.accuracy}`);
    } finally {
      await classifier.release();
    }
  }
});
