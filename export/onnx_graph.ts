/**
 * A small builder for ONNX graphs on top of onnx-proto's message types.
 */
import { onnx, type OnnxTypes } from "../deps.ts";

export type Dim = number | string;

/** Integer, integer list or string attributes: all our operators need. */
export type AttributeValue = number | number[] | string;

export class GraphBuilder {
  readonly nodes: OnnxTypes.INodeProto[] = [];
  readonly initializers: OnnxTypes.ITensorProto[] = [];
  #names = new Set<string>();

  /** A fresh tensor name based on `base`. */
  name(base: string): string {
    let name = base.replace(/[^A-Za-z0-9_./-]/g, "_");
    for (let i = 1; this.#names.has(name); i++) name = `${base}_${i}`;
    this.#names.add(name);
    return name;
  }

  constant(base: string, dims: number[], values: Float32Array | number[]): string {
    const name = this.name(base);
    const data = values instanceof Float32Array ? values : Float32Array.from(values);
    this.initializers.push({
      name,
      dims,
      dataType: onnx.TensorProto.DataType.FLOAT,
      rawData: new Uint8Array(
        data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
      ),
    });
    return name;
  }

  constantInt64(base: string, values: number[]): string {
    const name = this.name(base);
    const data = BigInt64Array.from(values.map(BigInt));
    this.initializers.push({
      name,
      dims: [values.length],
      dataType: onnx.TensorProto.DataType.INT64,
      rawData: new Uint8Array(data.buffer),
    });
    return name;
  }

  /** Adds a node and returns its (single) output's name. */
  node(
    opType: string,
    inputs: string[],
    outputBase: string,
    attributes: Record<string, AttributeValue> = {},
    outputName?: string,
  ): string {
    const output = outputName ?? this.name(outputBase);
    if (outputName) this.#names.add(outputName);
    this.nodes.push({
      opType,
      name: this.name(`${outputBase}/${opType}`),
      input: inputs,
      output: [output],
      attribute: Object.entries(attributes).map(([name, value]) => attribute(name, value)),
    });
    return output;
  }
}

function attribute(name: string, value: AttributeValue): OnnxTypes.IAttributeProto {
  const { AttributeType } = onnx.AttributeProto;
  if (typeof value === "string") {
    return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
  }
  if (Array.isArray(value)) return { name, type: AttributeType.INTS, ints: value };
  if (!Number.isInteger(value)) {
    throw new Error(`Attribute ${name} must be an integer, got ${value}.`);
  }
  return { name, type: AttributeType.INT, i: value };
}

export function tensorValueInfo(name: string, dims: Dim[]): OnnxTypes.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: {
          dim: dims.map((dim) => (typeof dim === "number" ? { dimValue: dim } : { dimParam: dim })),
        },
      },
    },
  };
}
