/** Vega-lite specs of the report's figures, from metrics only. */
import type { EpochRecord, TrainingMetrics } from "./inputs.ts";

/** One panel of per-epoch values: `metric` rows, one line per `series`. */
function epochPanel(
  metric: "accuracy" | "loss",
  series: string,
  seriesTitle: string,
  yTitle: string,
) {
  return {
    width: 320,
    height: 220,
    transform: [{ filter: `datum.metric === '${metric}'` }],
    mark: { type: "line", point: true, strokeWidth: 2 },
    encoding: {
      x: { field: "epoch", type: "quantitative", title: "Epoch", axis: { tickMinStep: 1 } },
      y: {
        field: "value",
        type: "quantitative",
        title: yTitle,
        scale: { zero: false },
        ...(metric === "accuracy" ? { axis: { format: "%" } } : {}),
      },
      color: { field: series, type: "nominal", title: seriesTitle, legend: { labelLimit: 320 } },
    },
  };
}

/**
 * Training and validation accuracy and loss per epoch, side by side. When
 * the run evaluated averaged weights, the last step's weights' validation
 * accuracy is a third series.
 */
export function curveSpec(model: string, history: EpochRecord[]) {
  const values = history.flatMap((r) => [
    { epoch: r.epoch, split: "training", metric: "accuracy", value: r.accuracy },
    { epoch: r.epoch, split: "validation", metric: "accuracy", value: r.val_accuracy },
    ...(r.val_accuracy_live === undefined ? [] : [{
      epoch: r.epoch,
      split: "validation, last step's weights",
      metric: "accuracy",
      value: r.val_accuracy_live,
    }]),
    { epoch: r.epoch, split: "training", metric: "loss", value: r.loss },
    { epoch: r.epoch, split: "validation", metric: "loss", value: r.val_loss },
  ]);
  return {
    title: `${model}: learning curves`,
    data: { values },
    hconcat: [
      epochPanel("accuracy", "split", "Data", "Accuracy"),
      epochPanel("loss", "split", "Data", "Cross-entropy loss"),
    ],
  };
}

/** Both models' validation accuracy and loss on shared axes. */
export function comparisonSpec(training: Record<string, TrainingMetrics>) {
  const values = Object.entries(training).flatMap(([model, m]) =>
    m.history.flatMap((r) => [
      { model, epoch: r.epoch, metric: "accuracy", value: r.val_accuracy },
      { model, epoch: r.epoch, metric: "loss", value: r.val_loss },
    ])
  );
  return {
    title: "Validation accuracy and loss of the models",
    data: { values },
    hconcat: [
      epochPanel("accuracy", "model", "Model", "Validation accuracy"),
      epochPanel("loss", "model", "Model", "Validation loss"),
    ],
  };
}

export function confusionSpec(model: string, confusion: number[][]) {
  const values = confusion.flatMap((row, label) =>
    row.map((count, prediction) => ({ label, prediction, count }))
  );
  const encoding = {
    x: { field: "prediction", type: "ordinal", title: "Predicted digit", axis: { labelAngle: 0 } },
    y: { field: "label", type: "ordinal", title: "True digit" },
  };
  return {
    title: `${model}: confusion matrix on the MNIST test set`,
    width: 380,
    height: 380,
    data: { values },
    layer: [
      {
        mark: "rect",
        encoding: {
          ...encoding,
          color: {
            field: "count",
            type: "quantitative",
            title: "Images",
            scale: { type: "symlog", scheme: "blues" },
          },
        },
      },
      {
        mark: { type: "text", fontSize: 11 },
        encoding: {
          ...encoding,
          text: { field: "count", type: "quantitative" },
          color: { condition: { test: "datum.count > 200", value: "white" }, value: "black" },
        },
      },
    ],
  };
}

/**
 * Accuracies as grouped bars, each with a black rule from `low` to `high`
 * (the error bars over seeds); `values` carry `value`, `low` and `high`.
 */
export function barsWithErrorRules(options: {
  title: unknown;
  values: unknown[];
  x: Record<string, unknown>;
  xOffset: Record<string, unknown>;
  color: Record<string, unknown>;
}) {
  const { title, values, x, xOffset, color } = options;
  return {
    title,
    data: { values },
    width: 760,
    height: 300,
    layer: [{
      mark: { type: "bar" },
      encoding: {
        x,
        xOffset,
        y: {
          field: "value",
          type: "quantitative",
          title: "Accuracy",
          axis: { format: "%" },
          scale: { domain: [0, 1] },
        },
        color,
      },
    }, {
      mark: { type: "rule", color: "black", strokeWidth: 2 },
      encoding: { x, xOffset, y: { field: "low", type: "quantitative" }, y2: { field: "high" } },
    }],
  };
}
