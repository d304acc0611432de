/**
 * deno task demo: the whole pipeline in a few minutes on a slice of MNIST,
 * written to results/demo/ (the committed full results stay untouched).
 */
import { join } from "node:path";
import { main as exportMain } from "./export/main.ts";
import { main as inferMain } from "./infer/main.ts";
import { main as reportMain } from "./report/main.ts";
import { main as handwritingMain } from "./robustness/handwriting_main.ts";
import { main as robustnessMain } from "./robustness/main.ts";
import { main as trainMain } from "./train/main.ts";
import { runMain } from "./util/cli.ts";

const OUT = "results/demo";
const QUICK = ["--limit", "6000", "--epochs", "2", "--out", OUT];

async function demo(): Promise<void> {
  const step = (title: string) => console.log(`\n== ${title} ==`);
  step("1/6 Train the three CNNs (6,000 images, 2 epochs; full runs: deno task train:<model>)");
  for (const model of ["baseline", "improved", "robust"]) {
    console.log(`-- ${model}`);
    await trainMain(["--model", model, ...QUICK]);
  }
  step("2/6 Export them to ONNX, each verified against tfjs, and the three as one ensemble file");
  await exportMain(["--out", OUT]);
  await exportMain(["--ensemble", "baseline,improved,robust", "--out", OUT]);
  step("3/6 Inference with ONNX Runtime: the MNIST test set, then people's digit images");
  for (const model of ["baseline", "improved", "robust", "ensemble"]) {
    await inferMain([
      "--model",
      join(OUT, "models", `${model}.onnx`),
      "--test-set",
      "--metrics",
      join(OUT, "metrics", `${model}_test.json`),
    ]);
  }
  await inferMain(["--model", join(OUT, "models", "robust.onnx"), "examples/digits"]);
  step(
    "4/6 Other people's handwriting: USPS digits from envelopes and the people-like digits of examples/",
  );
  await handwritingMain(["--out", OUT]);
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
