/**
 * The report's section on other people's handwriting: USPS (real digits
 * from envelopes) and MNIST digits saved as image files, each read through
 * the deploy path and by the model alone, over seeds where each seed's
 * folder was evaluated; published MNIST → USPS figures as context; the
 * people-like digits of examples/.
 */
import { mean, pct, signedPoints, table } from "./format.ts";
import type { HandwritingMetrics, ReportInputs, TwoPathMetrics } from "./inputs.ts";

/** Published MNIST → USPS accuracies: models trained on MNIST, tested on USPS digits. */
export const PUBLISHED_MNIST_TO_USPS: Array<[string, string]> = [
  ["CNNs trained on MNIST alone (the source-only rows of ADDA, 2017, and CyCADA, 2018)", "75–82%"],
  ["ADDA (adapts on unlabelled USPS digits; Tzeng et al., 2017)", "89.4%"],
  ["CyCADA (adapts on unlabelled USPS digits; Hoffman et al., 2018)", "95.6%"],
  ["SHOT (adapts on unlabelled USPS digits; Liang et al., 2020)", "about 98%"],
];

/** Every evaluated seed's handwriting file for `model`, in seed order; else this folder's. */
function filesFor(
  inputs: ReportInputs,
  model: string,
): Array<{ seed?: number; file: HandwritingMetrics }> {
  const runs = (inputs.seedRuns[model] ?? []).filter((run) => run.handwriting?.models[model]?.usps);
  if (runs.length > 0) return runs.map((run) => ({ seed: run.seed, file: run.handwriting! }));
  return inputs.handwriting?.models[model]?.usps ? [{ file: inputs.handwriting }] : [];
}

function difference(score: TwoPathMetrics): string {
  const d = score.difference;
  return `${signedPoints(d.value)} (${signedPoints(d.ci95.low)} to ${signedPoints(d.ci95.high)})`;
}

function perSeedRows(inputs: ReportInputs, models: string[]): string[][] {
  return models.flatMap((model) =>
    filesFor(inputs, model).map(({ seed, file }) => {
      const m = file.models[model];
      const usps = m.usps!, mnist = m.mnist_as_images;
      return [
        seed === undefined ? model : `${model}, seed ${seed}`,
        pct(usps.deploy.accuracy, 2),
        String(usps.deploy.refused),
        pct(usps.reference.accuracy, 2),
        difference(usps),
        usps.difference.mcnemar_p.toPrecision(2),
        mnist ? pct(mnist.deploy.accuracy, 2) : "–",
        mnist ? pct(mnist.reference.accuracy, 2) : "–",
        mnist ? difference(mnist) : "–",
        pct(m.saturated.accuracy, 1),
      ];
    })
  );
}

function meanRows(inputs: ReportInputs, models: string[]): string[][] {
  return models.flatMap((model) => {
    const files = filesFor(inputs, model).map(({ file }) => file.models[model]);
    if (files.length < 2) return [];
    const usps = files.map((m) => m.usps!);
    return [[
      model,
      String(files.length),
      pct(mean(usps.map((u) => u.deploy.accuracy)), 2),
      pct(mean(usps.map((u) => u.reference.accuracy)), 2),
      signedPoints(mean(usps.map((u) => u.difference.value))),
      String(usps.reduce((n, u) => n + u.deploy.refused, 0)),
      pct(mean(files.map((m) => m.saturated.accuracy)), 1),
    ]];
  });
}

