/**
 * Each kernel we register over the wasm backend, on either engine, against
 * the tfjs cpu backend's reference implementation, on random shapes (odd
 * sizes, both paddings, strides 1 and 2). Tolerance: 1e-4 relative to the
 * largest magnitude of the reference (float32 sums in a different order).
 * The native engine's tests run where it can be built, and must with MNIST_REQUIRE_NATIVE set.
 */
import assert from "node:assert/strict";
import { tf } from "../deps_tfjs.ts";
import { useWasmBackend } from "../kernels/backend.ts";
import { type EngineName, NATIVE_KERNELS, useConvolutions, useEngine } from "../kernels/engine.ts";
import { Random, seedMathRandom, withMathRandom } from "../util/random.ts";
import { sizeOf } from "../kernels/wasm_heap.ts";

await useWasmBackend();
const TOLERANCE = 1e-4;

const native = await useEngine("native").then(() => true, (error) => {
  if (Deno.env.get("MNIST_REQUIRE_NATIVE")) throw error;
  console.warn(`skipping the native engine's kernel tests: ${error.message}`);
  return false;
});
const ENGINES: EngineName[] = native ? ["wasm", "native"] : ["wasm"];

/** One test per engine, each run with that engine's kernels registered. */
function engineTest(name: string, fn: () => void | Promise<void>): void {
  for (const engine of ENGINES) {
    Deno.test(`${name} (${engine} engine)`, async () => {
      await useEngine(engine);
      await fn();
    });
  }
}

/**
 * The convolutions' tests: each engine, and the native one's convolutions
 * on both oneDNN (where it was built with it) and im2col.
 */
function convolutionTest(name: string, fn: () => void): void {
  engineTest(name, fn);
  if (!native) return;
  Deno.test(`${name} (native engine, im2col convolutions)`, async () => {
    await useEngine("native");
    useConvolutions("im2col");
    try {
      fn();
    } finally {
      useConvolutions("onednn");
    }
  });
}

Deno.test({
  name: "switching engines replaces every native kernel, and back",
  ignore: !native,
  async fn() {
    const registered = () => NATIVE_KERNELS.map((name) => tf.getKernel(name, "wasm")?.kernelFunc);
    await useEngine("wasm");
    const wasm = registered();
    await useEngine("native");
    const nativeKernels = registered();
    NATIVE_KERNELS.forEach((name, i) => assert.notEqual(nativeKernels[i], wasm[i], name));
    // Back on wasm, none of the native kernels is left registered.
    await useEngine("wasm");
    const back = registered();
    NATIVE_KERNELS.forEach((name, i) => assert.notEqual(back[i], nativeKernels[i], name));
  },
});

function randomArray(random: Random, size: number): Float32Array {
  return Float32Array.from({ length: size }, () => random.uniform(-1, 1));
}

type Inputs = Record<string, { values: Float32Array; shape: number[] }>;

function runOn(
  backend: string,
  kernel: string,
  inputs: Inputs,
  attrs: Record<string, unknown>,
): { values: Float32Array; shape: number[] } {
  tf.setBackend(backend);
  return tf.tidy(() => {
    const tensors = Object.fromEntries(
      Object.entries(inputs).map(([name, { values, shape }]) => [name, tf.tensor(values, shape)]),
    );
    const out = tf.engine().runKernel(kernel, tensors, attrs as tf.NamedAttrMap) as tf.Tensor;
    return { values: out.dataSync() as Float32Array, shape: out.shape };
  });
}

function assertMatchesCpu(kernel: string, inputs: Inputs, attrs: Record<string, unknown>) {
  const expected = runOn("cpu", kernel, inputs, attrs);
  const actual = runOn("wasm", kernel, inputs, attrs);
  assert.deepEqual(actual.shape, expected.shape, `${kernel} shape`);
  let scale = 1e-6;
  for (const value of expected.values) scale = Math.max(scale, Math.abs(value));
  let worst = 0;
  for (let i = 0; i < expected.values.length; i++) {
    worst = Math.max(worst, Math.abs(actual.values[i] - expected.values[i]));
  }
  assert.ok(
    worst <= TOLERANCE * scale,
    `${kernel} ${JSON.stringify(attrs)}: max difference ${worst} > ${TOLERANCE * scale}`,
  );
}

