/**
 * "How close a small network gets to the state of the art": one row per
 * family and the ensemble, from the metrics files: size and speed
 * (bench.json), clean test accuracy over seeds with the paired difference
 * from the robust CNN, MNIST-C and the sweeps (robustness.json), other
 * people's handwriting (handwriting.json).
 */
import { pct, signedPoints, table } from "./format.ts";
import {
  architectureOfKey,
  classifierOfTurnedKey,
  isRecipeKey,
  isTurnedKey,
  RECIPE_ARCHITECTURE,
  recipeOfKey,
  type ReportInputs,
  type TrainingMetrics,
  TURNED_KEY,
} from "./inputs.ts";
import { BOOTSTRAP_SEED, correctness, verdict } from "./paired.ts";
import { pairedBootstrap, summarize } from "../util/stats.ts";

/**
 * The rows, in order: the robust CNN they are all compared with first. Runs
 * on a named recipe ("vgg:clean") follow their architecture's row.
 */
export const FAMILY_ROWS = [
  "robust",
  "resnet",
  "separable",
  "vit",
  "vgg",
  "vgg-gap",
  "turned",
  "ensemble",
  "committee",
] as const;
const REFERENCE = "robust";

const LABELS: Record<string, string> = {
  robust: "robust CNN (plain, 6 convs)",
  resnet: "residual CNN",
  separable: "depthwise-separable CNN",
  vit: "vision transformer",
  vgg: "VGG-style CNN (pairs of convs, 2× wider)",
  "vgg-gap": "VGG-style CNN with a global average head (no Flatten)",
  "vgg:clean": "VGG-style CNN, clean recipe (geometry only)",
  "vgg:light": "VGG-style CNN, light recipe (appearance half as often)",
  "vgg:mild": "VGG-style CNN, mild recipe (clean geometry, every appearance family)",
  "vgg:mild-turn": "VGG-style CNN, mild-turn recipe (mild, then 5 epochs with rotations to 36°)",
  "vgg:mild-mix": "VGG-style CNN, mild-mix recipe (mild, half the images turned up to 36°)",
  "vgg:mild-mix-settle": "VGG-style CNN, mild-mix-settle recipe (mild-mix, then 5 epochs at 20°)",
  "vgg:mild-mix-mild": "VGG-style CNN, mild-mix-mild recipe (mild-mix, then 5 epochs of mild)",
  "vgg:mild-mix-again": "VGG-style CNN, mild-mix-again recipe (mild-mix, then 5 more epochs of it)",
  "vgg:mild-mix-stroke":
    "VGG-style CNN, mild-mix-stroke recipe (mild-mix, then the robust recipe's finish)",
  "vgg:mild-stroke": "VGG-style CNN, mild-stroke recipe (mild, then the robust recipe's finish)",
  "vgg:mild-robust": "VGG-style CNN, mild-robust recipe (mild, then 5 epochs on the robust one's)",
  "vgg:mild-shift": "VGG-style CNN, mild-shift recipe (mild, then 5 epochs with ±4.2 px shifts)",
  "vgg:mild-shift-stroke":
    "VGG-style CNN, mild-shift-stroke recipe (mild-shift, on the robust finish's appearance)",
  "vgg:mild-mix-shift":
    "VGG-style CNN, mild-mix-shift recipe (mild-mix, then 5 epochs with ±4.2 px shifts)",
  "vgg:mild-mix-midshift":
    "VGG-style CNN, mild-mix-midshift recipe (mild-mix, then 5 epochs with ±3.5 px shifts)",
  turned: "VGG-style CNN, mild recipe, behind a learned turn (one ONNX file)",
  ensemble: "ensemble (one ONNX file)",
  committee: "committee (one ONNX file, several seeds' models)",
};

/**
 * A row's label; a recipe without words of its own is named after its
 * architecture's, and a turn in front of a recipe's VGG after that VGG's.
 */
