/**
 * deno task bench:serve [--requests N] [--clients 1,8,32] [--model NAME] [--out DIR]
 *
 * The lab's API under load: a server started as its own process (as
 * `deno task serve` runs it), then N POST /api/classify requests with 28×28
 * PNGs of MNIST test digits at each number of concurrent clients. Prints
 * requests/s, p50 and p99 latency and errors, and the server's resident
 * memory before and after; writes DIR/metrics/serve_bench.json.
 */
import { join } from "node:path";
import { sharp, VERSIONS } from "../deps.ts";
import { loadTestSet } from "../data/mnist.ts";
import { commandLine, intFlag, parseFlags, runMain, UsageError } from "../util/cli.ts";
import { writeJsonAtomic } from "../util/files.ts";

const HELP = `Measure the lab's JSON API under concurrent load.

Usage: deno task bench:serve [flags]

Flags:
  --requests N     requests per level of concurrency, after warm-up (default 4000)
  --clients LIST   numbers of concurrent clients (default 1,8,32)
  --model NAME     the model to ask (default: the first served)
  --models DIR     the folder to serve (default results/models)
  --out DIR        results folder for metrics/serve_bench.json (default results)
  --help           show this help`;

interface Level {
  clients: number;
  requests: number;
  errors: number;
  requests_per_s: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  /** CPU time per request of the server process and of this (client) process. */
  server_cpu_ms_per_request?: number;
  client_cpu_ms_per_request?: number;
}

const round2 = (value: number) => Math.round(value * 100) / 100;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/** CPU seconds (user + system) a process has used so far (Linux). */
async function cpuSeconds(pid: number | "self"): Promise<number> {
  const fields = (await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Resident and peak resident memory of a process, in MiB (Linux). */
async function memoryOf(pid: number): Promise<{ rss_mib: number; peak_rss_mib: number }> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kib = (field: string) => Number(status.match(new RegExp(`${field}:\\s+(\\d+)`))?.[1] ?? 0);
  return {
    rss_mib: Math.round(kib("VmRSS") / 1024),
    peak_rss_mib: Math.round(kib("VmHWM") / 1024),
  };
}

async function startServer(modelsDir: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "serve/main.ts", "--port", "0", "--models", modelsDir],
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "piped",
    stderr: "inherit",
    env: { VIPS_WARNING: "0" },
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  let url: string | undefined;
  while (!url) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`The server did not start: ${seen.trim() || "no output"}`);
    seen += value;
    url = seen.match(/(http:\/\/\S+\/)/)?.[1];
  }
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })();
  return { child, url };
}

async function load(
  url: string,
  bodies: Uint8Array<ArrayBuffer>[],
  clients: number,
  requests: number,
): Promise<Level> {
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const client = async () => {
    while (true) {
      const i = next++;
      if (i >= requests) return;
      const started = performance.now();
      try {
        const response = await fetch(url, { method: "POST", body: bodies[i % bodies.length] });
        const body = await response.json();
        if (response.status !== 200 || typeof body.prediction !== "number") errors++;
        else if (body.probabilities.length !== 10) errors++;
      } catch {
        errors++;
      }
      latencies.push(performance.now() - started);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: clients }, client));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    clients,
    requests,
    errors,
    requests_per_s: Math.round(requests / seconds),
    p50_ms: round2(percentile(latencies, 0.5)),
    p99_ms: round2(percentile(latencies, 0.99)),
    max_ms: round2(latencies.at(-1)!),
  };
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, {
    requests: { type: "string" },
    clients: { type: "string", default: "1,8,32" },
    model: { type: "string" },
    models: { type: "string", default: "results/models" },
    out: { type: "string", default: "results" },
    help: { type: "boolean", default: false },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const requests = intFlag(values.requests, "requests", 4000, 1);
  const levels = values.clients.split(",").map((c) => intFlag(c.trim(), "clients", 1, 1, 1024));
  if (levels.length === 0) throw new UsageError("--clients needs at least one number.");

  const test = await loadTestSet();
  const count = 64;
  const bodies: Uint8Array<ArrayBuffer>[] = [];
  for (let i = 0; i < count; i++) {
    const pixels = test.images.slice(i * 784, (i + 1) * 784).map((v) => 255 - v);
    const png = await sharp(pixels, { raw: { width: 28, height: 28, channels: 1 } }).png()
      .toBuffer();
    bodies.push(new Uint8Array(png));
  }

  const { child, url } = await startServer(values.models);
  try {
    const models = (await (await fetch(`${url}api/models`)).json()).models as Array<
      { name: string }
    >;
    const model = values.model ?? models[0].name;
    if (!models.some((m) => m.name === model)) {
      throw new UsageError(`The server has no model "${model}".`);
    }
    const endpoint = `${url}api/classify?model=${encodeURIComponent(model)}`;
    const before = await memoryOf(child.pid);
    await load(endpoint, bodies, 8, 400); // warm-up
    const results: Level[] = [];
    console.log(`POST /api/classify?model=${model}, 28x28 PNGs, ${requests} requests per level`);
    console.log(
      "clients  requests/s  p50 ms  p99 ms  max ms  errors  CPU ms/request: server  client",
    );
    for (const clients of levels) {
      const [serverBefore, clientBefore] = [await cpuSeconds(child.pid), await cpuSeconds("self")];
      const level = await load(endpoint, bodies, clients, requests);
      level.server_cpu_ms_per_request = round2(
        (await cpuSeconds(child.pid) - serverBefore) * 1000 / requests,
      );
      level.client_cpu_ms_per_request = round2(
        (await cpuSeconds("self") - clientBefore) * 1000 / requests,
      );
      results.push(level);
      console.log(
        `${String(clients).padStart(7)}  ${String(level.requests_per_s).padStart(10)}  ${
          level.p50_ms.toFixed(2).padStart(6)
        }  ${level.p99_ms.toFixed(2).padStart(6)}  ${level.max_ms.toFixed(1).padStart(6)}  ${
          String(level.errors).padStart(6)
        }  ${String(level.server_cpu_ms_per_request).padStart(22)}  ${
          String(level.client_cpu_ms_per_request).padStart(6)
        }`,
      );
    }
    const after = await memoryOf(child.pid);
    console.log(
      `server memory: ${before.rss_mib} MiB before, ${after.rss_mib} MiB after (peak ${after.peak_rss_mib} MiB)`,
    );
    const path = join(values.out, "metrics", "serve_bench.json");
    await writeJsonAtomic(path, {
      model,
      image: "28x28 PNG of an MNIST test digit, dark ink on white",
      levels: results,
      server_memory_mib: { before: before.rss_mib, after: after.rss_mib, peak: after.peak_rss_mib },
      command: commandLine("deno task bench:serve", args),
      date: new Date().toISOString(),
      versions: { deno: Deno.version.deno, ...VERSIONS },
      machine: { cpus: navigator.hardwareConcurrency, os: Deno.build.os, arch: Deno.build.arch },
    });
    console.log(`wrote ${path}`);
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
}

if (import.meta.main) await runMain(() => main(Deno.args));
