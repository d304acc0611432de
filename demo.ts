/**
 * deno task demo: the whole pipeline in a few minutes on a slice of MNIST,
 * written to results/demo/ (the committed full results stay untouched).
 */
import { join } from "node:path";
import { main as exportMain } from "./export/main.ts";
import { main as inferMain } from "./infer/main.ts";
import { main as reportMain } from "./report/main.ts";
import { main as robustnessMain } from "./robustness/main.ts";
import { main as trainMain } from "./train/main.ts";
import { runMain } from "./util/cli.ts";

const OUT = "results/demo";
const QUICK = ["--limit", "6000", "--epochs", "2", "--out", OUT];

async function demo(): Promise<void> {
  const step = (title: string) => console.log(`\n== ${title} ==`);
  step("1/6 Train the baseline CNN (6,000 images, 2 epochs; full run: deno task train:baseline)");
  await trainMain(["--model", "baseline", ...QUICK]);
  step("2/6 Train the improved CNN with augmentation (full run: deno task train:improved)");
  await trainMain(["--model", "improved", ...QUICK]);
  step("3/6 Export both to ONNX, each verified against tfjs");
  await exportMain(["--out", OUT]);
  step("4/6 Inference with ONNX Runtime: the MNIST test set, then people's digit images");
  for (const model of ["baseline", "improved"]) {
    await inferMain([
      "--model",
      join(OUT, "models", `${model}.onnx`),
      "--test-set",
      "--metrics",
      join(OUT, "metrics", `${model}_test.json`),
    ]);
  }
  await inferMain(["--model", join(OUT, "models", "improved.onnx"), "examples/digits"]);
  step("5/6 Robustness on 1,000 test images (full suite: deno task eval:robustness)");
  await robustnessMain(["--out", OUT, "--limit", "1000"]);
  step("6/6 Plots and REPORT.md from the metrics");
  await reportMain(["--out", OUT]);
  console.log(
    `\nEverything is in ${OUT}/ (open ${OUT}/REPORT.md). The full runs' results are in results/.\n` +
      `Draw your own digits against these models: deno task serve --models ${OUT}/models`,
  );
}

if (import.meta.main) await runMain(demo);