export function labelOf(key: string): string {
  if (LABELS[key]) return LABELS[key];
  if (isTurnedKey(key)) {
    return `${labelOf(classifierOfTurnedKey(key))}, behind a learned turn (one ONNX file)`;
  }
  return `${LABELS[architectureOfKey(key)] ?? architectureOfKey(key)}, ${recipeOfKey(key)} recipe`;
}

/** The rows present in `inputs`, each recipe's after its architecture. */
export function familyRows(inputs: ReportInputs): string[] {
  const recipeKeys = [...Object.keys(inputs.training), ...Object.keys(inputs.turnedRuns ?? {})]
    .filter(isRecipeKey).sort();
  return FAMILY_ROWS.flatMap((model) => [
    model,
    ...recipeKeys.filter((key) => architectureOfKey(key) === model),
  ]).filter((model) => testAccuracyBySeed(inputs, model).size > 0);
}

/**
 * A committee's models come from several seeds, so it pairs with no seed's
 * run: its difference is taken over test images against the robust CNN's
 * first seed.
 */
const NO_SEED = -1;

/** Clean test accuracy of each seed a model was trained (or, for the ensemble, exported) with. */
export function testAccuracyBySeed(inputs: ReportInputs, model: string): Map<number, number> {
  if (model === "committee") {
    const own = inputs.testSets.committee;
    return own ? new Map([[NO_SEED, own.accuracy]]) : new Map();
  }
  if (isTurnedKey(model)) {
    return new Map((inputs.turnedRuns?.[model] ?? []).map((run) => [run.seed, run.test.accuracy]));
  }
  if (model === "ensemble") {
    const runs = inputs.ensembleRuns.map((run) => [run.seed, run.test.accuracy] as const);
    // Without seeds files, the folder's own ensemble_test.json, of its robust model's seed.
    const own = inputs.testSets.ensemble;
    if (runs.length === 0 && own) {
      return new Map([[inputs.training.robust?.seed ?? 42, own.accuracy]]);
    }
    return new Map(runs);
  }
  const seeds = inputs.seeds[model];
  if (seeds) return new Map(seeds.runs.map((run) => [run.seed, run.test_accuracy]));
  const single = inputs.training[model];
  return single ? new Map([[single.seed, single.test_accuracy]]) : new Map();
}

/** Seed by seed, a − b over the seeds both have, in a's order. */
export function differencesBySeed(
  a: Map<number, number>,
  b: Map<number, number>,
): Map<number, number> {
  return new Map(
    [...a].filter(([seed]) => b.has(seed)).map(([seed, v]) => [seed, v - b.get(seed)!]),
  );
}

/** Mean over the seeds both models have of (model − reference), with its t interval. */
export function differenceOverSeeds(inputs: ReportInputs, model: string, reference: string) {
  const differences = differencesBySeed(
    testAccuracyBySeed(inputs, model),
    testAccuracyBySeed(inputs, reference),
  );
  return differences.size ? summarize([...differences.values()]) : undefined;
}

/** A row key as a verdict names it: "vgg (clean)" for "vgg:clean". */
const spoken = (model: string) =>
  isRecipeKey(model) ? `${architectureOfKey(model)} (${recipeOfKey(model)})` : model;

const millions = (n: number | undefined) => n === undefined ? "–" : `${(n / 1e6).toFixed(2)} M`;
const thousands = (n: number | undefined) =>
  n === undefined ? "–" : `${Math.round(n / 1000).toLocaleString("en-US")} k`;

/**
 * The difference from the reference in words: over seeds where both have
 * several, else on the first seed's test images, paired image by image
 * (bootstrap), where both have their predictions.
 */