const convCases = [
  { x: [2, 7, 9, 3], filter: [3, 3, 3, 5], strides: 1, pad: "same" },
  { x: [3, 8, 8, 1], filter: [3, 3, 1, 4], strides: 1, pad: "valid" },
  { x: [2, 9, 7, 4], filter: [3, 2, 4, 3], strides: 2, pad: "same" },
  { x: [1, 11, 10, 2], filter: [5, 5, 2, 6], strides: [2, 1], pad: "valid" },
  { x: [2, 6, 6, 2], filter: [2, 2, 2, 3], strides: 1, pad: "same" },
  { x: [4, 28, 28, 1], filter: [3, 3, 1, 8], strides: 1, pad: "same" },
  // Fewer patch rows than filters, as in the first layer.
  { x: [2, 10, 9, 1], filter: [3, 3, 1, 12], strides: 1, pad: "same" },
  { x: [2, 9, 8, 2], filter: [2, 2, 2, 16], strides: 2, pad: "valid" },
  // More patch rows than the native engine keeps at once: it works in chunks of images.
  { x: [36, 30, 30, 32], filter: [3, 3, 32, 3], strides: 1, pad: "same" },
] as const;

function convOutput(c: typeof convCases[number]): number[] {
  return runOn("cpu", "Conv2D", {
    x: { values: new Float32Array(sizeOf(c.x)), shape: [...c.x] },
    filter: { values: new Float32Array(sizeOf(c.filter)), shape: [...c.filter] },
  }, { strides: c.strides, pad: c.pad, dataFormat: "NHWC", dilations: 1 }).shape;
}

convolutionTest("Conv2D matches the cpu backend", () => {
  const random = new Random(10);
  for (const c of convCases) {
    assertMatchesCpu("Conv2D", {
      x: { values: randomArray(random, sizeOf(c.x)), shape: [...c.x] },
      filter: { values: randomArray(random, sizeOf(c.filter)), shape: [...c.filter] },
    }, { strides: c.strides, pad: c.pad, dataFormat: "NHWC", dilations: 1 });
  }
});

convolutionTest("Conv2DBackpropFilter matches the cpu backend", () => {
  const random = new Random(1);
  for (const c of convCases) {
    const dyShape = convOutput(c);
    assertMatchesCpu("Conv2DBackpropFilter", {
      x: { values: randomArray(random, sizeOf(c.x)), shape: [...c.x] },
      dy: { values: randomArray(random, sizeOf(dyShape)), shape: dyShape },
    }, {
      strides: c.strides,
      pad: c.pad,
      dataFormat: "NHWC",
      dimRoundingMode: undefined,
      filterShape: [...c.filter],
    });
  }
});

convolutionTest("Conv2DBackpropInput matches the cpu backend", () => {
  const random = new Random(2);
  for (const c of convCases) {
    const dyShape = convOutput(c);
    assertMatchesCpu("Conv2DBackpropInput", {
      dy: { values: randomArray(random, sizeOf(dyShape)), shape: dyShape },
      filter: { values: randomArray(random, sizeOf(c.filter)), shape: [...c.filter] },
    }, {
      strides: c.strides,
      pad: c.pad,
      dataFormat: "NHWC",
      dimRoundingMode: undefined,
      inputShape: [...c.x],
    });
  }
});

// Depthwise filters [h, w, channels, multiplier]: odd sizes, both paddings, strides 1 and 2.
const depthwiseCases = [
  { x: [2, 7, 9, 3], filter: [3, 3, 3, 1], strides: 1, pad: "same" },
  { x: [3, 8, 8, 5], filter: [3, 3, 5, 2], strides: 1, pad: "valid" },
  { x: [3, 8, 7, 5], filter: [3, 3, 5, 1], strides: 1, pad: "valid" },
  { x: [2, 9, 7, 4], filter: [3, 2, 4, 1], strides: 2, pad: "same" },
  { x: [1, 11, 10, 2], filter: [5, 5, 2, 3], strides: [2, 1], pad: "valid" },
  { x: [4, 14, 14, 64], filter: [3, 3, 64, 1], strides: 1, pad: "same" },
] as const;

