/**
 * Grids of training runs over a BullMQ queue on Redis: a coordinator
 * (`train --seeds N --queue URL`, `ablate --queue URL`) enqueues one job per
 * run and collects what each run wrote; `deno task worker --queue URL`, on
 * any machine with the project, runs exactly what the local command would
 * (train, and export where the grid needs the ONNX file) and returns the
 * run's files through the queue, so the coordinator writes the same results
 * a single machine does.
 *
 * Jobs are named by their run (grid, output folder, config): a coordinator
 * started again with the same command finds the runs already done. A worker
 * killed mid-run loses its lock and the run goes to another worker (resuming
 * from its checkpoint where the disk is shared); a run that fails for a
 * reason of its own fails once, with its one-sentence error.
 */
import { connect } from "node:net";
import { Job, Queue, QueueEvents, Worker } from "../deps_queue.ts";
import { QueueError, type RunResult, type RunSpec } from "./spec.ts";

export { QueueError };

/** The queue's name on the Redis server. */
export const GRID_QUEUE = "mnist-grid";

export interface QueueAddress {
  host: string;
  port: number;
  url: string;
}

/** redis://HOST:PORT (port 6379 by default); anything else is one sentence. */
export function parseQueueUrl(url: string): QueueAddress {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new QueueError(`--queue must be a redis://HOST:PORT address, got "${url}".`);
  }
  if (parsed.protocol !== "redis:" || !parsed.hostname) {
    throw new QueueError(`--queue must be a redis://HOST:PORT address, got "${url}".`);
  }
  return { host: parsed.hostname, port: Number(parsed.port || 6379), url };
}

/** Whether Redis answers PING at the address, within `timeoutMs`; one sentence if not. */
export function checkReachable(address: QueueAddress, timeoutMs = 3000): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      socket.destroy();
      reject(new QueueError(`The queue at ${address.url} cannot be reached (${why}).`));
    };
    const socket = connect({ host: address.host, port: address.port });
    const timer = setTimeout(() => fail(`no answer in ${timeoutMs / 1000} s`), timeoutMs);
    socket.once("error", (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      fail(error.code === "ECONNREFUSED" ? "connection refused" : error.message);
    });
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (data: Uint8Array) => {
      clearTimeout(timer);
      socket.destroy();
      const answer = new TextDecoder().decode(data);
      if (answer.startsWith("+PONG")) resolve();
      else {
        reject(
          new QueueError(
            `The queue at ${address.url} is not a Redis server that answers PING (${answer.trim()}).`,
          ),
        );
      }
    });
  });
}

function connection(address: QueueAddress) {
  return { host: address.host, port: address.port, maxRetriesPerRequest: null };
}

/** The coordinator's side: enqueue runs, follow them, collect their results. */
export class GridClient {
  readonly #queue: Queue;
  readonly #events: QueueEvents;
  readonly #jobs = new Map<string, Job>();
  readonly #started = performance.now();

  private constructor(readonly address: QueueAddress) {
    this.#queue = new Queue(GRID_QUEUE, { connection: connection(address) });
    this.#events = new QueueEvents(GRID_QUEUE, { connection: connection(address) });
  }

  static async open(url: string): Promise<GridClient> {
    const address = parseQueueUrl(url);
    await checkReachable(address);
    const client = new GridClient(address);
    await client.#events.waitUntilReady();
    return client;
  }

  /**
   * Enqueues the runs not yet in the queue; a run already done (the same
   * command started again) is kept, a failed one is tried again.
   */
  async submit(specs: RunSpec[]): Promise<void> {
    for (const spec of specs) {
      const job = await this.#queue.add(spec.title, spec, {
        jobId: spec.id,
        removeOnComplete: false,
        removeOnFail: false,
      });
      if ((await job.getState()) === "failed") await job.retry();
      this.#jobs.set(spec.id, job);
    }
  }

  /** The run's result once a worker has it; its one-sentence error if it failed. */
  async result(spec: RunSpec): Promise<RunResult> {
    const job = this.#jobs.get(spec.id) ?? await Job.fromId(this.#queue, spec.id);
    if (!job) throw new QueueError(`Run ${spec.title} was never queued.`);
    try {
      return await job.waitUntilFinished(this.#events) as RunResult;
    } catch (error) {
      throw new QueueError(`${spec.title} failed on a worker: ${(error as Error).message}`);
    }
  }

  /** "runs: 2 queued, 1 running, 3 done, 0 failed; ETA 1 min 20 s" for the submitted runs. */
  async progress(): Promise<string> {
    const counts = { queued: 0, running: 0, done: 0, failed: 0 };
    for (const job of this.#jobs.values()) {
      const state = await job.getState();
      if (state === "completed") counts.done++;
      else if (state === "failed") counts.failed++;
      else if (state === "active") counts.running++;
      else counts.queued++;
    }
    const left = counts.queued + counts.running;
    const elapsed = (performance.now() - this.#started) / 1000;
    const eta = counts.done > 0 && left > 0
      ? `; ETA ${formatSeconds((elapsed / counts.done) * left)}`
      : "";
    return `runs: ${counts.queued} queued, ${counts.running} running, ${counts.done} done, ` +
      `${counts.failed} failed${eta}`;
  }

  /** Calls `say` with the progress line every `everyMs` while `work` runs. */
  async following<T>(work: Promise<T>, say: (line: string) => void, everyMs = 5000): Promise<T> {
    let last = "";
    const tell = async () => {
      const line = await this.progress().catch(() => "");
      if (line && line !== last) say(line);
      last = line || last;
    };
    await tell();
    const timer = setInterval(tell, everyMs);
    try {
      return await work;
    } finally {
      clearInterval(timer);
      await tell();
    }
  }

  async close(): Promise<void> {
    await this.#events.close();
    await this.#queue.close();
  }
}

function formatSeconds(seconds: number): string {
  const minutes = Math.floor(seconds / 60);
  return minutes > 0 ? `${minutes} min ${Math.round(seconds % 60)} s` : `${Math.round(seconds)} s`;
}

export interface WorkerOptions {
  /** Seconds a job's lock lasts without renewal: how soon a killed worker's run moves on. */
  lockSeconds?: number;
  say?: (line: string) => void;
}

/**
 * Takes runs from the queue one at a time and runs each with `run` until
 * `signal` aborts. A run that throws fails once (no retries): its message is
 * what the coordinator reports.
 */
export async function serveRuns(
  url: string,
  run: (spec: RunSpec) => Promise<RunResult>,
  signal: AbortSignal,
  options: WorkerOptions = {},
): Promise<void> {
  const address = parseQueueUrl(url);
  await checkReachable(address);
  const say = options.say ?? console.log;
  const lockDuration = (options.lockSeconds ?? 600) * 1000;
  const worker = new Worker<RunSpec, RunResult>(
    GRID_QUEUE,
    async (job) => {
      say(`running ${job.data.title} (${job.id})`);
      const started = performance.now();
      const result = await run(job.data);
      say(`done ${job.data.title} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      return result;
    },
    {
      connection: connection(address),
      concurrency: 1,
      lockDuration,
      stalledInterval: Math.max(1000, lockDuration / 2),
      maxStalledCount: 10,
    },
  );
  worker.on("failed", (job, error) => say(`failed ${job?.data.title}: ${error.message}`));
  say(`worker ready on ${address.url}, queue ${GRID_QUEUE}`);
  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
  await worker.close();
}
