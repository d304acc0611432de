/**
 * Whatever escapes a training worker's handlers (a wasm abort, a bug)
 * reaches the run as one sentence instead of a stack trace on the terminal;
 * the run then stops. Imported first by the worker, so that this listener
 * comes before those that Node-compatible npm modules install.
 */
/// <reference lib="deno.worker" />
import type { WorkerReply } from "./worker_protocol.ts";

self.addEventListener("error", (event) => {
  event.preventDefault();
  event.stopImmediatePropagation();
  const message = event.message.replace(/^Uncaught (\w*Error: )?/, "");
  self.postMessage({ type: "error", message } satisfies WorkerReply);
});
