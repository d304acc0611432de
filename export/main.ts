/**
 * deno task export [--model DIR --out FILE.onnx] [--out DIR] [--layout nhwc|nchw]
 * deno task export --ensemble a,b,c|auto [--candidates a,b,c] [--name NAME] [--out DIR]
 *
 * Converts trained tfjs models to ONNX with our own exporter and keeps a file
 * only if ONNX Runtime reproduces the tfjs model on 1,000 test images; or
 * joins exported models into one ensemble file, kept only if it reproduces
 * the mean of its members.
 */
import { basename, join } from "node:path";
import { loadMnist, pixelsOf } from "../data/mnist.ts";
import { useWasmBackend } from "../kernels/backend.ts";
import { commandLine, parseFlags, runMain, UsageError } from "../util/cli.ts";
import { listModels } from "../util/results_dir.ts";
import type { Layout } from "./convert.ts";
import { runEnsembleExport } from "./ensemble_run.ts";
import { exportModel } from "./export_model.ts";
import { MAX_ABS_DIFFERENCE } from "./verify.ts";
import { DEFAULT_GATE_DEGREES } from "./turned.ts";
import { runTurnedExport } from "./turned_run.ts";
import { TURN_MODEL_NAME } from "../models/turn.ts";

const VERIFICATION_IMAGES = 1000;

const HELP = `Export trained tfjs models to ONNX, verified against tfjs.

Usage: deno task export                      every model in results/models/ -> results/models/<model>.onnx
       deno task export --out DIR            every model in DIR/models/
       deno task export --model DIR --out FILE.onnx
       deno task export --ensemble a,b,c     DIR/models/{a,b,c}.onnx -> DIR/models/ensemble.onnx
       deno task export --ensemble auto      members chosen on validation digits, as above
       deno task export --turned CLASSIFIER.onnx --turn ANGLE.onnx [--out FILE.onnx]

Flags:
  --model DIR       a tfjs layers model folder (model.json + weights.bin)
  --out PATH        with --model: the ONNX file; without: the results folder (default results/)
  --layout L        input layout: nhwc ([N, 28, 28, 1], default) or nchw ([N, 1, 28, 28])
  --ensemble LIST   one ONNX model whose output is the mean of the members' probabilities:
                    model names in DIR/models/ (or .onnx paths), comma-separated; "auto"
                    chooses them greedily by log loss on the validation digits that every
                    candidate held out (same seed), and writes DIR/metrics/ensemble_choice.json
  --candidates LIST with --ensemble auto: the models to choose from (default: all in DIR/models/);
                    an .onnx path RUN/models/M.onnx brings its run's RUN/metrics/M_metrics.json
  --choose-on S     with --ensemble auto: the digits the log loss is taken on: clean+corrupted
                    (default: the validation digits as they are and again under the robust
                    recipe's augmentation, so that a member that only reads clean digits is
                    not chosen for them) or clean
  --name NAME       with --ensemble: writes DIR/models/NAME.onnx (default ensemble), for
                    example a committee of several seeds' models beside a seed's own ensemble
  --turned FILE     one ONNX model: the classifier FILE reading digits turned back by the angle
                    network --turn ANGLE.onnx (deno task train:turn, then export --model) inside
                    the graph; written to --out (default FILE-turned.onnx)
  --gate DEG        with --turned: turn back only digits read as turned beyond DEG degrees
                    (default ${DEFAULT_GATE_DEGREES}: the classifiers read smaller turns themselves)
  --pick P          with --turned: gate (classify the digit turned back, default) or confident
                    (classify it both as it is and turned back, keep the surer read)
  --help            show this help

The ONNX model's input is "input" (float32 pixels / 255, ink bright on dark),
its output "probabilities" [N, 10]; the batch dimension is dynamic. An
ensemble is written only if ONNX Runtime's output equals the mean of its
members' run separately within 1e-5 on 1,000 test images.`;

