/**
 * What a grid worker does with a run: exactly what the local command does
 * for it (train, resuming from the run's checkpoint when one is there, and
 * export when the grid measures the ONNX file), then the files it wrote,
 * to go back through the queue.
 */
import type { Mnist } from "../data/mnist.ts";
import { pixelsOf } from "../data/mnist.ts";
import { exportModel } from "../export/export_model.ts";
import { outputPaths, trainModel } from "../train/run.ts";
import { exists } from "../util/files.ts";
import { collectFiles, type RunResult, type RunSpec } from "./spec.ts";

/** The test images an export is verified on, as `deno task ablate` verifies them. */
export const VERIFICATION_IMAGES = 256;

export async function runSpec(data: Mnist, spec: RunSpec): Promise<RunResult> {
  const paths = outputPaths(spec.outDir, spec.config.model);
  const { metrics } = await trainModel(data, {
    config: spec.config,
    outDir: spec.outDir,
    command: spec.command,
    resume: await exists(paths.checkpoint),
  });
  if (spec.onnxPath) {
    await exportModel({
      modelDir: paths.modelDir,
      onnxPath: spec.onnxPath,
      layout: "nhwc",
      verificationPixels: pixelsOf(
        data.test,
        Array.from({ length: VERIFICATION_IMAGES }, (_, i) => i),
      ),
      metricsPath: paths.metrics,
    });
  }
  const files = await collectFiles(spec.root, [
    paths.modelDir,
    paths.metrics,
    ...(spec.onnxPath ? [spec.onnxPath] : []),
  ]);
  return { metrics, files };
}
