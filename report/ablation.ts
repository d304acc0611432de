/**
 * The ablation in the report: two figures and a section whose sentences
 * are computed from metrics/ablation.json, so they change with the numbers.
 */
import {
  type AblationFile,
  measureOf,
  runsOf,
  seedsOf,
  type SpreadMeasure,
  type VariantResult,
} from "../ablation/results.ts";
import { discordant, hasSpread, holdsZero, mcnemarExact, summarize } from "../util/stats.ts";
import { pct, signedPoints, table } from "./format.ts";
import { correctness } from "./paired.ts";
import { barsWithErrorRules } from "./specs.ts";

/** Published MNIST test accuracies the small CNN is compared with. */
export const PUBLISHED = {
  singleCnnWithAugmentation: 0.9964,
  ensembles: [0.998, 0.999] as const,
};

const MEASURES = [
  ["clean test", (r: VariantResult) => r.test_accuracy, "test_accuracy"],
  ["augmented test", (r: VariantResult) => r.test_accuracy_augmented, "test_accuracy_augmented"],
  ["rotation ±60°", (r: VariantResult) => r.robustness?.rotation, "rotation"],
  ["shift ±6 px", (r: VariantResult) => r.robustness?.shift, "shift"],
  ["MNIST-C", (r: VariantResult) => r.robustness?.mnist_c, "mnist_c"],
] as const;

/**
 * Variant a minus variant b on one measure, paired by seed: with two or more
 * common seeds, the mean difference and its 95% t interval, and "within
 * noise" when the interval holds zero; with one, the bare difference.
 */
export function differenceText(
  file: AblationFile,
  a: string,
  b: string,
  measure: SpreadMeasure,
): string {
  const runs = runsOf(file);
  const differences = runs.filter((r) => r.name === a).flatMap((ra) => {
    const rb = runs.find((r) => r.name === b && r.seed === ra.seed);
    const x = measureOf(ra, measure), y = rb && measureOf(rb, measure);
    return x === undefined || y === undefined ? [] : [x - y];
  });
  if (differences.length === 0) return "–";
  const s = summarize(differences);
  if (!s.ci95) return `${points(s.mean)} (one seed, no interval)`;
  if (!hasSpread(s)) {
    return `${points(s.mean)} (the same on all ${s.n} seeds: no spread to make an interval from)`;
  }
  return `${points(s.mean)} (95% interval ${points(s.ci95.low)} to ${
    points(s.ci95.high)
  } over ${s.n} seeds${holdsZero(s.ci95) ? ": within noise" : ""})`;
}

/** Every variant's accuracy on each measure, as grouped bars. */
export function ablationSpec(file: AblationFile) {
  const values = file.variants.flatMap((result) =>
    MEASURES.flatMap(([measure, of, key]) => {
      const value = of(result);
      const spread = file.spread?.[result.name]?.[key];
      return value === undefined ? [] : [{
        variant: result.name,
        measure,
        value,
        // Error bars: one standard deviation over seeds (none for a single seed).
        low: value - (spread?.std ?? 0),
        high: value + (spread?.std ?? 0),
      }];
    })
  );
  const seeds = seedsOf(file.settings);
  const x = {
    field: "variant",
    type: "nominal",
    title: null,
    sort: file.variants.map((r) => r.name),
    axis: { labelAngle: -30, labelLimit: 240 },
  };
  const xOffset = { field: "measure", sort: MEASURES.map(([m]) => m) };
  return barsWithErrorRules({
    title: `Ablation: accuracy of each variant (${epochs(file.settings.epochs)} each, ${
      seeds.length > 1 ? `mean of seeds ${seeds.join(", ")}, bars ±1 std` : `seed ${seeds[0]}`
    })`,
    values,
    x,
    xOffset,
    color: {
      field: "measure",
      type: "nominal",
      title: "Measured on",
      sort: MEASURES.map(([m]) => m),
    },
  });
}

/** Whether the ablation holds at least two points of the rotation sweep. */
export function hasRotationSweep(file: AblationFile): boolean {
  return (file.rotation_sweep ?? []).filter(({ variant }) =>
    file.variants.some((r) => r.name === variant)
  )
    .length >= 2;
}

/** Clean accuracy and robustness against the training rotation range. */
export function rotationSweepSpec(file: AblationFile) {
  const values = file.rotation_sweep.flatMap(({ variant, degrees }) => {
    const result = file.variants.find((r) => r.name === variant);
    if (!result) return [];
    return MEASURES.flatMap(([measure, of]) => {
      const value = of(result);
      return value === undefined ? [] : [{ degrees, measure, value }];
    });
  });
  return {
    title: "Training rotation range: clean accuracy against robustness",
    data: { values },
    width: 420,
    height: 280,
    mark: { type: "line", point: true, strokeWidth: 2 },
    encoding: {
      x: {
        field: "degrees",
        type: "quantitative",
        title: "Largest training rotation (degrees)",
        axis: { values: file.rotation_sweep.map((s) => s.degrees) },
      },
      y: {
        field: "value",
        type: "quantitative",
        title: "Accuracy",
        axis: { format: "%" },
        scale: { zero: false },
      },
      color: {
        field: "measure",
        type: "nominal",
        title: "Measured on",
        sort: MEASURES.map(([m]) => m),
      },
    },
  };
}