/** The labels a model misreads most often on USPS, "5 (12), 2 (4)". */
function commonMistakes(score: TwoPathMetrics): string {
  const counts = new Map<number, number>();
  for (const { label } of score.mistakes) counts.set(label, (counts.get(label) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, 3)
    .map(([label, n]) => `${label} (${n})`).join(", ");
}

function peopleLikeSection(hw: HandwritingMetrics): string[] {
  const sources = [
    ...new Set(Object.values(hw.models).flatMap((m) => Object.keys(m.saturated.by_source))),
  ];
  const rows = Object.entries(hw.models).map(([name, m]) => [
    name,
    pct(m.saturated.accuracy, 1),
    pct(m.plain.accuracy, 1),
    ...sources.map((s) => pct(m.saturated.by_source[s]?.accuracy, 1)),
  ]);
  const counts = Object.values(hw.models)[0]?.saturated.by_source ?? {};
  return [
    "### People-like digits",
    "",
    `${hw.images} labelled images in ${
      hw.folders.join(" and ")
    }: MNIST test digits printed, photographed and ` +
    "scanned badly (thick and thin pens, grey ink, uneven light, blur, low resolution, noise, JPEG), digits " +
    "in the system's DejaVu fonts degraded the same way, and the ten hand-made examples. The project made " +
    "these itself, so they check the deploy path but cannot validate it alone; USPS above is the benchmark. " +
    `The "without" column skips stroke saturation. Produced by \`${hw.command}\`.`,
    "",
    table(
      [
        "model",
        "accuracy",
        "without stroke saturation",
        ...sources.map((s) => `${s} (${counts[s]?.images ?? "?"})`),
      ],
      rows,
    ),
    "",
  ];
}

export function handwritingMarkdown(inputs: ReportInputs): string {
  const hw = inputs.handwriting;
  if (!hw) return "";
  const models = Object.keys(hw.models);
  const withUsps = models.filter((m) => hw.models[m].usps);
  const out = ["## Other people's handwriting", ""];
  if (withUsps.length > 0 && hw.two_paths) {
    const usps = hw.two_paths.usps;
    const mnist = hw.two_paths.mnist_as_images;
    out.push(
      `**USPS** (data/usps/, ${usps.digits.toLocaleString("en-US")} ${usps.split} digits): real ` +
        "handwriting scanned from envelopes by the U.S. Postal Service, 16×16, written by other people " +
        "for another purpose; no model here trains on it. Each digit is read two ways: **through the " +
        "deploy path**, written as an ordinary image file (a 16×16 PNG of dark ink on white) and read by " +
        "exactly the code `deno task infer`, the lab's upload and `POST /api/classify` use; and **by the " +
        "model alone**, the digit normalised as MNIST was (ink scaled into a 20×20 box keeping its aspect " +
        "ratio, centre of mass at pixel (14, 14) of 28×28, no other step). The difference is what " +
        "preprocessing costs (negative) or buys (positive), with its 95% paired-bootstrap interval and " +
        "McNemar's exact p. " +
        (mnist
          ? `**MNIST as images**: the first ${
            mnist.digits.toLocaleString("en-US")
          } MNIST test digits ` +
            "saved as 28×28 PNGs, the same two ways (the model alone reads MNIST's own pixels). "
          : "") +
        "The USPS test split is read once per reported configuration (each model of each seed); " +
        "preprocessing was chosen on USPS training digits, MNIST training digits saved as images and the " +
        `people-like set (docs/other-peoples-digits.md). Produced by \`${hw.command}\` in each seed's folder.`,
      "",
      table(
        [
          "model",
          "USPS, deploy path",
          "refused",
          "USPS, model alone",
          "difference, points (95%)",
          "McNemar p",
          "MNIST as images, deploy",
          "MNIST, model alone",
          "difference, points (95%)",
          "people-like",
        ],
        perSeedRows(inputs, withUsps),
      ),
      "",
    );
    const means = meanRows(inputs, withUsps);
    if (means.length > 0) {
      out.push(
        "Means over seeds:",
        "",
        table(
          [
            "model",
            "seeds",
            "USPS, deploy path",
            "USPS, model alone",
            "difference, points",
            "refused (all seeds)",
            "people-like",
          ],
          means,
        ),
        "",
      );
    }
    const robust = hw.models.robust?.usps;
    if (robust) {
      out.push(
        `The robust model misreads ${robust.mistakes.length} of ${robust.deploy.images} USPS digits ` +
          `through the deploy path in this folder's run; the labels it misses most are ${
            commonMistakes(robust)
          } (label, count). The data's own note puts a 2.5% error rate on this test ` +
          "set as excellent for models trained on USPS itself.",
        "",
        "![USPS digits the robust model misreads](plots/usps_mistakes_robust.png)",
        "",
      );
      const widths = robust.by_shape?.stroke_width;
      if (widths) {
        out.push(
          "The robust model through the deploy path by thirds of the digits' stroke width " +
            "(inked area over half its perimeter, in the 28×28 reference image): " +
            widths.map((t) =>
              `${t.from.toFixed(2)}–${t.to.toFixed(2)} px ${pct(t.accuracy, 2)} (${t.images})`
            ).join(", ") + ".",
          "",
        );
      }
    }
    out.push(
      "For context, published MNIST → USPS accuracies (their protocols differ in which USPS digits " +
        "and how they are resized, so these compare in kind, not digit for digit):",
      "",
      table(["method", "USPS accuracy"], PUBLISHED_MNIST_TO_USPS),
      "",
    );
  }
  out.push(...peopleLikeSection(hw));
  return out.join("\n");
}
