/**
 * deno task eval:handwriting [--model FILE.onnx]... [--out DIR] [--usps-split test|train]
 *                            [--mnist N] [FOLDER...]
 *
 * Every model on other people's handwriting: the USPS digits (real, from
 * envelopes) and MNIST test digits saved as image files, each by the deploy
 * path and by the model alone, and the people-like digits of examples/.
 * Writes DIR/metrics/handwriting.json and DIR/plots/usps_mistakes_MODEL.png
 * (with --usps-split train: handwriting_train.json, usps_train_mistakes_MODEL.png,
 * so that choosing on training digits never overwrites the reported figures).
 */
import { join } from "node:path";
import { DataError, loadTestSet, subset } from "../data/mnist.ts";
import { loadUspsTest, loadUspsTrain } from "../data/usps.ts";
import { VERSIONS } from "../deps.ts";
import { classifierFiles, OnnxClassifier } from "../infer/classifier.ts";
import { SATURATED_SHARE } from "../infer/preprocess.ts";
import { commandLine, intFlag, parseFlags, runMain, UsageError } from "../util/cli.ts";
import { writeJsonAtomic } from "../util/files.ts";
import { distinctModelNames, fileSafeName } from "../util/model_names.ts";
import { listModels } from "../util/results_dir.ts";
import {
  HANDWRITING_SETS,
  HandwritingError,
  type HandwritingScore,
  labelledImages,
  scoreHandwriting,
} from "./handwriting.ts";
import { writeExamplesGrid } from "./plots.ts";
import {
  type DigitSet,
  mnistDigits,
  scoreTwoPaths,
  TRANSFER_BOOTSTRAP,
  type TwoPathScore,
  uspsDigits,
  writeDigitFiles,
} from "./transfer.ts";

const HELP = `Score ONNX models on other people's handwriting.

Usage: deno task eval:handwriting [flags] [FOLDER...]

Three sets, every model:
  USPS          real digits from envelopes (data/usps/), never trained on: by the
                deploy path (each digit a 16x16 PNG read by infer's code) and by
                the model alone (the digit normalised as MNIST was)
  MNIST         the first N test digits saved as 28x28 PNGs, by both paths
  people-like   labelled image files, FOLDERs (default ${HANDWRITING_SETS.join(" and ")}),
                each name starting with its digit and a dash (7-chalk.png)

Flags:
  --model FILE.onnx    a model to score (repeatable; default: every .onnx in DIR/models/)
  --out DIR            reads DIR/models/, writes DIR/metrics/handwriting.json and
                       DIR/plots/usps_mistakes_MODEL.png (default results/); with
                       --usps-split train, handwriting_train.json and
                       usps_train_mistakes_MODEL.png
  --usps-split SPLIT   test (default; read once per reported configuration) or train
                       (7,291 digits, where preprocessing is chosen)
  --mnist N            MNIST test digits to save as images (default 2000; 0 skips them)
  --help               show this help`;

function percent(value: number, digits = 1): string {
  return `${(value * 100).toFixed(digits)}%`;
}

function points(value: number): string {
  return `${value >= 0 ? "+" : "−"}${Math.abs(value * 100).toFixed(2)}`;
}

/** One line: both paths, their paired difference, refusals. */
export function describeTwoPaths(set: string, score: TwoPathScore): string {
  const { deploy, reference, difference } = score;
  return `${set}: ${
    percent(deploy.accuracy, 2)
  } through the deploy path (${deploy.refused} of ${deploy.images} refused), ` +
    `${percent(reference.accuracy, 2)} by the model alone; difference ${
      points(difference.value)
    } points (95% interval ${points(difference.ci95.low)} to ${points(difference.ci95.high)}, ` +
    `McNemar p = ${difference.mcnemar_p.toPrecision(2)})`;
}

/** One line: deploy accuracy by thirds of stroke width and of slant. */
export function describeShapes(set: string, score: TwoPathScore): string {
  const thirds = (parts: TwoPathScore["by_shape"]["stroke_width"], digits: number) =>
    parts.map((p) => `${p.from.toFixed(digits)}–${p.to.toFixed(digits)}: ${percent(p.accuracy, 2)}`)
      .join(", ");
  return `${set} by thirds, stroke width in px (${thirds(score.by_shape.stroke_width, 2)}); ` +
    `|slant| in px per row (${thirds(score.by_shape.abs_slant, 3)})`;
}

async function twoPathSets(
  uspsSplit: "test" | "train",
  mnistCount: number,
): Promise<Array<{ set: DigitSet; source: string }>> {
  const usps = uspsSplit === "test" ? await loadUspsTest() : await loadUspsTrain();
  const sets = [{ set: uspsDigits(usps), source: `data/usps/zip.${uspsSplit}.gz` }];
  if (mnistCount > 0) {
    const test = await loadTestSet();
    const first = subset(
      test,
      Array.from({ length: Math.min(mnistCount, test.count) }, (_, i) => i),
    );
    sets.push({ set: mnistDigits(first), source: `MNIST test digits 0-${first.count - 1}` });
  }
  return sets;
}

