/**
 * deno task worker --queue redis://HOST:PORT [--engine E] [--lock SECONDS]
 *
 * Takes training runs from the grid's queue (enqueued by `train --seeds N
 * --queue URL` or `ablate --queue URL`), one at a time, until stopped
 * (Ctrl-C or SIGTERM: it stops after the run in hand; a killed worker's run
 * goes back to the queue when its lock lapses).
 */
import { loadMnist } from "../data/mnist.ts";
import { engineFlag, sayFallback, useEngine } from "../kernels/engine.ts";
import { intFlag, parseFlags, runMain, UsageError } from "../util/cli.ts";
import { QueueError, serveRuns } from "./queue.ts";
import { runSpec } from "./run.ts";

const HELP = `Run training jobs from a grid's queue.

Usage: deno task worker --queue redis://HOST:PORT [flags]

Flags:
  --queue URL      the Redis server the coordinator enqueued to
  --engine E       native, wasm or auto (default auto)
  --lock SECONDS   how long a run's lock lasts without renewal: how soon the run of a
                   killed worker goes to another (default 600; training with --workers 1
                   holds this thread for an epoch at a time, so keep it above an epoch)
  --help           show this help`;

export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, {
    queue: { type: "string" },
    engine: { type: "string" },
    lock: { type: "string" },
    help: { type: "boolean", default: false },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  if (!values.queue) throw new UsageError("--queue is needed: the redis://HOST:PORT to work for.");
  const lockSeconds = intFlag(values.lock, "lock", 600, 2, 24 * 3600);
  const engine = await useEngine(engineFlag(values.engine));
  const data = await loadMnist();
  const stop = new AbortController();
  Deno.addSignalListener("SIGINT", () => stop.abort());
  Deno.addSignalListener("SIGTERM", () => stop.abort());
  try {
    await serveRuns(
      values.queue,
      async (spec) => {
        sayFallback(engine);
        return await runSpec(data, spec);
      },
      stop.signal,
      { lockSeconds },
    );
  } catch (error) {
    if (error instanceof QueueError) throw new UsageError(error.message);
    throw error;
  }
}

if (import.meta.main) await runMain(() => main(Deno.args));
