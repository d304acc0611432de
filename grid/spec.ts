/**
 * What travels through a grid's queue: a run to do (`RunSpec`) and what it
 * wrote (`RunResult`), with stable ids and the files' round trip. No queue
 * client here, so the commands load BullMQ only when given --queue.
 */
import { Buffer } from "node:buffer";
import { join, relative } from "node:path";
import { writeFileAtomic } from "../util/files.ts";
import type { Metrics, TrainConfig } from "../train/run.ts";

export class QueueError extends Error {}

/** One training run: what the local command would do for it, and where it writes. */
export interface RunSpec {
  /** Stable across invocations of the same command: the job's id. */
  id: string;
  /** The coordinator's results folder: the run's files come back by paths relative to it. */
  root: string;
  /** For progress lines: "baseline seed 43". */
  title: string;
  config: TrainConfig;
  outDir: string;
  command: string;
  /** Export the trained model to this ONNX file (the ablation measures it). */
  onnxPath?: string;
}

/** A finished run: its metrics and every file it wrote, base64, by path relative to `root`. */
export interface RunResult {
  metrics: Metrics;
  files: Record<string, string>;
}

/** A stable job id for a run: the same command gives the same ids. */
export async function runId(grid: string, outDir: string, config: TrainConfig): Promise<string> {
  const text = JSON.stringify({ grid, outDir, config });
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)),
  );
  const hash = Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
  return `${grid}-${config.model}-seed${config.seed}-${hash}`;
}

/** The files at `paths` (folders walked), base64, by path relative to `root`. */
export async function collectFiles(
  root: string,
  paths: string[],
): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  const add = async (path: string) => {
    const info = await Deno.stat(path);
    if (info.isDirectory) {
      for await (const entry of Deno.readDir(path)) await add(join(path, entry.name));
      return;
    }
    const bytes = await Deno.readFile(path);
    files[relative(root, path)] = Buffer.from(bytes).toString("base64");
  };
  for (const path of paths) await add(path);
  return files;
}

/** Writes a run's returned files under `root` (each to a temporary name, then renamed). */
export async function writeFiles(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, base64] of Object.entries(files)) {
    await writeFileAtomic(join(root, path), new Uint8Array(Buffer.from(base64, "base64")));
  }
}