function depthwiseOutput(c: typeof depthwiseCases[number]): number[] {
  return runOn("cpu", "DepthwiseConv2dNative", {
    x: { values: new Float32Array(sizeOf(c.x)), shape: [...c.x] },
    filter: { values: new Float32Array(sizeOf(c.filter)), shape: [...c.filter] },
  }, { strides: c.strides, pad: c.pad, dataFormat: "NHWC", dilations: 1 }).shape;
}

convolutionTest("DepthwiseConv2dNative matches the cpu backend", () => {
  const random = new Random(20);
  for (const c of depthwiseCases) {
    assertMatchesCpu("DepthwiseConv2dNative", {
      x: { values: randomArray(random, sizeOf(c.x)), shape: [...c.x] },
      filter: { values: randomArray(random, sizeOf(c.filter)), shape: [...c.filter] },
    }, { strides: c.strides, pad: c.pad, dilations: 1, dataFormat: "NHWC" });
  }
});

convolutionTest(
  "DepthwiseConv2dNativeBackpropFilter (added: wasm has none) matches the cpu backend",
  () => {
    const random = new Random(21);
    for (const c of depthwiseCases) {
      const dyShape = depthwiseOutput(c);
      assertMatchesCpu("DepthwiseConv2dNativeBackpropFilter", {
        x: { values: randomArray(random, sizeOf(c.x)), shape: [...c.x] },
        dy: { values: randomArray(random, sizeOf(dyShape)), shape: dyShape },
      }, { strides: c.strides, pad: c.pad, dilations: 1, filterShape: [...c.filter] });
    }
  },
);

convolutionTest(
  "DepthwiseConv2dNativeBackpropInput (added: wasm has none) matches the cpu backend",
  () => {
    const random = new Random(22);
    for (const c of depthwiseCases) {
      const dyShape = depthwiseOutput(c);
      assertMatchesCpu("DepthwiseConv2dNativeBackpropInput", {
        dy: { values: randomArray(random, sizeOf(dyShape)), shape: dyShape },
        filter: { values: randomArray(random, sizeOf(c.filter)), shape: [...c.filter] },
      }, { strides: c.strides, pad: c.pad, dilations: 1, inputShape: [...c.x] });
    }
  },
);

engineTest("BatchMatMul with transposed operands matches the cpu backend", () => {
  const random = new Random(3);
  for (
    const [transposeA, transposeB] of [[false, false], [true, false], [false, true], [true, true]]
  ) {
    // Cases with n > m take the swapped product (Bᵀ·Aᵀ)ᵀ; batch 0 means rank 2.
    const cases = [[1, 5, 7, 3], [2, 17, 33, 9], [1, 64, 3136, 12], [1, 4, 50, 37], [0, 9, 31, 40]];
    for (const [batch, m, k, n] of cases) {
      const lead = batch ? [batch] : [];
      const a = transposeA ? [...lead, k, m] : [...lead, m, k];
      const b = transposeB ? [...lead, n, k] : [...lead, k, n];
      assertMatchesCpu("BatchMatMul", {
        a: { values: randomArray(random, sizeOf(a)), shape: a },
        b: { values: randomArray(random, sizeOf(b)), shape: b },
      }, { transposeA, transposeB });
    }
  }
});

engineTest(
  "_FusedMatMul (a dense layer's product, bias and activation) matches the cpu backend",
  () => {
    const random = new Random(4);
    // [batch, m, k, n] (tfjs hands the kernel rank-3 operands): a dense layer of the models
    // (batch 32, 3,136 → 128), odd sizes, n > m and n < m, two products at once.
    const cases = [[1, 32, 3136, 128], [1, 5, 7, 3], [1, 9, 31, 40], [2, 40, 12, 6]];
    for (const [batch, m, k, n] of cases) {
      for (const [transposeA, transposeB] of [[false, false], [true, false], [false, true]]) {
        // Other activations go to the backend's own kernel, which is not ours to test (and
        // whose products with a bias disagree with the cpu backend in some of these cases).
        for (const activation of ["linear", "relu"]) {
          for (const withBias of [false, true]) {
            const a = transposeA ? [batch, k, m] : [batch, m, k];
            const b = transposeB ? [batch, n, k] : [batch, k, n];
            assertMatchesCpu("_FusedMatMul", {
              a: { values: randomArray(random, sizeOf(a)), shape: a },
              b: { values: randomArray(random, sizeOf(b)), shape: b },
              ...(withBias ? { bias: { values: randomArray(random, n), shape: [n] } } : {}),
            }, { transposeA, transposeB, activation });
          }
        }
      }
    }
  },
);