function differenceText(
  inputs: ReportInputs,
  model: string,
  testLabels?: ArrayLike<number>,
): string {
  const overSeeds = differenceOverSeeds(inputs, model, REFERENCE);
  if (overSeeds?.ci95) {
    const { mean, n, ci95: { low, high } } = overSeeds;
    return `${signedPoints(mean)} (${signedPoints(low)} to ${
      signedPoints(high)
    }), over ${n} seeds: ${verdict(mean, low, high, spoken(model), REFERENCE)}`;
  }
  const a = inputs.testSets[model]?.predictions, b = inputs.testSets[REFERENCE]?.predictions;
  if (testLabels && a && b && a.length === b.length) {
    const labels = Array.from(testLabels).slice(0, a.length);
    const boot = pairedBootstrap(correctness(a, labels), correctness(b, labels), BOOTSTRAP_SEED);
    const { low, high } = boot.ci95;
    return `${signedPoints(boot.difference)} (${signedPoints(low)} to ${signedPoints(high)}), ` +
      `one seed, over test images: ${
        verdict(boot.difference, low, high, spoken(model), REFERENCE)
      }`;
  }
  return overSeeds ? `${signedPoints(overSeeds.mean)} (one seed)` : "–";
}

/**
 * What a run's convolutions trained on, for its seconds an epoch: runs of
 * the native engine from before oneDNN record no `convolutions`, and ran on
 * im2col.
 */
export function trainedOn(metrics: TrainingMetrics): string | undefined {
  if (metrics.engine === "wasm") return "wasm";
  if (metrics.convolutions) return metrics.convolutions.split(" ")[0];
  return metrics.engine === "native" ? "im2col" : undefined;
}

/**
 * A row's size and ONNX speed. A recipe's row has its architecture's (the
 * bench's figures, or the run's own weight count). The bench's turned model
 * is the VGG behind the angle network: a turn in front of another classifier
 * has the angle network's weights (the bench's turned model's less its VGG's)
 * and that classifier's. Its arithmetic is left unsaid (the bench counts the
 * classifier once or twice, as its pick runs it) and it has no speed of its own.
 */
export function rowSize(inputs: ReportInputs, model: string) {
  const bench = inputs.bench;
  const parameters = (key: string) =>
    bench?.parameters?.[architectureOfKey(key)] ?? inputs.training[key]?.parameters?.total;
  // The plain "turned" row is the angle network's own folder's, in front of the VGG.
  const otherClassifier = isTurnedKey(model) && model !== TURNED_KEY &&
    architectureOfKey(classifierOfTurnedKey(model)) !== RECIPE_ARCHITECTURE;
  if (!otherClassifier) {
    const architecture = architectureOfKey(model);
    return {
      parameters: parameters(model),
      multiplyAdds: bench?.multiply_adds?.[architecture],
      imagesPerSecond: bench?.infer_onnx?.[architecture],
    };
  }
  const [turned, vgg, classifier] = [TURNED_KEY, RECIPE_ARCHITECTURE, classifierOfTurnedKey(model)]
    .map(parameters);
  return {
    parameters: turned === undefined || vgg === undefined || classifier === undefined
      ? undefined
      : turned - vgg + classifier,
    multiplyAdds: undefined,
    imagesPerSecond: undefined,
  };
}

