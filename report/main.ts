/**
 * deno task report [--out DIR]
 *
 * Regenerates the figures and REPORT.md from the metrics files alone (no
 * training, no model runs): learning curves, the comparison of the models,
 * confusion matrices and sample predictions, the robustness plots, the
 * ablation, clean accuracy against rotations.
 */
import { join } from "node:path";
import { loadTestSet } from "../data/mnist.ts";
import { writeExamplesTile } from "./predictions.ts";
import { commandLine, parseFlags, runMain } from "../util/cli.ts";
import { exists, writeFileAtomic } from "../util/files.ts";
import { writePlot } from "./plot.ts";
import { overSeedsSpec } from "./over_seeds.ts";
import { writeRobustnessPlots } from "../robustness/plots.ts";
import { comparisonSpec, confusionSpec, curveSpec } from "./specs.ts";
import { readMetrics, type ReportInputs, withRecipeRuns } from "./inputs.ts";
import { renderMarkdown } from "./markdown.ts";
import { ablationSpec, hasRotationSweep, rotationSweepSpec } from "./ablation.ts";
import { tradeOffPoints, tradeOffSpec } from "./trade_off.ts";

const HELP = `Regenerate plots and REPORT.md from the metrics files.

Usage: deno task report [--out DIR]

  --out DIR   reads DIR/metrics/*.json, writes DIR/plots/*.png and DIR/REPORT.md (default results/)`;

export async function writeReport(outDir: string, command: string): Promise<string[]> {
  const inputs: ReportInputs = await readMetrics(join(outDir, "metrics"));
  // Every metrics file is read before anything is written, so a refusal leaves the old report whole.
  const families = await withRecipeRuns(inputs, outDir);
  const plots = join(outDir, "plots");
  const written: string[] = [];
  const plot = async (file: string, spec: Record<string, unknown>) => {
    await writePlot(join(plots, file), spec);
    written.push(join(plots, file));
  };
  for (const [name, metrics] of Object.entries(inputs.training)) {
    await plot(`${name}_accuracy_curve.png`, curveSpec(name, metrics.history));
  }
  if (Object.keys(inputs.training).length > 0) {
    await plot("comparison.png", comparisonSpec(inputs.training));
    await plot("over_seeds.png", overSeedsSpec(inputs));
  }
  for (const [name, test] of Object.entries(inputs.testSets)) {
    await plot(`confusion_${name}.png`, confusionSpec(name, test.confusion));
  }
  const withPredictions = inputs.testSets.improved ?? Object.values(inputs.testSets)[0];
  // The test labels score the per-image predictions of the paired tests.
  const test = withPredictions ? await loadTestSet() : undefined;
  if (withPredictions && test) {
    const path = join(plots, "predictions.png");
    await writeExamplesTile(withPredictions, test, path);
    written.push(path);
  }
  if (inputs.robustness) {
    const families = Object.entries(inputs.robustness.families).map(([name, f]) => ({
      name,
      group: f.group,
    }));
    const results = Object.fromEntries(
      Object.entries(inputs.robustness.models).map((
        [name, m],
      ) => [name, {
        clean: m.clean,
        clean_confidence: m.clean_mean_confidence,
        families: m.families,
      }]),
    );
    written.push(...await writeRobustnessPlots(results, families, plots));
  }
  if (inputs.ablation) {
    await plot("ablation.png", ablationSpec(inputs.ablation));
    if (hasRotationSweep(inputs.ablation)) {
      await plot("ablation_rotation.png", rotationSweepSpec(inputs.ablation));
    }
  }
  const tradeOff = tradeOffPoints(families);
  const robustRotation = families.robustness?.models.robust?.summary?.families.rotation;
  const tradeOffPlot = tradeOff.length >= 2 && robustRotation != null;
  if (tradeOffPlot) await plot("trade_off.png", tradeOffSpec(tradeOff, robustRotation));
  const reportPath = join(outDir, "REPORT.md");
  const robustnessGrid = await exists(join(plots, "robustness_examples.png"));
  await writeFileAtomic(
    reportPath,
    renderMarkdown(inputs, {
      command,
      robustnessGrid,
      testLabels: test?.labels,
      families,
      tradeOffPlot,
    }),
  );
  written.push(reportPath);
  return written;
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, {
    out: { type: "string", default: "results" },
    help: { type: "boolean", default: false },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const written = await writeReport(values.out!, commandLine("deno task report", args));
  console.log(`written: ${written.join(", ")}`);
}

if (import.meta.main) await runMain(() => main(Deno.args));