engineTest("MaxPoolGrad matches the cpu backend, ties included", () => {
  const random = new Random(4);
  const cases = [
    { x: [2, 8, 8, 3], filterSize: 2, strides: 2, pad: "valid" },
    { x: [1, 9, 7, 2], filterSize: 2, strides: 2, pad: "valid" },
    // An odd last row and column no window covers (the robust model's 7×7 → 3×3), and one of each.
    { x: [3, 7, 7, 16], filterSize: 2, strides: 2, pad: "valid" },
    { x: [2, 6, 7, 5], filterSize: 2, strides: 2, pad: "valid" },
    { x: [2, 7, 6, 5], filterSize: 2, strides: 2, pad: "valid" },
    { x: [2, 7, 9, 4], filterSize: 3, strides: 2, pad: "same" },
    { x: [1, 6, 6, 1], filterSize: [3, 2], strides: 1, pad: "valid" },
  ] as const;
  for (const c of cases) {
    const size = sizeOf(c.x);
    // Rounded values make ties, as ReLU's zeros do in real networks.
    const x = Float32Array.from(
      { length: size },
      () => Math.max(0, Math.round(random.uniform(-2, 2))),
    );
    tf.setBackend("cpu");
    const y = tf.tidy(() => {
      const out = tf.maxPool(
        tf.tensor(x, [...c.x]) as tf.Tensor4D,
        c.filterSize as [number, number],
        c.strides,
        c.pad,
      );
      return { values: out.dataSync() as Float32Array, shape: out.shape };
    });
    assertMatchesCpu("MaxPoolGrad", {
      dy: { values: randomArray(random, y.values.length), shape: y.shape },
      input: { values: x, shape: [...c.x] },
      output: y,
    }, { filterSize: c.filterSize, strides: c.strides, pad: c.pad, dimRoundingMode: undefined });
  }
});

Deno.test("Tile matches the cpu backend", () => {
  const random = new Random(5);
  const cases = [
    { shape: [1, 1, 1, 32], reps: [4, 5, 3, 1] },
    { shape: [3, 2], reps: [2, 3] },
    { shape: [2, 1, 3], reps: [1, 4, 2] },
    { shape: [5], reps: [7] },
  ];
  for (const { shape, reps } of cases) {
    assertMatchesCpu("Tile", {
      x: { values: randomArray(random, sizeOf(shape)), shape },
    }, { reps });
  }
});

engineTest(
  "ReLU's gradient is tfjs's mul(dy, step(x)), zeros included, and leaks no tensor",
  () => {
    const random = new Random(12);
    for (const shape of [[4, 9, 7, 5], [33]]) {
      // A third of the inputs exactly zero: step(0) is 0, so is the gradient there.
      const values = randomArray(random, sizeOf(shape)).map((v, i) => (i % 3 === 0 ? 0 : v));
      const x = tf.tensor(values, shape);
      const weights = tf.tensor(randomArray(random, sizeOf(shape)), shape);
      const before = tf.memory().numTensors;
      const gradient = tf.grad((input: tf.Tensor) => tf.sum(tf.mul(tf.relu(input), weights)))(x);
      assert.equal(tf.memory().numTensors, before + 1);
      const expected = tf.tidy(() => tf.mul(weights, tf.cast(tf.step(x), "float32")));
      // Equal values (tfjs's product gives -0 where a negative weight meets a zero step).
      const [ours, reference] = [gradient.dataSync(), expected.dataSync()];
      assert.ok(ours.every((v, i) => v === reference[i]), `${shape}`);
      tf.dispose([x, weights, gradient, expected]);
    }
  },
);

