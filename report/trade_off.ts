/**
 * Clean digits against rotations: every row of the architectures table that
 * has both, as one point (the clean test mean over seeds with its 95% t
 * interval, against the ±60° rotation sweep of its first seed), beside the
 * single-network target (99.6% clean, rotations within a point of the robust
 * CNN's). Single networks and ensembles are told apart, since the question
 * the plot asks is whether one network reaches the corner ensembles reach.
 */
import { summarize, tQuantile975 } from "../util/stats.ts";
import {
  architectureOfKey,
  classifierOfTurnedKey,
  isRecipeKey,
  isTurnedKey,
  RECIPE_ARCHITECTURE,
  recipeOfKey,
  type ReportInputs,
} from "./inputs.ts";
import { familyRows, testAccuracyBySeed } from "./architectures.ts";

/** The clean accuracy the single-architecture target asks for, over three seeds. */
export const CLEAN_TARGET = 0.996;
/** How far below the robust CNN a robustness family may fall, as a fraction. */
export const FAMILY_MARGIN = 0.01;

export interface TradeOffPoint {
  /** The row's key: an architecture, "arch:recipe", "ensemble" or "committee". */
  row: string;
  /** Short label for the plot: the recipe for the VGG's recipe rows, else the row's words. */
  label: string;
  kind: "single network" | "ensemble";
  seeds: number;
  clean: number;
  /** The 95% t interval of the clean mean; the point itself with one seed. */
  low: number;
  high: number;
  rotation: number;
}

/**
 * A recipe run's words on the plot: its recipe, after its architecture where
 * that is not the VGG ("mild", "vgg-gap, mild").
 */
function recipeWords(key: string): string {
  const architecture = architectureOfKey(key);
  return architecture === RECIPE_ARCHITECTURE
    ? recipeOfKey(key)
    : `${architecture}, ${recipeOfKey(key)}`;
}

/** One point per row that has clean test accuracy and a rotation sweep. */
export function tradeOffPoints(inputs: ReportInputs): TradeOffPoint[] {
  const robustness = inputs.robustness?.models;
  return familyRows(inputs).flatMap((row) => {
    const rotation = robustness?.[row]?.summary?.families.rotation;
    const clean = [...testAccuracyBySeed(inputs, row).values()];
    if (rotation == null || clean.length === 0) return [];
    const summary = summarize(clean);
    const half = summary.n > 1
      ? tQuantile975(summary.n - 1) * summary.std / Math.sqrt(summary.n)
      : 0;
    const ensemble = row === "ensemble" || row === "committee";
    return [{
      row,
      label: isTurnedKey(row) && isRecipeKey(row)
        ? `turned (${recipeWords(classifierOfTurnedKey(row))})`
        : isRecipeKey(row)
        ? recipeWords(row)
        : row,
      kind: ensemble ? "ensemble" : "single network",
      seeds: summary.n,
      clean: summary.mean,
      low: summary.mean - half,
      high: summary.mean + half,
      rotation,
    }];
  });
}

/** Rows further than this below the target are left out, so that the close ones can be read apart. */
export const PLOTTED_FROM = 0.992;

/** The scatter, with the target's corner drawn from the robust CNN's rotation sweep. */
export function tradeOffSpec(all: TradeOffPoint[], robustRotation: number) {
  const rotationFloor = robustRotation - FAMILY_MARGIN;
  const points = all.filter((point) => point.clean >= PLOTTED_FROM);
  const left = all.filter((point) => point.clean < PLOTTED_FROM).map((point) => point.label);
  const x = {
    field: "rotation",
    type: "quantitative",
    title: "Mean accuracy over rotations −60° … +60° (first seed)",
    axis: { format: ".0%" },
    scale: { zero: false, padding: 20 },
  };
  const y = {
    field: "clean",
    type: "quantitative",
    title: "Clean test accuracy, mean over seeds (95% interval)",
    axis: { format: ".2%" },
    scale: { zero: false, padding: 20 },
  };
  const color = {
    field: "kind",
    type: "nominal",
    title: null,
    scale: { domain: ["single network", "ensemble"], range: ["#1f77b4", "#d62728"] },
  };
  return {
    title: {
      text: "Clean digits against rotations",
      subtitle: [
        `target: ≥ ${(CLEAN_TARGET * 100).toFixed(1)}% clean, rotations ≥ ${
          (rotationFloor * 100).toFixed(1)
        }% (the robust CNN's less a point): the dashed lines`,
        ...(left.length
          ? [`left out, under ${(PLOTTED_FROM * 100).toFixed(1)}% clean: ${left.join(", ")}`]
          : []),
      ],
    },
    width: 640,
    height: 420,
    layer: [
      {
        data: { values: [{ clean: CLEAN_TARGET }] },
        mark: { type: "rule", strokeDash: [6, 4], color: "#555555" },
        encoding: { y },
      },
      {
        data: { values: [{ rotation: rotationFloor }] },
        mark: { type: "rule", strokeDash: [6, 4], color: "#555555" },
        encoding: { x },
      },
      {
        data: { values: points },
        mark: { type: "rule", strokeWidth: 1.5 },
        encoding: { x, y: { ...y, field: "low" }, y2: { field: "high" }, color },
      },
      {
        data: { values: points },
        mark: { type: "point", filled: true, size: 70 },
        encoding: {
          x,
          y,
          color,
          shape: { field: "kind", type: "nominal", legend: null },
        },
      },
      {
        data: { values: points },
        mark: { type: "text", align: "left", dx: 7, dy: -6, fontSize: 11 },
        encoding: { x, y, text: { field: "label" }, color: { ...color, legend: null } },
      },
    ],
  };
}
