/**
 * deno task demo: the whole pipeline in a few minutes on a slice of MNIST,
 * written to results/demo/ (the committed full results stay untouched).
 */
import { main as exportMain } from "./export/main.ts";
import { main as trainMain } from "./train/main.ts";
import { runMain } from "./util/cli.ts";

const OUT = "results/demo";
const QUICK = ["--limit", "6000", "--epochs", "2", "--out", OUT];

async function demo(): Promise<void> {
  const step = (title: string) => console.log(`\n== ${title} ==`);
  step("Train the baseline CNN (6,000 images, 2 epochs; full run: deno task train:baseline)");
  await trainMain(["--model", "baseline", ...QUICK]);
  step("Train the improved CNN with augmentation (full run: deno task train:improved)");
  await trainMain(["--model", "improved", ...QUICK]);
  step("Export both to ONNX, verified against tfjs");
  await exportMain(["--out", OUT]);
  console.log(`\nEverything is in ${OUT}/. The full runs' results are in results/.`);
}

if (import.meta.main) await runMain(demo);
