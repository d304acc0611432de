/**
 * deno task infer --model FILE.onnx [images or folders...] [--test-set] [--json]
 *
 * Classifies people's digit images (or the MNIST test set) with any MNIST
 * classifier in ONNX, through ONNX Runtime.
 */
import { loadMnist } from "../data/mnist.ts";
import { VERSIONS } from "../deps.ts";
import { commandLine, parseFlags, runMain, UsageError } from "../util/cli.ts";
import { writeJsonAtomic } from "../util/files.ts";
import { INPUT_LAYOUTS, type InputLayout, OnnxClassifier } from "./classifier.ts";
import { classifyFiles, evaluateOnSplit, labelledAccuracy } from "./run.ts";

const HELP = `Classify handwritten digits with an ONNX model.

Usage: deno task infer --model FILE.onnx IMAGE_OR_FOLDER... [flags]
       deno task infer --model FILE.onnx --test-set [--json]

Flags:
  --model FILE               an MNIST classifier in ONNX (ours or any other)
  --test-set                 accuracy and images/s on the 10,000 MNIST test images
  --json                     one JSON object per image (or one for --test-set)
  --save-preprocessed DIR    write the 28x28 images the model saw, as PNG
  --layout L                 override the detected input layout: nhwc, nchw or flat
  --metrics FILE             with --test-set: also write accuracy, confusion matrix and
                             sample predictions as JSON (read by deno task report)
  --help                     show this help

Images (PNG, JPEG, WebP, GIF, TIFF, AVIF, SVG) may be dark ink on light paper or
light on dark; each is cropped to its ink, fit in 20x20 and centred in 28x28.`;

function percent(value: number): string {
  return `${(value * 100).toFixed(1)}%`;
}

export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    model: { type: "string" },
    "test-set": { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    "save-preprocessed": { type: "string" },
    layout: { type: "string" },
    metrics: { type: "string" },
    help: { type: "boolean", default: false },
  }, true);
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!values.model) {
    throw new UsageError("--model FILE.onnx is required. Run with --help for the flags.");
  }
  if (values.layout && !INPUT_LAYOUTS.includes(values.layout as InputLayout)) {
    throw new UsageError(
      `--layout must be one of ${INPUT_LAYOUTS.join(", ")}, got "${values.layout}".`,
    );
  }
  if (values.metrics && !values["test-set"]) {
    throw new UsageError("--metrics goes with --test-set.");
  }
  if (!values["test-set"] && positionals.length === 0) {
    throw new UsageError("Give image files or folders to classify, or --test-set.");
  }
  const classifier = await OnnxClassifier.load(values.model, {
    layout: values.layout as InputLayout | undefined,
  });
  try {
    if (values["test-set"]) {
      const { test } = await loadMnist();
      const result = await evaluateOnSplit(classifier, test);
      if (values.metrics) {
        await writeJsonAtomic(values.metrics, {
          model: values.model,
          ...result,
          command: commandLine("deno task infer", args),
          date: new Date().toISOString(),
          versions: { deno: Deno.version.deno, ...VERSIONS },
        });
      }
      const { accuracy, images_per_s, images } = result;
      if (values.json) {
        console.log(JSON.stringify({ model: values.model, images, accuracy, images_per_s }));
      } else {
        console.log(
          `${values.model}: accuracy ${
            (result.accuracy * 100).toFixed(2)
          }% on ${result.images} MNIST test images, ${
            Math.round(result.images_per_s)
          } images/s (batch 256, input ${classifier.info.layout}${
            classifier.outputsLogits ? ", logits" : ""
          })`,
        );
      }
    }
    if (positionals.length === 0) return 0;
    const results = await classifyFiles(classifier, positionals, {
      savePreprocessedDir: values["save-preprocessed"],
    });
    if (results.length === 0) {
      throw new UsageError(`No image files found in ${positionals.join(", ")}.`);
    }
    let failed = 0;
    for (const result of results) {
      if ("error" in result) {
        failed++;
        if (values.json) console.log(JSON.stringify(result));
        else console.error(`error: ${result.error}`);
        continue;
      }
      if (values.json) console.log(JSON.stringify(result));
      else {
        const others = result.top.slice(1).map((c) => `${c.digit} (${percent(c.probability)})`)
          .join(", ");
        console.log(
          `${result.file}: ${result.prediction} (${percent(result.confidence)}); next ${others}`,
        );
      }
    }
    const scored = labelledAccuracy(results);
    if (scored && !values.json) {
      console.log(
        `accuracy ${scored.correct}/${scored.labelled} (${
          percent(scored.correct / scored.labelled)
        }) on the images whose file names start with their digit`,
      );
    }
    if (failed > 0 && !values.json) {
      console.error(`${failed} of ${results.length} images could not be classified.`);
    }
    return failed > 0 ? 1 : 0;
  } finally {
    await classifier.release();
  }
}

if (import.meta.main) {
  await runMain(async () => {
    const code = await main(Deno.args);
    if (code !== 0) Deno.exit(code);
  });
}
