/**
 * Export one tfjs layers model folder to a verified ONNX file.
 */
import { loadLayersModel } from "../models/layers_io.ts";
import { writeFileAtomic } from "../util/files.ts";
import { convertToOnnx, encodeOnnx, EXPORTER_VERSION, type Layout } from "./convert.ts";
import { readLayersArtifacts } from "./layers_artifacts.ts";
import { type Agreement, compareWithTfjs, MAX_ABS_DIFFERENCE } from "./verify.ts";

export class VerificationError extends Error {}

export interface ExportResult extends Agreement {
  onnxPath: string;
  bytes: number;
}

/** Training figures to carry into the ONNX metadata, if a metrics file is beside the models. */
async function trainingMetrics(
  metricsPath: string | undefined,
): Promise<Record<string, unknown> | undefined> {
  if (!metricsPath) return undefined;
  try {
    const metrics = JSON.parse(await Deno.readTextFile(metricsPath));
    const { test_accuracy, test_loss, test_accuracy_augmented, seed, date, command } = metrics;
    return {
      test_accuracy,
      test_loss,
      test_accuracy_augmented,
      epochs: metrics.history?.length,
      seed,
      date,
      command,
    };
  } catch {
    return undefined;
  }
}

export async function exportModel(options: {
  modelDir: string;
  onnxPath: string;
  layout: Layout;
  /** count × 784 pixels in [0, 1] used to check the export. */
  verificationPixels: Float32Array;
  metricsPath?: string;
}): Promise<ExportResult> {
  const artifacts = await readLayersArtifacts(options.modelDir);
  const training = await trainingMetrics(options.metricsPath);
  const model = await loadLayersModel(options.modelDir);
  let bytes: Uint8Array;
  let agreement: Agreement;
  try {
    // A classifier names its ten classes; the angle network (train:turn) gives one value a digit.
    const outputs = model.outputs[0].shape.at(-1);
    const onnxModel = convertToOnnx(artifacts, {
      layout: options.layout,
      metadata: {
        model_name: artifacts.name,
        preprocessing: {
          input: "input",
          layout: options.layout,
          shape: options.layout === "nhwc" ? ["N", 28, 28, 1] : ["N", 1, 28, 28],
          scale: "pixel / 255",
          polarity: "ink bright (1) on a dark background (0), as in MNIST",
          size: "28x28, digit fit in 20x20 and centred on its centre of mass",
        },
        ...(outputs === 10
          ? { class_labels: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"] }
          : { output: `${outputs} value(s) a digit, not class probabilities` }),
        ...(training ? { training_metrics: training } : {}),
        exporter: `mnist-cnn-robustness tfjs-to-onnx ${EXPORTER_VERSION}`,
        exported: new Date().toISOString(),
      },
    });
    bytes = encodeOnnx(onnxModel);
    agreement = await compareWithTfjs(bytes, model, options.verificationPixels, options.layout);
  } finally {
    model.dispose();
  }
  if (!(agreement.maxAbsDifference <= MAX_ABS_DIFFERENCE) || agreement.argmaxAgreement < 1) {
    throw new VerificationError(
      `The ONNX export of ${options.modelDir} does not match the tfjs model: largest probability difference ${
        agreement.maxAbsDifference.toExponential(2)
      } (limit ${MAX_ABS_DIFFERENCE}), argmax agreement ${
        (agreement.argmaxAgreement * 100).toFixed(2)
      }%; nothing was written.`,
    );
  }
  try {
    await writeFileAtomic(options.onnxPath, bytes);
  } catch (error) {
    throw new Error(`Cannot write ${options.onnxPath}: ${(error as Error).message}`);
  }
  return { ...agreement, onnxPath: options.onnxPath, bytes: bytes.length };
}
