/**
 * Training progress on the terminal: a live bar per epoch on a TTY, one
 * plain line per epoch otherwise (logs, CI).
 */
import { cliProgress } from "../deps.ts";
import type { EpochRecord, TrainHooks } from "./run.ts";

function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  return m > 0 ? `${m}m${String(s).padStart(2, "0")}s` : `${s}s`;
}

const percent = (fraction: number) => `${(fraction * 100).toFixed(2)}%`;

export function epochLine(record: EpochRecord, epochs: number): string {
  const live = record.val_accuracy_live === undefined
    ? ""
    : ` (last step's weights ${percent(record.val_accuracy_live)})`;
  return `epoch ${record.epoch}/${epochs}  loss ${record.loss.toFixed(4)}  acc ${
    percent(record.accuracy)
  }  val_loss ${record.val_loss.toFixed(4)}  val_acc ${percent(record.val_accuracy)}${live}  ${
    record.images_per_s.toFixed(0)
  } img/s  ${formatSeconds(record.seconds)}  lr ${record.learning_rate.toExponential(2)}`;
}

export function progressHooks(
  model: string,
  interactive = Deno.stdout.isTerminal(),
): TrainHooks {
  let bar: cliProgress.SingleBar | undefined;
  let batches = 0;
  return {
    epochStart(epoch, epochs, total) {
      batches = total;
      if (!interactive) return;
      bar = new cliProgress.SingleBar({
        format: `${model} epoch ${epoch + 1}/${epochs} [{bar}] {value}/{total} ` +
          `loss {loss} acc {acc} {speed} img/s ETA {eta_formatted}`,
        hideCursor: true,
        clearOnComplete: true,
      }, cliProgress.Presets.shades_classic);
      bar.start(total, 0, { loss: "-", acc: "-", speed: "-" });
    },
    batchEnd(batch, loss, accuracy, imagesPerSecond) {
      if (batch % 5 !== 0 && batch !== batches) return;
      bar?.update(batch, {
        loss: loss.toFixed(4),
        acc: `${(accuracy * 100).toFixed(2)}%`,
        speed: imagesPerSecond.toFixed(0),
      });
    },
    evaluating() {
      bar?.stop();
      bar = undefined;
    },
    epochEnd(record, epochs) {
      console.log(`${model} ${epochLine(record, epochs)}`);
    },
  };
}
