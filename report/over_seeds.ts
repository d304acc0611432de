/**
 * The models side by side on the measures the study is about, each bar the
 * mean over the model's seeds with ±1 standard deviation as an error bar
 * (a model trained once shows its run, without a bar).
 */
import type { ReportInputs, RobustnessSummary as Summary } from "./inputs.ts";
import { summarize } from "../util/stats.ts";
import { overSeeds } from "./robust.ts";
import { barsWithErrorRules } from "./specs.ts";

const ROBUSTNESS_MEASURES: Array<[string, (s: Summary) => number | null | undefined]> = [
  ["rotation", (s) => s.families.rotation],
  ["shift x", (s) => s.families.shift_x],
  ["shift y", (s) => s.families.shift_y],
  ["elastic", (s) => s.families.elastic],
  ["Gaussian noise", (s) => s.families.gaussian_noise],
  ["Gaussian blur", (s) => s.families.gaussian_blur],
  ["MNIST-C mean", (s) => s.mnist_c_mean],
];

export const OVER_SEEDS_MEASURES = ["clean test", ...ROBUSTNESS_MEASURES.map(([name]) => name)];

export interface MeasureOverSeeds {
  model: string;
  measure: string;
  values: number[];
}

/** Every model's values of every measure, one per seed evaluated. */
export function measuresOverSeeds(inputs: ReportInputs): MeasureOverSeeds[] {
  return Object.entries(inputs.training).flatMap(([model, training]) => {
    const clean = inputs.seeds[model]?.runs.map((run) => run.test_accuracy) ??
      [training.test_accuracy];
    return [
      { model, measure: "clean test", values: clean },
      ...ROBUSTNESS_MEASURES.map(([measure, pick]) => ({
        model,
        measure,
        values: overSeeds(inputs, model, pick),
      })),
    ].filter((m) => m.values.length > 0);
  });
}

export function overSeedsSpec(inputs: ReportInputs) {
  const measured = measuresOverSeeds(inputs);
  const values = measured.map(({ model, measure, values }) => {
    const s = summarize(values);
    const std = values.length > 1 ? s.std : 0;
    return {
      model,
      measure,
      runs: values.length,
      value: s.mean,
      low: s.mean - std,
      high: s.mean + std,
    };
  });
  // How many runs stand behind each model's bars (clean test, then the robustness measures).
  const runs = [...new Set(measured.map((m) => m.model))].map((model) => {
    const counts = [
      ...new Set(measured.filter((m) => m.model === model).map((m) => m.values.length)),
    ];
    return `${model}: ${counts.map((n) => (n === 1 ? "one run" : `${n} seeds`)).join(" / ")}`;
  });
  const x = {
    field: "measure",
    type: "nominal",
    title: null,
    sort: OVER_SEEDS_MEASURES,
    axis: { labelAngle: 0 },
  };
  return barsWithErrorRules({
    title: {
      text: "The models over their seeds (bars: mean; error bars: ±1 standard deviation)",
      subtitle: runs.join("; "),
    },
    values,
    x,
    xOffset: { field: "model" },
    color: { field: "model", type: "nominal", title: "Model" },
  });
}