engineTest(
  "Cast to a tensor's own dtype shares its data, which outlives the input; other casts convert",
  () => {
    tf.setBackend("wasm");
    const before = tf.memory().numTensors;
    const x = tf.tensor([1.5, -2.25, 3], [3]);
    const buffers = tf.memory().numDataBuffers;
    const same = tf.cast(x, "float32");
    assert.equal(tf.memory().numDataBuffers, buffers, "no second copy of the data");
    x.dispose();
    assert.deepEqual(Array.from(same.dataSync()), [1.5, -2.25, 3]);
    const converted = tf.cast(same, "int32");
    assert.equal(converted.dtype, "int32");
    assert.deepEqual(Array.from(converted.dataSync()), [1, -2, 3]);
    tf.dispose([same, converted]);
    assert.equal(tf.memory().numTensors, before);
  },
);

engineTest("Sum and Mean over leading axes match the cpu backend", () => {
  const random = new Random(6);
  const cases = [
    { shape: [4, 5, 6, 7], axis: [0, 1, 2], keepDims: false },
    { shape: [4, 5, 6, 7], axis: [2, 0, 1], keepDims: true },
    { shape: [9, 3], axis: 0, keepDims: false },
    { shape: [4, 5, 6], axis: [1, 2], keepDims: false },
    { shape: [4, 5, 6], axis: [0, 2], keepDims: true },
  ];
  for (const { shape, axis, keepDims } of cases) {
    const x = { values: randomArray(random, sizeOf(shape)), shape };
    assertMatchesCpu("Sum", { x }, { axis, keepDims });
    assertMatchesCpu("Mean", { x }, { axis, keepDims });
  }
});

engineTest("a training step's gradients match the cpu backend", async () => {
  const { buildModel } = await import("../models/architectures.ts");
  const { crossEntropy } = await import("../train/steps.ts");
  const random = new Random(7);
  const pixels = Float32Array.from({ length: 8 * 784 }, () => random.next());
  const labels = Int32Array.from({ length: 8 }, () => random.int(10));
  for (const name of ["baseline", "improved"] as const) {
    tf.setBackend("cpu");
    // Seeded: with fresh initial weights every run, the comparison read different numbers each
    // time (a fresh-clone run once read 1.08e-3 of the scale on one baseline gradient).
    const model = withMathRandom(new Random(9), () => buildModel(name));
    const weights = model.getWeights().map((w) => w.dataSync().slice());
    const gradientsOn = (backend: string) => {
      tf.setBackend(backend);
      model.setWeights(weights.map((values, i) => tf.tensor(values, model.getWeights()[i].shape)));
      // The same dropout masks on both backends: tfjs seeds them from Math.random.
      return withMathRandom(new Random(8), () =>
        tf.tidy(() => {
          const x = tf.tensor4d(pixels, [8, 28, 28, 1]);
          const y = tf.tensor1d(labels, "int32");
          const { grads } = tf.variableGrads(() =>
            crossEntropy(y, model.apply(x, { training: true }) as tf.Tensor)
          );
          return Object.values(grads).map((g) => g.dataSync().slice() as Float32Array);
        }));
    };
    const expected = gradientsOn("cpu");
    const actual = gradientsOn("wasm");
    for (let i = 0; i < expected.length; i++) {
      let scale = 1e-6;
      let worst = 0;
      expected[i].forEach((value, j) => {
        scale = Math.max(scale, Math.abs(value));
        worst = Math.max(worst, Math.abs(value - actual[i][j]));
      });
      assert.ok(worst <= 1e-3 * scale, `${name} gradient ${i}: ${worst} vs scale ${scale}`);
    }
    model.dispose();
  }
  tf.setBackend("wasm");
});

