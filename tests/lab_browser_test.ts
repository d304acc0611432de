/**
 * The lab in a real browser (Debian's headless Chromium, driven over the
 * DevTools protocol): a digit drawn with the mouse gets the same answer in
 * the page (onnxruntime-web) as from /api/classify (ONNX Runtime on the
 * server), a slider bends it as the suite's transform does, an uploaded
 * file (a photo, a real USPS digit) is read as `deno task infer` reads it,
 * and the page logs no errors. Needs Chromium (CI installs it); skipped without one.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { BEND_SEED, bendDigit, NO_BEND } from "../lab/bend.ts";
import { loadUspsTrain } from "../data/usps.ts";
import { OnnxClassifier } from "../infer/classifier.ts";
import { readGray } from "../infer/images.ts";
import { toMnist } from "../infer/preprocess.ts";
import { classifyFiles } from "../infer/run.ts";
import { uspsDigits, writeDigitFiles } from "../robustness/transfer.ts";
import { createLab } from "../serve/app.ts";
import { findChromium } from "../serve/chromium.ts";
import { drawStroke, moveSlider, openLab, settled, SEVEN, updates } from "../serve/lab_driver.ts";
import { tempDir } from "./temp_dir.ts";

const ROOT = new URL("..", import.meta.url).pathname;

interface PageAnswers {
  answers: Record<string, { prediction: number; probabilities: number[] }>;
  preprocessed: number[];
  png: string;
}

const readPage = (page: Awaited<ReturnType<typeof openLab>>["page"]) =>
  page.evaluate<PageAnswers>(
    "({ answers: lab.answers, preprocessed: lab.preprocessed, png: lab.drawingPng() })",
  );

function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

const chromium = findChromium();
if (!chromium) {
  console.warn("skipping the lab's browser test: no Chromium (apt-get install chromium)");
}

Deno.test({
  name:
    "a digit drawn in the browser gets the API's answer; a slider bends it; an upload replaces it; no page errors",
  ignore: !chromium,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using temp = await tempDir();
    const lab = await createLab({ modelsDir: join(ROOT, "results", "models"), threads: 1 });
    const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, lab.handler);
    const base = `http://127.0.0.1:${server.addr.port}`;
    const { browser, page } = await openLab(`${base}/`);
    try {
      let round = await updates(page);
      await drawStroke(page, SEVEN);
      await settled(page, round);
      const drawn = await readPage(page);
      const served = [...Deno.readDirSync(join(ROOT, "results", "models"))]
        .filter((entry) => entry.name.endsWith(".onnx"))
        .map((entry) => entry.name.replace(/\.onnx$/, ""))
        .sort();
      assert.deepEqual(Object.keys(drawn.answers), served);
      const png = Uint8Array.from(atob(drawn.png.split(",")[1]), (c) => c.charCodeAt(0));
      for (const [model, answer] of Object.entries(drawn.answers)) {
        const response = await fetch(`${base}/api/classify?model=${model}`, {
          method: "POST",
          body: png,
        });
        const api = await response.json();
        assert.equal(response.status, 200, JSON.stringify(api));
        assert.equal(answer.prediction, api.prediction, model);
        const difference = maxDifference(answer.probabilities, api.probabilities);
        assert.ok(difference < 1e-4, `${model}: page and API differ by ${difference}`);
        assert.ok(maxDifference(drawn.preprocessed, api.preprocessed) < 1e-6);
      }
      assert.equal(drawn.answers.improved.prediction, 7, "the drawn 7 is read as a 7");

      round = await updates(page);
      await moveSlider(page, "rotation", 50);
      await settled(page, round);
      const rotated = await readPage(page);
      const expected = bendDigit(
        Float32Array.from(drawn.preprocessed),
        { ...NO_BEND, rotation: 50 },
        BEND_SEED,
      );
      assert.ok(maxDifference(rotated.preprocessed, expected) < 1e-6, "rotation is the suite's");
      const moved = Math.max(
        ...Object.keys(drawn.answers).map((m) =>
          maxDifference(drawn.answers[m].probabilities, rotated.answers[m].probabilities)
        ),
      );
      assert.ok(moved > 1e-3, `the slider changed the probabilities by only ${moved}`);

      // Straightened, then a photo chosen with the upload button replaces the drawing.
      round = await updates(page);
      await page.evaluate("document.getElementById('reset').click()");
      await settled(page, round);
      round = await updates(page);
      await page.setFiles("#upload", [join(ROOT, "examples", "digits", "3-paper.jpg")]);
      await settled(page, round);
      const photo = await readPage(page);
      assert.equal(photo.answers.improved.prediction, 3, "the photo of a 3 is read as a 3");
      const photoPng = Uint8Array.from(atob(photo.png.split(",")[1]), (c) => c.charCodeAt(0));
      const api = await (await fetch(`${base}/api/classify?model=improved`, {
        method: "POST",
        body: photoPng,
      })).json();
      assert.ok(maxDifference(photo.answers.improved.probabilities, api.probabilities) < 1e-4);
      assert.ok(maxDifference(photo.preprocessed, api.preprocessed) < 1e-6);

      // A real USPS digit's file (16x16): the page reads the file's own pixels, as infer does.
      const usps = uspsDigits(await loadUspsTrain());
      const [file] = await writeDigitFiles(
        { ...usps, count: 1, labels: [usps.labels[0]] },
        join(temp.path, "usps"),
      );
      round = await updates(page);
      await page.setFiles("#upload", [file]);
      await settled(page, round);
      const scan = await readPage(page);
      const inferred = toMnist(await readGray(file));
      assert.ok(
        maxDifference(scan.preprocessed, inferred) < 1e-6,
        "the page reads the file as infer",
      );
      for (const model of served) {
        const classifier = await OnnxClassifier.load(
          join(ROOT, "results", "models", `${model}.onnx`),
        );
        try {
          const [result] = await classifyFiles(classifier, [file]);
          assert.ok("prediction" in result);
          assert.equal(scan.answers[model].prediction, result.prediction, `${model} page vs infer`);
        } finally {
          await classifier.release();
        }
        const api = await (await fetch(`${base}/api/classify?model=${model}`, {
          method: "POST",
          body: await Deno.readFile(file),
        })).json();
        assert.equal(api.prediction, scan.answers[model].prediction, `${model} API vs page`);
        assert.ok(maxDifference(scan.answers[model].probabilities, api.probabilities) < 1e-4);
      }
      await moveSlider(page, "rotation", 50);

      await page.evaluate("document.getElementById('curve').click()");
      await page.waitFor("document.querySelector('#curve-box svg .marker')");
      const shot = await page.screenshot();
      const path = join(temp.path, "lab.png");
      await Deno.writeFile(path, shot);
      assert.deepEqual(Array.from(shot.subarray(1, 4)), [0x50, 0x4e, 0x47]);
      assert.ok((await Deno.stat(path)).size > 20_000, "the screenshot is implausibly small");
      assert.deepEqual(page.errors, []);
    } finally {
      await browser.close();
      await server.shutdown();
      await lab.close();
    }
  },
});
