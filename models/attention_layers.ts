/**
 * The layers a vision transformer needs and tfjs lacks: multi-head
 * self-attention and a learned position embedding. Both are registered with
 * tfjs's serialization, so models that use them save and load as any other
 * layers model (models/layers_io.ts imports this module for that).
 */
import { tf } from "../deps_tfjs.ts";

type Shape = (number | null)[];

function singleShape(inputShape: tf.Shape | tf.Shape[]): Shape {
  return (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
}

function single(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  return Array.isArray(inputs) ? inputs[0] : inputs;
}

export interface SelfAttentionArgs {
  /** Attention heads; the token width must divide by it. */
  heads: number;
  name?: string;
}

/**
 * Multi-head self-attention over tokens [batch, tokens, width]: each head
 * attends with softmax(q·kᵀ / √(width / heads)) over all tokens, the heads
 * are concatenated and projected back to the token width. Weights:
 * query/key/value/output kernels [width, width] and their biases.
 */
export class MultiHeadSelfAttention extends tf.layers.Layer {
  static className = "MultiHeadSelfAttention";
  readonly heads: number;
  #weights: Record<string, tf.LayerVariable> = {};

  constructor(args: SelfAttentionArgs) {
    super({ name: args.name });
    if (!Number.isInteger(args.heads) || args.heads < 1) {
      throw new Error(`Self-attention needs a whole number of heads, got ${args.heads}.`);
    }
    this.heads = args.heads;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = singleShape(inputShape);
    const width = shape[2];
    if (shape.length !== 3 || typeof width !== "number") {
      throw new Error(
        `Self-attention takes tokens [batch, tokens, width], got ${JSON.stringify(shape)}.`,
      );
    }
    if (width % this.heads !== 0) {
      throw new Error(`Token width ${width} does not divide into ${this.heads} heads.`);
    }
    for (const part of ["query", "key", "value", "output"]) {
      this.#weights[`${part}_kernel`] = this.addWeight(
        `${part}_kernel`,
        [width, width],
        "float32",
        tf.initializers.glorotUniform({}),
      );
      this.#weights[`${part}_bias`] = this.addWeight(
        `${part}_bias`,
        [width],
        "float32",
        tf.initializers.zeros(),
      );
    }
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return singleShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = single(inputs);
      const [batch, tokens, width] = x.shape;
      const depth = width / this.heads;
      const rows = tf.reshape(x, [batch * tokens, width]);
      const project = (part: string, from: tf.Tensor) =>
        tf.add(
          tf.matMul(from as tf.Tensor2D, this.#weights[`${part}_kernel`].read() as tf.Tensor2D),
          this.#weights[`${part}_bias`].read(),
        );
      // [batch·tokens, width] → [batch, heads, tokens, depth]
      const split = (part: string) =>
        tf.transpose(tf.reshape(project(part, rows), [batch, tokens, this.heads, depth]), [
          0,
          2,
          1,
          3,
        ]);
      const query = split("query"), key = split("key"), value = split("value");
      const scores = tf.mul(tf.matMul(query, key, false, true), 1 / Math.sqrt(depth));
      const attended = tf.matMul(tf.softmax(scores, -1), value);
      const merged = tf.reshape(tf.transpose(attended, [0, 2, 1, 3]), [batch * tokens, width]);
      return tf.reshape(project("output", merged), [batch, tokens, width]);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), heads: this.heads };
  }
}

/** Adds a learned vector to each token position: [batch, tokens, width] in and out. */
export class PositionEmbedding extends tf.layers.Layer {
  static className = "PositionEmbedding";
  #embedding?: tf.LayerVariable;

  constructor(args: { name?: string } = {}) {
    super({ name: args.name });
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const [, tokens, width] = singleShape(inputShape);
    if (typeof tokens !== "number" || typeof width !== "number") {
      throw new Error(
        `A position embedding needs a fixed token count and width, got ${
          JSON.stringify(inputShape)
        }.`,
      );
    }
    this.#embedding = this.addWeight(
      "embedding",
      [tokens, width],
      "float32",
      tf.initializers.truncatedNormal({ stddev: 0.02 }),
    );
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return singleShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => tf.add(single(inputs), this.#embedding!.read()));
  }
}

tf.serialization.registerClass(MultiHeadSelfAttention);
tf.serialization.registerClass(PositionEmbedding);