const epochs = (count: number) => `${count} epoch${count === 1 ? "" : "s"}`;

/** "+1.23 points" / "−0.40 points". */
function points(difference: number | undefined): string {
  if (difference === undefined || !Number.isFinite(difference)) return "–";
  return `${signedPoints(difference)} points`;
}

/**
 * What a variant adds over another, on the measures that answer the
 * question; each difference paired by seed, with its interval when there are
 * several seeds.
 */
function findings(file: AblationFile): string[] {
  const by = (name: string) => file.variants.find((r) => r.name === name);
  const gap = (r: VariantResult) => r.train_val_gap;
  const base = by("baseline");
  const lines: string[] = [];
  const augment = by("baseline_augment");
  if (base && augment) {
    lines.push(
      `- **Augmentation** is what makes the model robust to geometry: on its own it changes the baseline's ` +
        `mean accuracy over the rotation sweep by ${
          differenceText(file, "baseline_augment", "baseline", "rotation")
        } and over the shift sweeps by ` +
        `${differenceText(file, "baseline_augment", "baseline", "shift")}, at ${
          differenceText(file, "baseline_augment", "baseline", "test_accuracy")
        } of clean test accuracy ` +
        `(MNIST-C ${differenceText(file, "baseline_augment", "baseline", "mnist_c")}).`,
    );
  }
  const bn = by("baseline_bn");
  if (base && bn) {
    lines.push(
      `- **BatchNorm** changes clean test accuracy by ${
        differenceText(file, "baseline_bn", "baseline", "test_accuracy")
      } and MNIST-C by ` +
        `${
          differenceText(file, "baseline_bn", "baseline", "mnist_c")
        }; the baseline reached 99% validation accuracy ` +
        `${base.epochs_to_99 ? `at epoch ${base.epochs_to_99}` : "in no epoch"}, with BatchNorm ` +
        `${bn.epochs_to_99 ? `at epoch ${bn.epochs_to_99}` : "in no epoch"}.`,
    );
  }
  const dropout = by("baseline_dropout");
  if (base && dropout) {
    lines.push(
      `- **Dropout** narrows the train − validation gap from ${points(gap(base))} to ${
        points(gap(dropout))
      } ` +
        `and changes clean test accuracy by ${
          differenceText(file, "baseline_dropout", "baseline", "test_accuracy")
        }.`,
    );
  }
  const improved = by("improved");
  const convOnly = by("improved_conv_dropout");
  const denseOnly = by("improved_dense_dropout");
  if (improved && (convOnly || denseOnly)) {
    const placements = [
      ["both blocks", improved],
      ["the conv blocks only", convOnly],
      ["the dense block only", denseOnly],
    ].filter((entry): entry is [string, VariantResult] => entry[1] !== undefined);
    lines.push(
      `- **Dropout placement** in the improved model: ` +
        placements.map(([where, r]) =>
          `in ${where} ${pct(r.test_accuracy)} clean, ${pct(r.robustness?.mnist_c)} MNIST-C`
        ).join("; ") + ". Against both blocks: " +
        placements.slice(1).map(([where, r]) =>
          `${where} changes clean accuracy by ${
            differenceText(file, r.name, improved.name, "test_accuracy")
          } and MNIST-C by ${differenceText(file, r.name, improved.name, "mnist_c")}`
        ).join("; ") + ".",
    );
  }
  const sweep = (file.rotation_sweep ?? []).map(({ variant, degrees }) => ({
    degrees,
    result: by(variant),
  }))
    .filter((s): s is { degrees: number; result: VariantResult } => s.result !== undefined);
  if (sweep.length >= 2) {
    lines.push(
      `- **Rotation range**: training with up to ` +
        sweep.map(({ degrees, result }) =>
          `${degrees}° gives ${pct(result.test_accuracy)} clean and ${
            pct(result.robustness?.rotation)
          } over the rotation sweep`
        ).join("; ") +
        `. From ${sweep[0].degrees}° to ${sweep.at(-1)!.degrees}°: clean ${
          differenceText(file, sweep.at(-1)!.result.name, sweep[0].result.name, "test_accuracy")
        }, rotation sweep ${
          differenceText(file, sweep.at(-1)!.result.name, sweep[0].result.name, "rotation")
        }.`,
    );
  }
  const best = file.variants.reduce<VariantResult | undefined>(
    (a, b) => (!a || b.test_accuracy > a.test_accuracy ? b : a),
    undefined,
  );
  if (best) {
    lines.push(
      `- **Against published results**: the best variant here, ${best.name}, reaches ${
        pct(best.test_accuracy)
      } after ${epochs(file.settings.epochs)}, ${
        points(best.test_accuracy - PUBLISHED.singleCnnWithAugmentation)
      } ` +
        `from a single small CNN with augmentation (about ${
          pct(PUBLISHED.singleCnnWithAugmentation)
        }) ` +
        `and ${points(best.test_accuracy - PUBLISHED.ensembles[0])} from ensembles (${
          pct(PUBLISHED.ensembles[0], 1)
        } to ${pct(PUBLISHED.ensembles[1], 1)}).`,
    );
  }
  return lines;
}

