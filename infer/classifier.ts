/**
 * Any MNIST classifier in ONNX, behind one interface: the input layout is
 * read from the model ([N, 28, 28, 1], [N, 1, 28, 28] or [N, 784]; batch
 * fixed or dynamic), and logits are turned into probabilities. The
 * deployment side: ONNX Runtime only, no tfjs.
 */
import { onnx, ort } from "../deps.ts";
import {
  detectLayout,
  dimsFor,
  type InputLayout,
  rowsAreProbabilities,
  softmaxRows,
} from "./model_io.ts";

export {
  argmaxRows,
  detectLayout,
  dimsFor,
  INPUT_LAYOUTS,
  type InputLayout,
  rowsAreProbabilities,
  softmaxRows,
} from "./model_io.ts";

export class ModelError extends Error {}

const PIXELS = 28 * 28;

export interface ClassifierInfo {
  path: string;
  inputName: string;
  outputName: string;
  inputShape: ReadonlyArray<number | string>;
  layout: InputLayout;
  /** The batch size the model insists on, or undefined when it is dynamic. */
  fixedBatch?: number;
  /** The model's `metadata_props` (this project's exporter writes preprocessing, labels, metrics). */
  metadata: Record<string, string>;
}

/** The `metadata_props` of an ONNX model's bytes; empty when there are none or they cannot be read. */
export function onnxMetadata(bytes: Uint8Array): Record<string, string> {
  try {
    const props = onnx.ModelProto.decode(bytes).metadataProps ?? [];
    return Object.fromEntries(props.map(({ key, value }) => [key ?? "", value ?? ""]));
  } catch {
    return {};
  }
}

/**
 * The classifiers among `files`: an ONNX file whose first output states a
 * last dimension other than 10 (an angle network beside the turned model
 * it serves, say) is left out, with a line saying so; one that cannot be
 * read stays in, for loading to refuse by name.
 */
export async function classifierFiles(files: string[]): Promise<string[]> {
  const kept: string[] = [];
  for (const file of files) {
    let last: number | undefined;
    try {
      const dims = onnx.ModelProto.decode(await Deno.readFile(file)).graph?.output?.[0]?.type
        ?.tensorType?.shape?.dim ?? [];
      const value = dims.at(-1)?.dimValue;
      last = value === undefined || value === null ? undefined : Number(value);
    } catch {
      last = undefined;
    }
    if (last !== undefined && last > 0 && last !== 10) {
      console.log(`left out ${file}: not a classifier (${last} output an image, not 10)`);
    } else {
      kept.push(file);
    }
  }
  return kept;
}

export class OnnxClassifier {
  readonly info: ClassifierInfo;
  #session: ort.InferenceSession;
  /** Whether the model's outputs were found to be logits (decided on the first batch). */
  outputsLogits?: boolean;

  private constructor(session: ort.InferenceSession, info: ClassifierInfo) {
    this.#session = session;
    this.info = info;
  }

  static async load(
    path: string,
    options: { layout?: InputLayout; threads?: number; spinning?: boolean } = {},
  ): Promise<OnnxClassifier> {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new ModelError(`Model file ${path} does not exist.`);
      }
      throw new ModelError(`Model file ${path} cannot be read: ${(error as Error).message}`);
    }
    return await OnnxClassifier.fromBytes(bytes, path, options);
  }

  /** A classifier from a model's bytes; `path` names it in messages. */
  static async fromBytes(
    bytes: Uint8Array,
    path: string,
    options: { layout?: InputLayout; threads?: number; spinning?: boolean } = {},
  ): Promise<OnnxClassifier> {
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes, {
        graphOptimizationLevel: "all",
        intraOpNumThreads: options.threads ?? navigator.hardwareConcurrency,
        interOpNumThreads: 1,
        // Blurred and deformed images carry tiny values; denormal floats
        // would slow every convolution down.
        extra: {
          session: {
            set_denormal_as_zero: "1",
            // A service shares its cores with request handling: threads that
            // spin while waiting for work would take them away.
            ...(options.spinning === false ? { intra_op: { allow_spinning: "0" } } : {}),
          },
        },
      });
    } catch (error) {
      const why = (error as Error).message.split("\n")[0];
      throw new ModelError(`${path} is not an ONNX model that ONNX Runtime can load (${why}).`);
    }
    const input = session.inputMetadata[0];
    const output = session.outputMetadata[0];
    const inputShape = input && input.isTensor ? input.shape : [];
    if (session.inputNames.length !== 1 || !input?.isTensor || input.type !== "float32") {
      await session.release();
      throw new ModelError(
        `${path} must take one float32 image tensor; it takes ${session.inputNames.length} input(s)${
          input?.isTensor ? ` of type ${input.type}` : ""
        }.`,
      );
    }
    const layout = options.layout ?? detectLayout(inputShape);
    if (!layout || (options.layout && inputShape.length !== dimsFor(layout, 1).length)) {
      await session.release();
      throw new ModelError(
        `${path} takes input "${input.name}" of shape [${
          inputShape.join(", ")
        }], which cannot hold a 28x28 image; expected [N, 28, 28, 1], [N, 1, 28, 28] or [N, 784].`,
      );
    }
    const batch = inputShape[0];
    return new OnnxClassifier(session, {
      path,
      inputName: input.name,
      outputName: output.name,
      inputShape,
      layout,
      fixedBatch: typeof batch === "number" && batch > 0 ? batch : undefined,
      metadata: onnxMetadata(bytes),
    });
  }

  /**
   * Class probabilities for images given as count × 784 floats in [0, 1]
   * (MNIST polarity). Batches are split or padded for fixed-batch models.
   */
  async predict(pixels: Float32Array, batchSize = 256): Promise<Float32Array> {
    const count = pixels.length / PIXELS;
    const step = this.info.fixedBatch ?? batchSize;
    const all = new Float32Array(count * 10);
    for (let start = 0; start < count; start += step) {
      const end = Math.min(count, start + step);
      const rows = this.info.fixedBatch ?? end - start;
      let batch = pixels.subarray(start * PIXELS, end * PIXELS);
      if (rows > end - start) {
        const padded = new Float32Array(rows * PIXELS);
        padded.set(batch);
        batch = padded;
      }
      const feeds = {
        [this.info.inputName]: new ort.Tensor("float32", batch, dimsFor(this.info.layout, rows)),
      };
      const output = (await this.#session.run(feeds))[this.info.outputName];
      const values = output.data as Float32Array;
      if (values.length !== rows * 10) {
        throw new ModelError(
          `${this.info.path} gives ${
            values.length / rows
          } outputs per image; an MNIST classifier gives 10.`,
        );
      }
      const real = values.subarray(0, (end - start) * 10);
      // Decided once per model, on its first batch.
      this.outputsLogits ??= !rowsAreProbabilities(real, 10);
      all.set(this.outputsLogits ? softmaxRows(real, 10) : real, start * 10);
    }
    return all;
  }

  async release(): Promise<void> {
    await this.#session.release();
  }
}

/** Class probabilities of a model given as bytes, in a session opened and closed for this call. */
export async function predictOnce(
  bytes: Uint8Array,
  path: string,
  pixels: Float32Array,
): Promise<Float32Array> {
  const classifier = await OnnxClassifier.fromBytes(bytes, path);
  try {
    return await classifier.predict(pixels);
  } finally {
    await classifier.release();
  }
}
