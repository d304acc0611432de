/**
 * Adam over all trainable weights as one flat vector: one pass in
 * JavaScript per step, where `tf.train.adam` runs about ten kernels per
 * variable (some 140 per step). The update is tfjs's:
 *   m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,
 *   w ← w − lr · (m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε),  ε = 1e-7,
 * and its state reads and writes in `tf.train.adam`'s `getWeights` layout
 * (iteration count, then every m, then every v), so checkpoints are the same.
 * Gradients arrive flat (train/steps.ts), as data-parallel workers exchange
 * them.
 */
import { tf } from "../deps_tfjs.ts";
import { adamUpdate } from "../kernels/engine.ts";

export interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

export class FlatAdam {
  learningRate: number;
  readonly beta1 = 0.9;
  readonly beta2 = 0.999;
  readonly epsilon = 1e-7;
  iterations = 0;
  #variables: tf.Variable[];
  #m: Float32Array;
  #v: Float32Array;

  constructor(variables: tf.Variable[], learningRate: number) {
    this.#variables = variables;
    this.learningRate = learningRate;
    const size = variables.reduce((sum, variable) => sum + variable.size, 0);
    this.#m = new Float32Array(size);
    this.#v = new Float32Array(size);
  }

  /** For the trainable weights of a model, in their order. */
  static forModel(model: tf.LayersModel, learningRate: number): FlatAdam {
    return new FlatAdam(
      model.trainableWeights.map((weight) => weight.read() as tf.Variable),
      learningRate,
    );
  }

  get size(): number {
    return this.#m.length;
  }

  /** One update with `gradients` laid out as the variables, concatenated. */
  apply(gradients: Float32Array): void {
    if (gradients.length !== this.size) {
      throw new Error(`Expected ${this.size} gradient values, got ${gradients.length}.`);
    }
    const { beta1, beta2, epsilon } = this;
    const t = this.iterations + 1;
    const stepSize = this.learningRate / (1 - beta1 ** t);
    const secondCorrection = 1 / (1 - beta2 ** t);
    const m = this.#m;
    const v = this.#v;
    const update = adamUpdate();
    const constants = { beta1, beta2, stepSize, secondCorrection, epsilon };
    let offset = 0;
    for (const variable of this.#variables) {
      // A copy of the weights, updated in place and written back.
      const weights = variable.dataSync() as Float32Array;
      const end = offset + weights.length;
      update(
        weights,
        gradients.subarray(offset, end),
        m.subarray(offset, end),
        v.subarray(offset, end),
        constants,
      );
      tf.tidy(() => variable.assign(tf.tensor(weights, variable.shape)));
      offset = end;
    }
    this.iterations = t;
  }

  /** The state as `tf.train.adam(...).getWeights()` gives it (new tensors: dispose them). */
  getWeights(): Promise<NamedTensor[]> {
    const moments = (moment: Float32Array, suffix: string) => {
      let offset = 0;
      return this.#variables.map((variable) => {
        const tensor = tf.tensor(moment.slice(offset, offset + variable.size), variable.shape);
        offset += variable.size;
        return { name: `${variable.name}/${suffix}`, tensor };
      });
    };
    return Promise.resolve([
      { name: "iter", tensor: tf.scalar(this.iterations, "int32") },
      ...moments(this.#m, "m"),
      ...moments(this.#v, "v"),
    ]);
  }

  /** Takes state in the `getWeights` layout (the tensors stay the caller's). */
  setWeights(named: NamedTensor[]): Promise<void> {
    const count = this.#variables.length;
    if (named.length !== 2 * count + 1 || named[0].name !== "iter") {
      throw new Error(
        `Expected the optimizer state of ${count} variables (${
          2 * count + 1
        } tensors), got ${named.length}.`,
      );
    }
    this.iterations = named[0].tensor.dataSync()[0];
    for (const [moment, first] of [[this.#m, 1], [this.#v, 1 + count]] as const) {
      let offset = 0;
      for (let i = 0; i < count; i++) {
        const values = named[first + i].tensor.dataSync();
        if (values.length !== this.#variables[i].size) {
          throw new Error(`Optimizer state ${named[first + i].name} has the wrong size.`);
        }
        moment.set(values, offset);
        offset += values.length;
      }
    }
    return Promise.resolve();
  }
}
