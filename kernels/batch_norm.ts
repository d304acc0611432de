/**
 * BatchNorm in training mode as two kernels, forward and backward, over
 * channels-last data. tfjs builds it from `moments` and `batchNorm`, whose
 * gradient is some twenty reductions, broadcasts and elementwise products
 * over the whole activation; here each direction is two passes over it.
 *
 * Forward, per channel c over the R = N·H·W rows:
 *   mean, variance (biased, as tfjs's `moments`), a = γ/√(variance + ε),
 *   y = a·x + (β − a·mean).
 * Backward, with x̂ = (x − mean)/√(variance + ε):
 *   dβ = Σ dy,  dγ = Σ dy·x̂,  dx = a·(dy − (dβ + x̂·dγ)/R).
 */
import { type BackendWasm, tf } from "../deps_tfjs.ts";
import { heap, heapIndex, sizeOf, type TensorInfo } from "./wasm_heap.ts";

export const BATCH_NORM_TRAIN = "MnistBatchNormTrain";
export const BATCH_NORM_TRAIN_GRAD = "MnistBatchNormTrainGrad";

interface Attrs {
  epsilon: number;
}

function channelsAndRows(x: TensorInfo): [number, number] {
  const channels = x.shape[x.shape.length - 1];
  return [channels, sizeOf(x.shape) / channels];
}

/** Inputs x, gamma, beta; outputs y, mean, variance. */
export interface BatchNormTrainArgs {
  inputs: { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo };
  backend: BackendWasm;
  attrs: Attrs;
}

export function batchNormTrain(args: BatchNormTrainArgs): TensorInfo[] {
  const { inputs: { x, gamma, beta }, backend, attrs: { epsilon } } = args;
  const [channels, rows] = channelsAndRows(x);
  const y = backend.makeOutput(x.shape, "float32");
  const mean = backend.makeOutput([channels], "float32");
  const variance = backend.makeOutput([channels], "float32");
  const mem = heap(backend);
  const sum = new Float64Array(channels);
  const sumSquares = new Float64Array(channels);
  const xAt = heapIndex(backend, x);
  for (let row = 0, at = xAt; row < rows; row++) {
    for (let c = 0; c < channels; c++, at++) {
      const value = mem[at];
      sum[c] += value;
      sumSquares[c] += value * value;
    }
  }
  const scale = new Float32Array(channels);
  const shift = new Float32Array(channels);
  const meanAt = heapIndex(backend, mean);
  const varianceAt = heapIndex(backend, variance);
  const gammaAt = heapIndex(backend, gamma);
  const betaAt = heapIndex(backend, beta);
  for (let c = 0; c < channels; c++) {
    const m = sum[c] / rows;
    const v = Math.max(0, sumSquares[c] / rows - m * m);
    mem[meanAt + c] = m;
    mem[varianceAt + c] = v;
    scale[c] = mem[gammaAt + c] / Math.sqrt(v + epsilon);
    shift[c] = mem[betaAt + c] - scale[c] * m;
  }
  const yAt = heapIndex(backend, y);
  for (let row = 0, at = 0; row < rows; row++) {
    for (let c = 0; c < channels; c++, at++) {
      mem[yAt + at] = mem[xAt + at] * scale[c] + shift[c];
    }
  }
  return [y, mean, variance];
}

/** Inputs dy, x, gamma, mean, variance; outputs dx, dgamma, dbeta. */
export interface BatchNormTrainGradArgs {
  inputs: {
    dy: TensorInfo;
    x: TensorInfo;
    gamma: TensorInfo;
    mean: TensorInfo;
    variance: TensorInfo;
  };
  backend: BackendWasm;
  attrs: Attrs;
}