engineTest(
  "fused training BatchNorm matches tfjs's moments and batchNorm, gradients included",
  async () => {
    const { batchNormTraining } = await import("../kernels/batch_norm.ts");
    const random = new Random(9);
    for (const shape of [[3, 5, 7, 4], [6, 10], [2, 3, 3, 1]]) {
      const channels = shape.at(-1)!;
      const x = tf.tensor(randomArray(random, sizeOf(shape)).map((v) => 3 * v + 1), shape);
      const gamma = tf.tensor1d(randomArray(random, channels));
      const beta = tf.tensor1d(randomArray(random, channels));
      // A weighted sum, so that every output element has its own gradient.
      const weights = tf.tensor(randomArray(random, sizeOf(shape)), shape);
      const reference = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
        const { mean, variance } = tf.moments(a, shape.map((_, i) => i).slice(0, -1));
        return tf.batchNorm(a, mean, variance, b, g, 1e-3);
      };
      const ours = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
        batchNormTraining(a, g, b, 1e-3)[0];
      const loss = (f: typeof ours) => (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(f(a, g, b), weights));
      const expected = [reference(x, gamma, beta), ...tf.grads(loss(reference))([x, gamma, beta])];
      const actual = [ours(x, gamma, beta), ...tf.grads(loss(ours))([x, gamma, beta])];
      ["output", "dx", "dgamma", "dbeta"].forEach((what, i) => {
        const difference = tf.max(tf.abs(tf.sub(expected[i], actual[i]))).dataSync()[0];
        const scale = Math.max(1, tf.max(tf.abs(expected[i])).dataSync()[0]);
        assert.ok(difference <= 1e-4 * scale, `${shape}: ${what} differs by ${difference}`);
      });
      const [, mean, variance] = batchNormTraining(x, gamma, beta, 1e-3);
      const moments = tf.moments(x, shape.map((_, i) => i).slice(0, -1));
      assert.ok(tf.max(tf.abs(tf.sub(mean, moments.mean))).dataSync()[0] < 1e-5);
      assert.ok(tf.max(tf.abs(tf.sub(variance, moments.variance))).dataSync()[0] < 1e-4);
      tf.dispose([
        x,
        gamma,
        beta,
        weights,
        mean,
        variance,
        moments.mean,
        moments.variance,
        ...expected,
        ...actual,
      ]);
    }
  },
);

Deno.test("training-mode dropout keeps 1 − rate of the units, scaled, and passes gradients through its mask", async () => {
  const { dropoutMask } = await import("../kernels/training_layers.ts");
  const mask = dropoutMask([200, 500], 0.25).dataSync();
  const kept = mask.filter((v) => v !== 0);
  assert.ok(Math.abs(kept.length / mask.length - 0.75) < 0.01, `kept ${kept.length / mask.length}`);
  assert.ok(kept.every((v) => Math.abs(v - 1 / 0.75) < 1e-6));

  const layer = tf.layers.dropout({ rate: 0.5 });
  const x = tf.ones([4, 50]);
  const restoreRandom = seedMathRandom(new Random(2));
  try {
    const [y, dx] = tf.tidy(() => {
      const output = layer.apply(x, { training: true }) as tf.Tensor;
      return [
        output,
        tf.grad((input: tf.Tensor) => tf.sum(layer.apply(input, { training: true }) as tf.Tensor))(
          x,
        ),
      ];
    });
    const values = y.dataSync();
    assert.ok(values.every((v) => v === 0 || v === 2), "kept units scaled by 1/(1 − rate)");
    assert.ok(dx.dataSync().every((v) => v === 0 || v === 2), "the gradient is the mask");
    const inference = layer.apply(x, { training: false }) as tf.Tensor;
    assert.deepEqual(inference.dataSync(), x.dataSync(), "inference leaves the input alone");
    tf.dispose([y, dx, inference]);
  } finally {
    restoreRandom();
    x.dispose();
  }
});

Deno.test({
  name: "Adam's update on the native engine is the JavaScript one, bit for bit",
  ignore: !native,
  async fn() {
    const { adamUpdate } = await import("../kernels/engine.ts");
    const { adamUpdateJs } = await import("../kernels/adam_update.ts");
    await useEngine("native");
    const update = adamUpdate();
    assert.notEqual(update, adamUpdateJs);
    const random = new Random(6);
    // An odd length, so the vectorised loop's remainder runs too.
    const n = 1001;
    const start = () => [randomArray(random, n), new Float32Array(n), new Float32Array(n)];
    const [w1, m1, v1] = start();
    const [w2, m2, v2] = [w1.slice(), m1.slice(), v1.slice()];
    const initial = w1.slice();
    for (let t = 1; t <= 5; t++) {
      const gradients = randomArray(random, n).map((g) => g * 10 ** (t - 3));
      const constants = {
        beta1: 0.9,
        beta2: 0.999,
        stepSize: 1e-3 / (1 - 0.9 ** t),
        secondCorrection: 1 / (1 - 0.999 ** t),
        epsilon: 1e-7,
      };
      update(w1, gradients, m1, v1, constants);
      adamUpdateJs(w2, gradients, m2, v2, constants);
    }
    assert.deepEqual(w1, w2);
    assert.deepEqual(m1, m2);
    assert.deepEqual(v1, v2);
    assert.notDeepEqual(w1, initial, "the weights moved");
  },
});

