/**
 * TensorFlow.js, for the training side only (models, kernels, training,
 * export's verification). Kept apart from deps.ts so that inference and
 * robustness evaluation never load it; tests/architecture_test.ts checks it.
 */
export * as tf from "@tensorflow/tfjs";
export { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
export type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";

/** `file://` URL of the folder holding the tfjs wasm binaries. */
export const TFJS_WASM_DIST_URL = new URL(
  "./",
  import.meta.resolve("@tensorflow/tfjs-backend-wasm"),
).href;
