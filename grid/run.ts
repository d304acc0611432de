/**
 * What a grid worker does with a run: exactly what the local command does
 * for it (train, resuming from the run's checkpoint when one is there, and
 * export when the grid measures the ONNX file), then the files it wrote,
 * to go back through the queue. Where the coordinator's results folder is
 * on this machine too (one machine, or a shared disk), the run is written
 * in place; elsewhere in a scratch folder, removed once its files are read.
 */
import { join, relative } from "node:path";
import type { Mnist } from "../data/mnist.ts";
import { pixelsOf } from "../data/mnist.ts";
import { exportModel } from "../export/export_model.ts";
import { outputPaths, trainModel } from "../train/run.ts";
import { exists } from "../util/files.ts";
import { collectFiles, type RunResult, type RunSpec } from "./spec.ts";

/** The test images an export is verified on, as `deno task ablate` verifies them. */
export const VERIFICATION_IMAGES = 256;

export async function runSpec(data: Mnist, spec: RunSpec): Promise<RunResult> {
  const shared = await exists(spec.root);
  const root = shared ? spec.root : await Deno.makeTempDir({ prefix: "grid-run-" });
  const here = (path: string) => join(root, relative(spec.root, path));
  try {
    const outDir = here(spec.outDir);
    const paths = outputPaths(outDir, spec.config.model);
    const { metrics } = await trainModel(data, {
      config: spec.config,
      outDir,
      command: spec.command,
      resume: await exists(paths.checkpoint),
    });
    const onnxPath = spec.onnxPath ? here(spec.onnxPath) : undefined;
    if (onnxPath) {
      await exportModel({
        modelDir: paths.modelDir,
        onnxPath,
        layout: "nhwc",
        verificationPixels: pixelsOf(
          data.test,
          Array.from({ length: VERIFICATION_IMAGES }, (_, i) => i),
        ),
        metricsPath: paths.metrics,
      });
    }
    const files = await collectFiles(root, [
      paths.modelDir,
      paths.metrics,
      ...(onnxPath ? [onnxPath] : []),
    ]);
    return { metrics, files };
  } finally {
    if (!shared) await Deno.remove(root, { recursive: true });
  }
}
