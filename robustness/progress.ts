/** Robustness-suite progress: a live bar on a terminal, a line every 20 levels otherwise. */
import { cliProgress } from "../deps.ts";
import type { SuiteProgress } from "./evaluate.ts";

export function progressBar(): SuiteProgress {
  let total = 0;
  let done = 0;
  if (!Deno.stdout.isTerminal()) {
    return {
      start(levels) {
        total = levels;
      },
      step(family, level) {
        done++;
        if (done === total || done % 20 === 0) {
          console.log(`  ${done}/${total} levels (${family} ${level})`);
        }
      },
    };
  }
  const bar = new cliProgress.SingleBar({
    format: "robustness [{bar}] {value}/{total} levels  {family}  ETA {eta_formatted}",
    hideCursor: true,
    clearOnComplete: true,
  }, cliProgress.Presets.shades_classic);
  return {
    start(levels) {
      bar.start(levels, 0, { family: "" });
    },
    step(family, level) {
      bar.update(++done, { family: `${family} ${level}` });
    },
    done() {
      bar.stop();
    },
  };
}