export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, {
    model: { type: "string" },
    out: { type: "string" },
    layout: { type: "string", default: "nhwc" },
    ensemble: { type: "string" },
    candidates: { type: "string" },
    "choose-on": { type: "string" },
    name: { type: "string" },
    turned: { type: "string" },
    turn: { type: "string" },
    gate: { type: "string" },
    pick: { type: "string" },
    help: { type: "boolean", default: false },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  if (values.layout !== "nhwc" && values.layout !== "nchw") {
    throw new UsageError(`--layout must be nhwc or nchw, got "${values.layout}".`);
  }
  const layout = values.layout as Layout;
  const indices = Array.from({ length: VERIFICATION_IMAGES }, (_, i) => i);
  if (values.turned !== undefined) {
    if (values.model || values.ensemble !== undefined) {
      throw new UsageError("--turned goes alone: not with --model or --ensemble.");
    }
    await runTurnedExport(values, indices, commandLine("deno task export", args));
    return;
  }
  for (const flag of ["turn", "gate", "pick"] as const) {
    if (values[flag] !== undefined) throw new UsageError(`--${flag} goes with --turned.`);
  }
  if (values.ensemble !== undefined) {
    if (values.model) throw new UsageError("--ensemble and --model cannot go together.");
    const data = await loadMnist();
    await runEnsembleExport({
      resultsDir: values.out ?? "results",
      ensemble: values.ensemble,
      candidates: values.candidates?.split(",").map((name) => name.trim()),
      chooseOn: values["choose-on"],
      name: values.name,
      data,
      verificationPixels: pixelsOf(data.test, indices),
      command: commandLine("deno task export", args),
    });
    return;
  }
  if (values.candidates) throw new UsageError("--candidates goes with --ensemble auto.");
  if (values["choose-on"]) throw new UsageError("--choose-on goes with --ensemble auto.");
  if (values.name) throw new UsageError("--name goes with --ensemble.");
  const jobs: Array<{ modelDir: string; onnxPath: string; metricsPath?: string }> = [];
  if (values.model) {
    const onnxPath = values.out ?? `${values.model.replace(/\/+$/, "")}.onnx`;
    if (!onnxPath.endsWith(".onnx")) {
      throw new UsageError(
        `With --model, --out names the ONNX file (ending in .onnx), got "${onnxPath}".`,
      );
    }
    // A model trained into DIR/models/NAME has its training figures in DIR/metrics/.
    const name = basename(values.model.replace(/\/+$/, ""));
    const metricsPath = join(values.model, "..", "..", "metrics", metricsFileOf(name));
    jobs.push({ modelDir: values.model, onnxPath, metricsPath });
  } else {
    const resultsDir = values.out ?? "results";
    for (const modelDir of await listModels(resultsDir, "tfjs")) {
      const name = basename(modelDir);
      jobs.push({
        modelDir,
        onnxPath: join(resultsDir, "models", `${name}.onnx`),
        metricsPath: join(resultsDir, "metrics", metricsFileOf(name)),
      });
    }
  }
  const data = await loadMnist();
  await useWasmBackend();
  const verificationPixels = pixelsOf(data.test, indices);
  for (const job of jobs) {
    const started = performance.now();
    const result = await exportModel({ ...job, layout, verificationPixels });
    console.log(
      `${job.modelDir} -> ${result.onnxPath} (${(result.bytes / 1024).toFixed(0)} KiB, ${layout}, ${
        ((performance.now() - started) / 1000).toFixed(1)
      } s): on ${result.images} test images, largest |p_onnx - p_tfjs| = ${
        result.maxAbsDifference.toExponential(2)
      } (limit ${MAX_ABS_DIFFERENCE}), argmax agreement ${
        (result.argmaxAgreement * 100).toFixed(2)
      }%`,
    );
  }
}

/** A trained model's figures: a classifier's metrics, the angle network's training record. */
function metricsFileOf(name: string): string {
  return name === TURN_MODEL_NAME ? `${name}_training.json` : `${name}_metrics.json`;
}

if (import.meta.main) await runMain(() => main(Deno.args));
