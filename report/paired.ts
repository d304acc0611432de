/**
 * Is a difference between two models real? Every pair of deployed models
 * compared on the same 10,000 test images: McNemar's exact test on the images
 * only one of them gets right, and a paired bootstrap interval of the
 * accuracy difference. Over seeds, the interval of the mean difference.
 */
import { pct, signedPoints, table } from "./format.ts";
import { isRecipeKey, type ReportInputs, type RobustnessSummary as Summary } from "./inputs.ts";
import { robustnessBySeed } from "./robust.ts";
import {
  discordant,
  hasSpread,
  holdsZero,
  mcnemarExact,
  pairedBootstrap,
  summarize,
} from "../util/stats.ts";

/** Seed of the bootstrap resamples, recorded so the report is reproducible. */
export const BOOTSTRAP_SEED = 1;

/** Per-image correctness from a predictions string and the labels it was scored on. */
export function correctness(predictions: string, labels: ArrayLike<number>): boolean[] {
  return Array.from(labels, (label, i) => Number(predictions[i]) === label);
}

/** One sentence's verdict for a difference and its interval. */
export function verdict(
  difference: number,
  low: number,
  high: number,
  a: string,
  b: string,
): string {
  return holdsZero({ low, high }) ? "within noise" : difference > 0 ? `${a} better` : `${b} better`;
}

/**
 * The other families, runs on named recipes ("vgg:clean"), the ensemble and
 * the committee are compared with the robust CNN only (every other pair is
 * compared).
 */
const FAMILIES = ["resnet", "separable", "vit", "vgg", "turned", "ensemble", "committee"];
const comparedWithRobustOnly = (model: string) => FAMILIES.includes(model) || isRecipeKey(model);

function comparedPairs<T>(models: Array<[string, T]>): Array<[[string, T], [string, T]]> {
  const pairs: Array<[[string, T], [string, T]]> = [];
  for (let i = 0; i < models.length; i++) {
    for (let j = i + 1; j < models.length; j++) {
      const [a, b] = [models[i], models[j]];
      if (!comparedWithRobustOnly(a[0]) && !comparedWithRobustOnly(b[0])) pairs.push([a, b]);
      else if (b[0] === "robust") pairs.push([a, b]);
      else if (a[0] === "robust") pairs.push([b, a]);
    }
  }
  return pairs;
}

export function pairedMarkdown(inputs: ReportInputs, testLabels?: ArrayLike<number>): string {
  const out: string[] = [];
  const models = Object.entries(inputs.testSets).filter(([, t]) =>
    typeof t.predictions === "string" && t.predictions.length > 0
  );
  if (testLabels && models.length >= 2) {
    const rows: string[][] = [];
    for (const [[a, ta], [b, tb]] of comparedPairs(models)) {
      if (ta.predictions!.length !== tb.predictions!.length) continue;
      const labels = Array.from(testLabels).slice(0, ta.predictions!.length);
      const ca = correctness(ta.predictions!, labels), cb = correctness(tb.predictions!, labels);
      const { onlyA, onlyB } = discordant(ca, cb);
      const p = mcnemarExact(onlyA, onlyB);
      const boot = pairedBootstrap(ca, cb, BOOTSTRAP_SEED);
      rows.push([
        `${a} − ${b}`,
        `${signedPoints(boot.difference)} points`,
        `${signedPoints(boot.ci95.low)} to ${signedPoints(boot.ci95.high)}`,
        `${onlyA} / ${onlyB}`,
        p < 0.001 ? p.toExponential(1) : p.toFixed(3),
        verdict(boot.difference, boot.ci95.low, boot.ci95.high, a, b),
      ]);
    }
    out.push(
      "### Paired tests on the test set",
      "",
      "The deployed models (ONNX) on the same test images. McNemar's exact test uses only the images one model " +
        "gets right and the other wrong; the interval is a paired bootstrap over test images " +
        `(2,000 resamples, seed ${BOOTSTRAP_SEED}). "Within noise" means the interval holds zero.`,
      "",
      table(
        [
          "difference",
          "accuracy",
          "95% interval",
          "right only in first / second",
          "McNemar p",
          "verdict",
        ],
        rows,
      ),
      "",
    );
  }
  const families = familiesMarkdown(inputs);
  if (families) out.push(families, "");
  const seeded = Object.entries(inputs.seeds);
  if (seeded.length) {
    out.push(
      "### Over seeds",
      "",
      table(
        [
          "model",
          "seeds",
          "test accuracy per seed (95% binomial interval)",
          "mean ± std",
          "95% interval of the mean",
        ],
        seeded.map(([model, s]) => {
          const t = s.summary.test_accuracy;
          return [
            model,
            s.seeds.join(", "),
            s.runs.map((r) =>
              `${pct(r.test_accuracy)} (${pct(r.test_ci95.low)}–${pct(r.test_ci95.high)})`
            )
              .join("; "),
            `${pct(t.mean)} ± ${(t.std * 100).toFixed(2)}`,
            t.ci95 ? `${pct(t.ci95.low)} to ${pct(t.ci95.high)}` : "–",
          ];
        }),
      ),
      "",
    );
    // Differences across seeds between models that both have several seeds (same seed list).
    for (let i = 0; i < seeded.length; i++) {
      for (let j = i + 1; j < seeded.length; j++) {
        const [a, sa] = seeded[i], [b, sb] = seeded[j];
        const common = sa.runs.filter((r) => sb.runs.some((q) => q.seed === r.seed));
        if (common.length < 2) continue;
        const d = summarize(
          common.map((r) =>
            r.test_accuracy - sb.runs.find((q) => q.seed === r.seed)!.test_accuracy
          ),
        );
        const seeds = common.map((r) => r.seed).join(", ");
        out.push(
          !hasSpread(d)
            ? `- ${a} − ${b} over seeds ${seeds}: ${
              signedPoints(d.mean)
            } points on every seed: no interval.`
            : `- ${a} − ${b} over seeds ${seeds}: ${signedPoints(d.mean)} points, ` +
              `95% interval ${signedPoints(d.ci95!.low)} to ${signedPoints(d.ci95!.high)}: ${
                verdict(d.mean, d.ci95!.low, d.ci95!.high, a, b)
              }.`,
        );
      }
    }
    out.push("");
    const families = familiesOverSeedsMarkdown(inputs);
    if (families) out.push(families, "");
  }
  return out.length ? ["## Which differences are real", "", ...out].join("\n") : "";
}