Deno.test("inference through the plain Conv2D and BatchNorm paths reads what the layers' own calls read", async () => {
  const { usePlainInference } = await import("../kernels/training_layers.ts");
  const { buildModel } = await import("../models/architectures.ts");
  const { profileKernels } = await import("../kernels/profile.ts");
  await useEngine("wasm");
  const random = new Random(12);
  const x = tf.tensor4d(randomArray(random, 5 * 784).map(Math.abs), [5, 28, 28, 1]);
  // The VGG: bias-free convolutions into BatchNorm; the baseline: convolutions with bias and ReLU.
  for (const name of ["vgg", "baseline"] as const) {
    const model = buildModel(name);
    const draw = (n: number, low: number) =>
      tf.tensor1d(randomArray(random, n).map((v) => low + Math.abs(v)));
    // Moving statistics away from 0 and 1, and biases away from 0, so that both are exercised.
    for (const layer of model.layers.filter((l) => l.getClassName() === "BatchNormalization")) {
      const [gamma, beta, mean, variance] = layer.getWeights().map((w) => w.shape[0]);
      layer.setWeights([draw(gamma, 0.5), draw(beta, -0.5), draw(mean, -0.5), draw(variance, 0.2)]);
    }
    for (const layer of model.layers.filter((l) => l.getClassName() === "Conv2D")) {
      const [kernel, bias] = layer.getWeights();
      if (bias) layer.setWeights([kernel, draw(bias.shape[0], -0.5)]);
    }
    const read = (plain: boolean) => {
      usePlainInference(plain);
      return tf.tidy(() =>
        (model.apply(x, { training: false }) as tf.Tensor).dataSync() as Float32Array
      );
    };
    try {
      const own = read(false);
      const before = tf.memory().numTensors;
      const profiler = profileKernels();
      const plain = read(true);
      const ran = profiler.report().filter((k) => k.calls > 0).map((k) => k.kernel);
      profiler.stop();
      assert.equal(tf.memory().numTensors, before, `${name}: no tensors left behind`);
      assert.ok(ran.includes("Conv2D") && !ran.includes("FusedConv2D"), `${name}: ${ran}`);
      assert.ok(!ran.includes("FusedBatchNorm"), `${name}: ${ran}`);
      const worst = own.reduce((m, v, i) => Math.max(m, Math.abs(v - plain[i])), 0);
      assert.ok(worst < 1e-5, `${name}: probabilities differ by ${worst}`);
    } finally {
      usePlainInference(false);
      model.dispose();
    }
  }
  x.dispose();
});

Deno.test({
  name:
    "the native engine runs inference on its own convolutions, the wasm engine on tfjs's fused ones",
  ignore: !native,
  async fn() {
    const { profileKernels } = await import("../kernels/profile.ts");
    const { buildModel } = await import("../models/architectures.ts");
    const model = buildModel("robust");
    const x = tf.zeros([2, 28, 28, 1]);
    const kernelsOn = async (engine: EngineName) => {
      await useEngine(engine);
      const profiler = profileKernels();
      try {
        tf.tidy(() => (model.apply(x, { training: false }) as tf.Tensor).dataSync());
        return profiler.report().filter((k) => k.calls > 0).map((k) => k.kernel);
      } finally {
        profiler.stop();
      }
    };
    try {
      const wasm = await kernelsOn("wasm");
      assert.ok(wasm.includes("FusedConv2D") && wasm.includes("FusedBatchNorm"), `${wasm}`);
      const onNative = await kernelsOn("native");
      assert.ok(onNative.includes("Conv2D"), `${onNative}`);
      assert.ok(
        !onNative.includes("FusedConv2D") && !onNative.includes("FusedBatchNorm"),
        `${onNative}`,
      );
    } finally {
      x.dispose();
      model.dispose();
    }
  },
});