/** A variant's measure, "mean ± std" (in points) over several seeds. */
function withSpread(
  file: AblationFile,
  r: VariantResult,
  measure: SpreadMeasure,
  digits: number,
): string {
  const spread = file.spread?.[r.name]?.[measure];
  const value = pct(measureOf(r, measure), digits);
  return spread && spread.n > 1 ? `${value} ± ${(spread.std * 100).toFixed(digits)}` : value;
}

/** Each step of the ablation: the variant with one change, and the variant without it. */
export const STEPS: Array<[string, string]> = [
  ["baseline_bn", "baseline"],
  ["baseline_dropout", "baseline"],
  ["baseline_augment", "baseline"],
  ["improved", "baseline"],
  ["improved_conv_dropout", "improved"],
  ["improved_dense_dropout", "improved"],
  ["improved_rotation_10", "improved_rotation_0"],
  ["improved_rotation_20", "improved_rotation_10"],
  ["improved", "improved_rotation_20"],
];

/**
 * Each step on the clean test set: the difference over seeds with its
 * interval, and McNemar's exact test on every seed where both runs kept
 * their answers for each test image.
 */
export function stepsTable(file: AblationFile, testLabels?: ArrayLike<number>): string | undefined {
  const runs = runsOf(file);
  const has = (name: string) => runs.some((r) => r.name === name);
  const rows = STEPS.filter(([a, b]) => has(a) && has(b)).map(([a, b]) => {
    const tests = testLabels === undefined ? [] : runs.filter((r) => r.name === a).flatMap((ra) => {
      const rb = runs.find((r) => r.name === b && r.seed === ra.seed);
      if (!ra.predictions || !rb?.predictions || ra.predictions.length !== rb.predictions.length) {
        return [];
      }
      const labels = Array.from(testLabels).slice(0, ra.predictions.length);
      const { onlyA, onlyB } = discordant(
        correctness(ra.predictions, labels),
        correctness(rb.predictions, labels),
      );
      const p = mcnemarExact(onlyA, onlyB);
      return [
        `seed ${ra.seed}: ${onlyA} / ${onlyB}, p ${p < 0.001 ? p.toExponential(1) : p.toFixed(3)}`,
      ];
    });
    return [`${a} − ${b}`, differenceText(file, a, b, "test_accuracy"), tests.join("; ") || "–"];
  });
  if (rows.length === 0) return undefined;
  return [
    'Each step on the clean test set, paired: the difference over seeds (95% t interval, "within noise" when it holds zero) ' +
    "and, per seed, the test images only the first variant gets right / only the second, with McNemar's exact p.",
    "",
    table(["step", "clean test difference over seeds", "McNemar per seed"], rows),
  ].join("\n");
}

export function ablationMarkdown(file: AblationFile, testLabels?: ArrayLike<number>): string {
  const s = file.settings;
  const seeds = seedsOf(s);
  const steps = stepsTable(file, testLabels);
  return [
    "## Ablation",
    "",
    `Every variant trained with ${
      seeds.length > 1
        ? `seeds ${seeds.join(", ")} (tables: mean ± standard deviation over seeds)`
        : `seed ${seeds[0]}`
    } for ${
      epochs(s.epochs)
    } (Adam ${s.learningRate}, ×${s.learningRateDecay} per epoch, batch ${s.batchSize}` +
    `${
      s.limit ? `, first ${s.limit} training images` : ""
    }), exported to ONNX and measured on ${s.evalImages} test images. ` +
    "The train − validation gap uses the last epoch's training accuracy, measured with dropout and augmentation on, " +
    "so a negative gap means the regularised training task is harder than the validation set. Produced by `" +
    file.command + "` (metrics/ablation.json).",
    "",
    table(
      [
        "variant",
        "clean test",
        "augmented test",
        "train − val gap",
        "epochs to 99% val",
        "rotation ±60°",
        "shift ±6 px",
        "MNIST-C",
        "training time",
      ],
      file.variants.map((r) => [
        r.description === r.name ? r.name : `${r.name}: ${r.description}`,
        withSpread(file, r, "test_accuracy", 2),
        withSpread(file, r, "test_accuracy_augmented", 2),
        points(r.train_val_gap),
        r.epochs_to_99 === null ? "–" : String(r.epochs_to_99),
        withSpread(file, r, "rotation", 1),
        withSpread(file, r, "shift", 1),
        withSpread(file, r, "mnist_c", 1),
        `${(r.train_seconds / 60).toFixed(1)} min`,
      ]),
    ),
    "",
    ...findings(file),
    "",
    ...(steps ? [steps, ""] : []),
    "![Ablation](plots/ablation.png)",
    "",
    ...(hasRotationSweep(file) ? ["![Rotation range sweep](plots/ablation_rotation.png)", ""] : []),
  ].join("\n");
}
