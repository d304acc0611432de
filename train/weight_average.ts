/**
 * An average of the trainable weights over training steps: after every step
 * average ← d · average + (1 − d) · weight. Evaluation and the saved model
 * use the averages, which sit in a flatter region than the last step's
 * weights.
 *
 * With `decay` below 1 it is an exponential moving average (Polyak
 * averaging, Keras's `use_ema`). As in TensorFlow's ExponentialMovingAverage,
 * d starts small and grows to `decay` (d = min(decay, (1 + n) / (10 + n))
 * after n updates), so short runs are not averaged with their random initial
 * weights; the warm-up also keeps the window near n / 9 steps until
 * n ≈ 10 / (1 − decay).
 *
 * With `decay` 1 it is the plain mean of every step's weights since it
 * (re)started (d = n / (n + 1)), stochastic weight averaging (Izmailov et
 * al., 2018), for a window of many epochs.
 */
import { tf } from "../deps_tfjs.ts";

export class WeightAverage {
  readonly decay: number;
  /** Updates so far (kept in checkpoints, so a resumed run averages the same). */
  updates: number;
  #model: tf.LayersModel;
  #averages: tf.Variable[];

  constructor(model: tf.LayersModel, decay: number, initial?: tf.Tensor[], updates = 0) {
    this.decay = decay;
    this.updates = updates;
    this.#model = model;
    const weights = model.trainableWeights;
    if (initial && initial.length !== weights.length) {
      throw new Error(`Expected ${weights.length} averaged weights, got ${initial.length}.`);
    }
    this.#averages = weights.map((weight, i) =>
      tf.variable((initial?.[i] ?? weight.read()).clone(), false)
    );
  }

  update(): void {
    const n = this.updates;
    const decay = this.decay === 1 ? n / (n + 1) : Math.min(this.decay, (1 + n) / (10 + n));
    tf.tidy(() => {
      this.#model.trainableWeights.forEach((weight, i) => {
        const average = this.#averages[i];
        average.assign(tf.add(tf.mul(average, decay), tf.mul(weight.read(), 1 - decay)));
      });
    });
    this.updates++;
  }

  /** Starts afresh from the current weights. */
  restart(): void {
    this.#model.trainableWeights.forEach((weight, i) => this.#averages[i].assign(weight.read()));
    this.updates = 0;
  }

  /** Takes over another replica's averages and update count. */
  load(averages: tf.Tensor[], updates: number): void {
    averages.forEach((average, i) => this.#averages[i].assign(average));
    this.updates = updates;
  }

  /** Runs `f` with the averages in the model, then puts the live weights back. */
  with<T>(f: () => T): T {
    const weights = this.#model.trainableWeights;
    const live = weights.map((weight) => weight.read().clone());
    try {
      weights.forEach((weight, i) => weight.write(this.#averages[i]));
      return f();
    } finally {
      weights.forEach((weight, i) => weight.write(live[i]));
      tf.dispose(live);
    }
  }

  /** Leaves the averages in the model for good (before saving it). */
  apply(): void {
    this.#model.trainableWeights.forEach((weight, i) => weight.write(this.#averages[i]));
  }

  tensors(): tf.Tensor[] {
    return this.#averages;
  }

  dispose(): void {
    tf.dispose(this.#averages);
  }
}