/**
 * Each robustness family over seeds: for every pair of models evaluated with
 * at least two common seeds, the mean of the per-seed differences and its t
 * interval (seed s of one model against seed s of the other).
 */
export function familiesOverSeedsMarkdown(inputs: ReportInputs): string | undefined {
  const models = Object.keys(inputs.seedRuns).map((model) => ({
    model,
    bySeed: robustnessBySeed(inputs, model),
  })).filter(({ bySeed }) => bySeed.size >= 2);
  const pairs: Array<
    { name: string; seeds: number[]; a: Map<number, Summary>; b: Map<number, Summary> }
  > = [];
  for (let i = 0; i < models.length; i++) {
    for (let j = i + 1; j < models.length; j++) {
      const a = models[i], b = models[j];
      const seeds = [...a.bySeed.keys()].filter((seed) => b.bySeed.has(seed));
      if (seeds.length >= 2) {
        pairs.push({ name: `${a.model} − ${b.model}`, seeds, a: a.bySeed, b: b.bySeed });
      }
    }
  }
  if (pairs.length === 0) return undefined;
  const families = Object.keys(inputs.robustness?.families ?? {});
  const cell = (pair: typeof pairs[number], pick: (s: Summary) => number | null | undefined) => {
    const differences = pair.seeds.map((seed) => {
      const a = pick(pair.a.get(seed)!), b = pick(pair.b.get(seed)!);
      return typeof a === "number" && typeof b === "number" ? a - b : NaN;
    });
    if (differences.some(Number.isNaN)) return "–";
    const d = summarize(differences);
    if (!hasSpread(d)) return `${signedPoints(d.mean, 1)} (every seed)`;
    const range = `${signedPoints(d.ci95!.low, 1)} to ${signedPoints(d.ci95!.high, 1)}`;
    return `${signedPoints(d.mean, 1)} (${range})${holdsZero(d.ci95!) ? ", within noise" : ""}`;
  };
  const rows = [
    ...families.map((
      family,
    ) => [family, ...pairs.map((pair) => cell(pair, (s) => s.families[family]))]),
    ["MNIST-C mean", ...pairs.map((pair) => cell(pair, (s) => s.mnist_c_mean))],
  ];
  return [
    "Each robustness family over seeds: the mean over seeds of seed s's difference, first model minus " +
    "second, in points, with its 95% t interval (" +
    pairs.map((pair) => `${pair.name}: seeds ${pair.seeds.join(", ")}`).join("; ") +
    "; each seed's models evaluated by `deno task eval:robustness` in its results folder).",
    "",
    table(["family", ...pairs.map((pair) => pair.name)], rows),
  ].join("\n");
}

/** Each robustness family: the compared pairs of models, image by image on the same perturbed digits. */
function familiesMarkdown(inputs: ReportInputs): string | undefined {
  const paired = inputs.robustness?.paired;
  if (!paired || paired.comparisons.length === 0) return undefined;
  // The pairs the report compares, each as "first − second" (a stored b − a is turned round).
  const oriented = paired.comparisons.flatMap((c) => {
    const [pair] = comparedPairs([[c.a, c], [c.b, c]]);
    if (!pair) return [];
    const turned = pair[0][0] !== c.a;
    return [{
      pair: `${pair[0][0]} − ${pair[1][0]}`,
      family: c.family,
      difference: turned ? -c.difference : c.difference,
      ci95: turned ? { low: -c.ci95.high, high: -c.ci95.low } : c.ci95,
    }];
  });
  const pairs = [...new Set(oriented.map((c) => c.pair))];
  const families = [...new Set(oriented.map((c) => c.family))];
  const cell = (family: string, pair: string) => {
    const c = oriented.find((c) => c.family === family && c.pair === pair);
    if (!c) return "–";
    const range = `${signedPoints(c.ci95.low, 1)} to ${signedPoints(c.ci95.high, 1)}`;
    return `${signedPoints(c.difference, 1)} (${range})${
      holdsZero(c.ci95) ? ", within noise" : ""
    }`;
  };
  return [
    "### Robustness families, model against model",
    "",
    "Every model classified the same perturbed test images, so each difference is paired image by image: " +
    "an image's score is the share of the family's levels the model gets right (for MNIST-C, the share over " +
    "its corruptions), and the interval is a paired bootstrap over test images " +
    `(${
      paired.bootstrap.resamples.toLocaleString("en")
    } resamples, seed ${paired.bootstrap.seed}). ` +
    "Points of mean accuracy, first model minus second, with the 95% interval. From " +
    "`" + inputs.robustness!.command + "` (metrics/robustness.json).",
    "",
    table(
      ["family", ...pairs],
      families.map((
        family,
      ) => [
        family === "mnist_c" ? "MNIST-C mean" : family,
        ...pairs.map((pair) => cell(family, pair)),
      ]),
    ),
  ].join("\n");
}
