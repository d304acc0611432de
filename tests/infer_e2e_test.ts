/**
 * End to end with the committed models: image files in, digits out, through
 * decoding, MNIST-style preprocessing and ONNX Runtime.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { sharp } from "../deps.ts";
import { OnnxClassifier } from "../infer/classifier.ts";
import { classifyFiles } from "../infer/run.ts";
import { tempDir } from "./temp_dir.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const MODELS = ["baseline", "improved"].map((name) =>
  join(ROOT, "results", "models", `${name}.onnx`)
);

/** The digit as typeset text: dark on light or light on dark, large, off-centre. */
async function renderDigit(digit: number, darkInk: boolean, path: string): Promise<void> {
  const [paper, ink] = darkInk ? ["#f4f1e8", "#222222"] : ["#1d2b22", "#e8e8e8"];
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="160" height="200">` +
    `<rect width="160" height="200" fill="${paper}"/>` +
    `<text x="${
      60 + digit * 3
    }" y="150" font-size="120" font-family="DejaVu Sans" text-anchor="middle" fill="${ink}">${digit}</text></svg>`;
  await Deno.writeFile(path, new Uint8Array(await sharp(Buffer.from(svg)).png().toBuffer()));
}

function correct(results: Awaited<ReturnType<typeof classifyFiles>>): number {
  return results.filter((r) =>
    !("error" in r) && r.prediction === Number(r.file.split("/").at(-1)![0])
  ).length;
}

Deno.test("the committed models read typeset digits in both polarities and the example photos", async () => {
  await using dirTemp = await tempDir();
  const dir = dirTemp.path;
  for (let digit = 0; digit < 10; digit++) {
    await renderDigit(digit, true, join(dir, `${digit}-dark-ink.png`));
    await renderDigit(digit, false, join(dir, `${digit}-light-ink.png`));
  }
  for (const model of MODELS) {
    const classifier = await OnnxClassifier.load(model);
    const typeset = await classifyFiles(classifier, [dir]);
    assert.equal(typeset.length, 20);
    assert.ok(correct(typeset) >= 18, `${model}: ${correct(typeset)} of 20 typeset digits right`);
    const examples = await classifyFiles(classifier, [join(ROOT, "examples", "digits")]);
    assert.equal(examples.length, 10);
    assert.ok(
      correct(examples) >= 9,
      `${model}: ${correct(examples)} of 10 example photos right`,
    );
    await classifier.release();
  }
});
