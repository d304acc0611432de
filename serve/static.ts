/**
 * The lab's static files: a fixed table from URL path to file, built at
 * start. A request is answered only if its path is a key of the table, so
 * no path, encoded or not, can reach a file outside the app's own folders.
 */
import { extname } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { ORT_WEB_DIST_URL } from "../deps.ts";

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".wasm": "application/wasm",
  ".onnx": "application/octet-stream",
  ".png": "image/png",
};

export interface StaticFile {
  /** A file on disk, or bytes made at run time (the page's script bundle). */
  source: string | (() => Promise<Uint8Array<ArrayBuffer>>);
  contentType: string;
  /** Seconds a browser may keep it without asking again. */
  maxAge: number;
}

const LAB_DIR = new URL("../lab/", import.meta.url);

/** onnxruntime-web's wasm-only build: its loader, the Emscripten glue and the SIMD binary. */
export const ORT_WEB_FILES = [
  "ort.wasm.min.js",
  "ort-wasm-simd-threaded.mjs",
  "ort-wasm-simd-threaded.wasm",
];

export function staticTable(
  modelFiles: Array<{ name: string; file: string }>,
  bundle: () => Promise<Uint8Array<ArrayBuffer>>,
): Map<string, StaticFile> {
  const table = new Map<string, StaticFile>();
  const file = (path: string, maxAge = 0): StaticFile => ({
    source: path,
    contentType: CONTENT_TYPES[extname(path)] ?? "application/octet-stream",
    maxAge,
  });
  table.set("/", file(fromFileUrl(new URL("index.html", LAB_DIR))));
  table.set("/lab.css", file(fromFileUrl(new URL("lab.css", LAB_DIR))));
  table.set("/lab.js", { source: bundle, contentType: CONTENT_TYPES[".js"], maxAge: 0 });
  for (const name of ORT_WEB_FILES) {
    table.set(`/vendor/ort/${name}`, file(fromFileUrl(new URL(name, ORT_WEB_DIST_URL)), 86400));
  }
  for (const model of modelFiles) {
    table.set(`/models/${encodeURIComponent(model.name)}.onnx`, file(model.file));
  }
  return table;
}

export async function serveStatic(entry: StaticFile, method: string): Promise<Response> {
  const headers = {
    "content-type": entry.contentType,
    "cache-control": entry.maxAge > 0 ? `max-age=${entry.maxAge}` : "no-cache",
    "x-content-type-options": "nosniff",
  };
  if (typeof entry.source !== "string") {
    const bytes = await entry.source();
    return new Response(method === "HEAD" ? null : bytes, { headers });
  }
  const file = await Deno.open(entry.source, { read: true });
  const { size } = await file.stat();
  if (method === "HEAD") file.close();
  return new Response(method === "HEAD" ? null : file.readable, {
    headers: { ...headers, "content-length": String(size) },
  });
}