export async function main(args: string[]): Promise<void> {
  const { values, positionals } = parseFlags(args, {
    model: { type: "string", multiple: true },
    out: { type: "string", default: "results" },
    "usps-split": { type: "string", default: "test" },
    mnist: { type: "string" },
    help: { type: "boolean", default: false },
  }, true);
  if (values.help) {
    console.log(HELP);
    return;
  }
  const uspsSplit = values["usps-split"];
  if (uspsSplit !== "test" && uspsSplit !== "train") {
    throw new UsageError(`--usps-split must be test or train, got "${uspsSplit}".`);
  }
  const mnistCount = intFlag(values.mnist, "mnist", 2000, 0, 10000);
  const trainSuffix = uspsSplit === "train" ? "train_" : "";
  const folders = positionals.length > 0 ? positionals : HANDWRITING_SETS;
  let files: string[];
  try {
    files = await labelledImages(folders);
  } catch (error) {
    if (error instanceof HandwritingError) throw new UsageError(error.message);
    throw error;
  }
  const modelFiles = values.model?.length
    ? values.model
    : await classifierFiles(await listModels(values.out!, "onnx"));
  const names = distinctModelNames(modelFiles);
  let sets: Array<{ set: DigitSet; source: string }>;
  try {
    sets = await twoPathSets(uspsSplit, mnistCount);
  } catch (error) {
    if (error instanceof DataError) throw new UsageError(error.message);
    throw error;
  }
  const scratch = await Deno.makeTempDir({ prefix: "handwriting-" });
  try {
    const digitFiles = new Map<string, string[]>();
    for (const { set } of sets) {
      digitFiles.set(set.name, await writeDigitFiles(set, join(scratch, set.name)));
    }
    console.log(
      `Scoring ${modelFiles.length} models on USPS ${uspsSplit} (${sets[0].set.count} digits)` +
        (mnistCount > 0 ? `, ${sets[1]?.set.count} MNIST test digits as images` : "") +
        ` and ${files.length} people-like images from ${folders.join(", ")}.`,
    );
    const models: Record<
      string,
      {
        file: string;
        saturated: HandwritingScore;
        plain: HandwritingScore;
        usps: TwoPathScore;
        mnist_as_images?: TwoPathScore;
      }
    > = {};
    const plots: string[] = [];
    for (const [i, file] of modelFiles.entries()) {
      const classifier = await OnnxClassifier.load(file);
      try {
        const name = names[i];
        const scores: TwoPathScore[] = [];
        for (const { set } of sets) {
          scores.push(await scoreTwoPaths(classifier, set, digitFiles.get(set.name)!));
        }
        const [usps, mnist] = scores;
        const saturated = await scoreHandwriting(classifier, files, true);
        const plain = await scoreHandwriting(classifier, files, false);
        models[name] = {
          file,
          saturated,
          plain,
          usps,
          ...(mnist ? { mnist_as_images: mnist } : {}),
        };
        console.log(describeTwoPaths(`${name}, USPS ${uspsSplit}`, usps));
        console.log(describeShapes(`${name}, USPS ${uspsSplit}`, usps));
        if (mnist) console.log(describeTwoPaths(`${name}, MNIST test digits as images`, mnist));
        const sources = Object.entries(saturated.by_source)
          .map(([source, s]) => `${source} ${percent(s.accuracy)} of ${s.images}`).join(", ");
        console.log(
          `${name}, people-like: ${percent(saturated.accuracy)} with stroke saturation ` +
            `(${percent(plain.accuracy)} without); ${sources}`,
        );
        const plot = join(
          values.out!,
          "plots",
          `usps_${trainSuffix}mistakes_${fileSafeName(name)}.png`,
        );
        await writeMistakesPicture(sets[0].set, usps, name, uspsSplit, plot);
        plots.push(plot);
      } finally {
        await classifier.release();
      }
    }
    const path = join(values.out!, "metrics", `handwriting${trainSuffix ? "_train" : ""}.json`);
    await writeJsonAtomic(path, {
      command: commandLine("deno task eval:handwriting", args),
      date: new Date().toISOString(),
      versions: { deno: Deno.version.deno, ...VERSIONS },
      folders,
      images: files.length,
      saturated_share: SATURATED_SHARE,
      two_paths: {
        usps: { split: uspsSplit, digits: sets[0].set.count, source: sets[0].source },
        ...(sets[1]
          ? { mnist_as_images: { digits: sets[1].set.count, source: sets[1].source } }
          : {}),
        deploy_path: "each digit a PNG of dark ink on white, read by classifyFiles " +
          "(decodeGray + toMnist), as deno task infer, the lab and /api/classify do",
        reference_path: "USPS: ink scaled into a 20x20 box keeping its aspect ratio, centre of " +
          "mass at pixel (14, 14) of 28x28 (referenceMnist); MNIST: its own pixels",
        bootstrap: TRANSFER_BOOTSTRAP,
      },
      models,
    });
    console.log(`metrics: ${path}; pictures: ${plots.join(", ")}`);
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
}

/** The digits a model misreads by the deploy path, as they came (16×16), "label → answer". */
async function writeMistakesPicture(
  set: DigitSet,
  score: TwoPathScore,
  model: string,
  split: string,
  path: string,
): Promise<void> {
  const perRow = 16;
  const tiles = score.mistakes.map(({ index, label, prediction }) => ({
    label: `${label} → ${prediction < 0 ? "refused" : prediction}`,
    ...set.pixels(index),
  }));
  const rows = [];
  for (let i = 0; i < Math.max(1, tiles.length); i += perRow) {
    rows.push({
      title: i === 0 ? `${tiles.length} of ${set.count}` : "",
      images: tiles.slice(i, i + perRow),
    });
  }
  await writeExamplesGrid(
    rows,
    path,
    `USPS ${split} digits the ${model} model misreads through the deploy path (label → answer)`,
  );
}

if (import.meta.main) await runMain(() => main(Deno.args));