const COUNT_WORDS = ["No", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight"];

export function architecturesMarkdown(
  inputs: ReportInputs,
  testLabels?: ArrayLike<number>,
): string | undefined {
  const present = familyRows(inputs);
  if (!present.some((model) => model !== REFERENCE)) return undefined;
  const robustness = inputs.robustness?.models;
  const handwriting = inputs.handwriting?.models;
  const rows = present.map((model) => {
    const clean = summarize([...testAccuracyBySeed(inputs, model).values()]);
    const training = inputs.training[model];
    const history = training?.history;
    const epochSeconds = history
      ? history.reduce((sum, r) => sum + (r.seconds ?? 0), 0) / history.length
      : undefined;
    const engine = training && trainedOn(training);
    const size = rowSize(inputs, model);
    const summary = robustness?.[model]?.summary;
    const worst = summary?.worst;
    return [
      labelOf(model),
      thousands(size.parameters),
      millions(size.multiplyAdds),
      size.imagesPerSecond?.toLocaleString("en-US") ?? "–",
      epochSeconds === undefined
        ? "–"
        : `${Math.round(epochSeconds)}${engine ? ` (${engine})` : ""}`,
      model === "committee"
        ? `${pct(clean.mean)} (one file)`
        : clean.n > 1
        ? `${pct(clean.mean)} ± ${pct(clean.std)} (${clean.n} seeds)`
        : `${pct(clean.mean)} (1 seed)`,
      model === REFERENCE ? "–" : differenceText(inputs, model, testLabels),
      pct(summary?.mnist_c_mean),
      worst ? `${pct(worst.accuracy, 1)} (${worst.family} ${worst.level})` : "–",
      pct(summary?.families.rotation),
      pct(summary?.families.elastic),
      pct(handwriting?.[model]?.usps?.deploy.accuracy),
      pct(handwriting?.[model]?.saturated.accuracy, 1),
    ];
  });
  const families =
    present.filter((model) =>
      model !== REFERENCE && model !== "ensemble" && model !== "committee" &&
      !isTurnedKey(model) && !isRecipeKey(model)
    ).length;
  const recipes = present.filter((model) => isRecipeKey(model) && !isTurnedKey(model));
  const out = [
    "## How close a small network gets to the state of the art",
    "",
    `${COUNT_WORDS[families] ?? families} more ${
      families === 1 ? "family" : "families"
    } beside the robust CNN, trained on its recipe and augmentation as they are ` +
    "(train/recipes.ts)" +
    (recipes.length
      ? `; ${
        recipes.map((key) => `"${labelOf(key)}"`).join(", ")
      } trained on a named recipe instead (\`train --recipe\`, train/recipes.ts's NAMED_RECIPES)`
      : "") +
    (present.some(isTurnedKey)
      ? "; classifiers behind a learned turn (`deno task train:turn`, then " +
        "`export --turned`: an angle network reads how far each digit is turned, the graph turns " +
        "it back, the classifier reads it, as its metadata's pick says), one ONNX file whose " +
        "two parts trained apart (no seconds an epoch)"
      : "") +
    ", and an ensemble exported as one ONNX graph whose output is the " +
    "mean of its members' probabilities, its members chosen by log loss on validation digits " +
    "(metrics/ensemble_choice.json); a committee, where there is one, joins several seeds' models " +
    "into one file by a rule fixed before it read the test set (its members: " +
    "metrics/committee_members.json, or its ONNX metadata). " +
    "Clean accuracy is the mean ± standard deviation over seeds; the " +
    "difference from the robust CNN pairs runs of the same seed with a 95% t interval over seeds or, " +
    "with one seed, is paired image by image over the test images (bootstrap, 2,000 resamples, seed " +
    `${BOOTSTRAP_SEED}); "within noise": the interval holds zero. Robustness, handwriting and speed ` +
    "are the first seed's models. Images/s: ONNX Runtime, 2 threads, batch 256 (`deno task bench`); " +
    "seconds an epoch: the first seed's training, on 2 workers, with what its convolutions ran on " +
    "(im2col and the BLAS before oneDNN, or oneDNN, which made a robust CNN step twice as fast: " +
    "epochs on the two do not compare).",
    "",
    table(
      [
        "model",
        "parameters",
        "multiply-adds an image",
        "ONNX images/s",
        "s / epoch",
        "clean test",
        "− robust CNN, points",
        "MNIST-C mean",
        "MNIST-C / sweeps worst",
        "rotation",
        "elastic",
        "USPS",
        "people-like",
      ],
      rows,
    ),
    "",
    "Published references on the MNIST test set: a small BatchNorm CNN with augmentation about 99.64%; " +
    "committees of CNNs 99.75–99.77%; DropConnect 99.79%; the best ensembles of simple CNNs 99.87%; " +
    "vision transformers trained from scratch 98–99.3%.",
  ];
  return out.join("\n");
}