export function batchNormTrainGrad(args: BatchNormTrainGradArgs): TensorInfo[] {
  const { inputs: { dy, x, gamma, mean, variance }, backend, attrs: { epsilon } } = args;
  const [channels, rows] = channelsAndRows(x);
  const dx = backend.makeOutput(x.shape, "float32");
  const dGamma = backend.makeOutput([channels], "float32");
  const dBeta = backend.makeOutput([channels], "float32");
  const mem = heap(backend);
  const xAt = heapIndex(backend, x);
  const dyAt = heapIndex(backend, dy);
  const meanAt = heapIndex(backend, mean);
  const varianceAt = heapIndex(backend, variance);
  const gammaAt = heapIndex(backend, gamma);
  // Σ dy and Σ dy·x, from which Σ dy·x̂ = (Σ dy·x − mean·Σ dy)/σ.
  const sumDy = new Float64Array(channels);
  const sumDyX = new Float64Array(channels);
  for (let row = 0, at = 0; row < rows; row++) {
    for (let c = 0; c < channels; c++, at++) {
      const g = mem[dyAt + at];
      sumDy[c] += g;
      sumDyX[c] += g * mem[xAt + at];
    }
  }
  // dx = a·dy + p·x + q per channel.
  const a = new Float32Array(channels);
  const p = new Float32Array(channels);
  const q = new Float32Array(channels);
  const dGammaAt = heapIndex(backend, dGamma);
  const dBetaAt = heapIndex(backend, dBeta);
  for (let c = 0; c < channels; c++) {
    const m = mem[meanAt + c];
    const inverseStd = 1 / Math.sqrt(mem[varianceAt + c] + epsilon);
    const dg = (sumDyX[c] - m * sumDy[c]) * inverseStd;
    mem[dGammaAt + c] = dg;
    mem[dBetaAt + c] = sumDy[c];
    a[c] = mem[gammaAt + c] * inverseStd;
    p[c] = -a[c] * dg * inverseStd / rows;
    q[c] = -a[c] * sumDy[c] / rows - p[c] * m;
  }
  const dxAt = heapIndex(backend, dx);
  for (let row = 0, at = 0; row < rows; row++) {
    for (let c = 0; c < channels; c++, at++) {
      mem[dxAt + at] = a[c] * mem[dyAt + at] + p[c] * mem[xAt + at] + q[c];
    }
  }
  return [dx, dGamma, dBeta];
}

export function registerBatchNormKernels(): void {
  for (
    const [kernelName, kernelFunc] of [
      [BATCH_NORM_TRAIN, batchNormTrain],
      [BATCH_NORM_TRAIN_GRAD, batchNormTrainGrad],
    ] as const
  ) {
    if (tf.getKernel(kernelName, "wasm") !== undefined) continue;
    tf.registerKernel({
      kernelName,
      backendName: "wasm",
      kernelFunc: kernelFunc as unknown as tf.KernelFunc,
    });
  }
}

/**
 * Training-mode BatchNorm over the last axis on the wasm backend:
 * [normalised, batch mean, batch variance]; differentiable in x, γ and β.
 */
export function batchNormTraining(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  epsilon: number,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  let statistics: [tf.Tensor, tf.Tensor] | undefined;
  const normalise = tf.customGrad((...args: unknown[]) => {
    const [input, scale, offset, save] = args as [
      tf.Tensor,
      tf.Tensor,
      tf.Tensor,
      (tensors: tf.Tensor[]) => void,
    ];
    const [y, mean, variance] = tf.engine().runKernel(
      BATCH_NORM_TRAIN,
      { x: input, gamma: scale, beta: offset },
      { epsilon } as unknown as tf.NamedAttrMap,
    ) as tf.Tensor[];
    // The forward runs in a tidy of its own: keep the statistics out of it.
    statistics = [tf.keep(mean), tf.keep(variance)];
    save([input, scale, mean, variance]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedX, savedGamma, savedMean, savedVariance] = saved;
        return tf.engine().runKernel(
          BATCH_NORM_TRAIN_GRAD,
          { dy, x: savedX, gamma: savedGamma, mean: savedMean, variance: savedVariance },
          { epsilon } as unknown as tf.NamedAttrMap,
        ) as tf.Tensor[];
      },
    };
  });
  const y = normalise(x, gamma, beta);
  const [mean, variance] = statistics!;
  // Clones belong to the caller's scope like any result; the kept ones go.
  const result: [tf.Tensor, tf.Tensor, tf.Tensor] = [y, mean.clone(), variance.clone()];
  tf.dispose([mean, variance]);
  return result;
}
