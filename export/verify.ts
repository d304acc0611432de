/**
 * An exported model must compute what the tfjs model computes: both run on
 * the same test images and their probabilities are compared.
 */
import { ort } from "../deps.ts";
import { tf } from "../deps_tfjs.ts";
import type { Layout } from "./convert.ts";

export interface Agreement {
  images: number;
  maxAbsDifference: number;
  argmaxAgreement: number;
}

export const MAX_ABS_DIFFERENCE = 1e-4;

/** Images given as count × 784 floats in [0, 1], row-major 28×28. */
export function toLayout(
  pixels: Float32Array,
  count: number,
  layout: Layout,
): { data: Float32Array; dims: number[] } {
  // With one channel, NHWC and NCHW hold the same bytes.
  return { data: pixels, dims: layout === "nhwc" ? [count, 28, 28, 1] : [count, 1, 28, 28] };
}

export async function compareWithTfjs(
  onnxBytes: Uint8Array,
  model: tf.LayersModel,
  pixels: Float32Array,
  layout: Layout,
): Promise<Agreement> {
  const count = pixels.length / 784;
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(onnxBytes, { graphOptimizationLevel: "all" });
  } catch (error) {
    throw new Error(`ONNX Runtime rejects the exported model: ${(error as Error).message}`);
  }
  try {
    const { data, dims } = toLayout(pixels, count, layout);
    const results = await session.run({
      [session.inputNames[0]]: new ort.Tensor("float32", data, dims),
    });
    const onnxOut = results[session.outputNames[0]].data as Float32Array;
    const tfjsOut = tf.tidy(() =>
      (model.predict(tf.tensor4d(pixels, [count, 28, 28, 1])) as tf.Tensor).dataSync()
    );
    const classes = tfjsOut.length / count;
    let maxAbsDifference = 0;
    let agree = 0;
    for (let i = 0; i < count; i++) {
      let bestOnnx = 0;
      let bestTfjs = 0;
      for (let c = 0; c < classes; c++) {
        const at = i * classes + c;
        maxAbsDifference = Math.max(maxAbsDifference, Math.abs(onnxOut[at] - tfjsOut[at]));
        if (onnxOut[at] > onnxOut[i * classes + bestOnnx]) bestOnnx = c;
        if (tfjsOut[at] > tfjsOut[i * classes + bestTfjs]) bestTfjs = c;
      }
      if (bestOnnx === bestTfjs) agree++;
    }
    return { images: count, maxAbsDifference, argmaxAgreement: agree / count };
  } finally {
    await session.release();
  }
}
