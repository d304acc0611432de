/**
 * Grids over a real queue: Debian's redis-server on a free loopback port,
 * `deno task worker` processes, and the coordinators `train --seeds N
 * --queue` and `ablate --queue`, against the same commands run locally.
 * Skipped, saying why, where redis-server is not installed (CI installs it).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { GridClient } from "../grid/queue.ts";
import { runId, type RunSpec } from "../grid/spec.ts";
import { runSpec } from "../grid/run.ts";
import { loadMnist } from "../data/mnist.ts";
import { useEngine } from "../kernels/engine.ts";
import { RECIPES } from "../train/recipes.ts";
import { defaultConfig } from "../train/run.ts";
import { tempDir } from "./temp_dir.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const REDIS = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].find((p) => existsSync(p));
if (!REDIS) console.warn("skipping the grid tests: no redis-server (apt-get install redis-server)");

const QUICK = ["--epochs", "1", "--limit", "512", "--workers", "1"];
const SEEDS = ["--model", "baseline", "--seeds", "2", ...QUICK];
const ABLATION = ["--variants", "baseline,baseline_augment", "--seeds", "2", ...QUICK];

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function startRedis(): Promise<{ url: string } & AsyncDisposable> {
  const port = freePort();
  const server = new Deno.Command(REDIS!, {
    args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `redis://127.0.0.1:${port}`;
  for (let tries = 0; tries < 100; tries++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    url,
    async [Symbol.asyncDispose]() {
      server.kill("SIGKILL");
      await server.status;
    },
  };
}

/**
 * A `deno task worker` process whose output lines are collected. Its lock
 * outlasts any run here, even on a loaded machine (a worker whose lock
 * expires mid-run sees its run taken over), except where a test wants a
 * killed worker's run released quickly (a worker looks for released runs
 * every half of its own lock).
 */
function startWorker(url: string, lockSeconds = 60) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "grid/worker_main.ts", "--queue", url, "--lock", String(lockSeconds)],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const lines: string[] = [];
  (async () => {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let rest = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += value;
      const parts = rest.split("\n");
      rest = parts.pop()!;
      lines.push(...parts);
    }
  })();
  child.stderr.cancel();
  return {
    lines,
    async until(pattern: RegExp, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (!lines.some((line) => pattern.test(line))) {
        if (Date.now() > deadline) throw new Error(`worker never printed ${pattern}: ${lines}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async stop(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
      await child.status;
    },
  };
}

async function run(script: string, args: string[]) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  return {
    code,
    stdout: new TextDecoder().decode(stdout),
    stderr: new TextDecoder().decode(stderr).trim(),
  };
}

/** The 2-seed baseline grid into `out`, locally or over the queue at `url`. */
function seeds(out: string, url?: string) {
  return run("train/main.ts", [...SEEDS, "--out", out, ...(url ? ["--queue", url] : [])]);
}

/** A results file less what differs between any two runs: dates, timings, commands, folders. */
function comparable(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(comparable);
  if (value === null || typeof value !== "object") return value;
  const skip = [
    "date",
    "command",
    "train_seconds",
    "wall_seconds",
    "seconds",
    "images_per_s",
    "dir",
  ];
  return Object.fromEntries(
    Object.entries(value).filter(([key]) => !skip.includes(key)).map((
      [key, v],
    ) => [key, comparable(v)]),
  );
}

const readJson = async (path: string) => JSON.parse(await Deno.readTextFile(path));

Deno.test({
  name:
    "seeds over the queue on two workers equal the local seeds, and a restarted coordinator reruns nothing",
  ignore: !REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using redis = await startRedis();
    await using out = await tempDir("grid-seeds-");
    const workers = [startWorker(redis.url), startWorker(redis.url)];
    try {
      const local = await seeds(join(out.path, "local"));
      assert.equal(local.code, 0, local.stderr);
      const queued = await seeds(join(out.path, "queued"), redis.url);
      assert.equal(queued.code, 0, queued.stderr);
      assert.match(queued.stdout, /runs: 0 queued, 0 running, 2 done, 0 failed/);
      const summary = (dir: string) =>
        readJson(join(out.path, dir, "metrics", "baseline_seeds.json"));
      assert.deepEqual(comparable(await summary("queued")), comparable(await summary("local")));
      const weights = (dir: string) =>
        Deno.readFile(join(out.path, dir, "seeds", "seed-43", "models", "baseline", "weights.bin"));
      assert.deepEqual(await weights("queued"), await weights("local"));
      // Both workers took a run.
      for (const worker of workers) await worker.until(/^done baseline seed 4[23]/);

      const ran = workers.map((w) => w.lines.filter((l) => l.startsWith("running")).length);
      const again = await seeds(join(out.path, "queued"), redis.url);
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(
        workers.map((w) => w.lines.filter((l) => l.startsWith("running")).length),
        ran,
        "the restarted coordinator got the finished runs back without training them again",
      );
    } finally {
      for (const worker of workers) await worker.stop();
    }
  },
});

Deno.test({
  name: "an ablation grid (2 variants x 2 seeds) over the queue writes the local ablation.json",
  ignore: !REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using redis = await startRedis();
    await using out = await tempDir("grid-ablation-");
    const workers = [startWorker(redis.url), startWorker(redis.url)];
    try {
      const flags = [...ABLATION, "--eval-images", "100"];
      const local = await run("ablation/main.ts", [...flags, "--out", join(out.path, "local")]);
      assert.equal(local.code, 0, local.stderr);
      const queued = await run("ablation/main.ts", [
        ...flags,
        "--out",
        join(out.path, "queued"),
        "--queue",
        redis.url,
      ]);
      assert.equal(queued.code, 0, queued.stderr);
      const ablation = (dir: string) => readJson(join(out.path, dir, "metrics", "ablation.json"));
      assert.deepEqual(comparable(await ablation("queued")), comparable(await ablation("local")));
    } finally {
      for (const worker of workers) await worker.stop();
    }
  },
});

Deno.test({
  name: "a worker killed mid-run: its run goes to another worker and the grid completes the same",
  ignore: !REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using redis = await startRedis();
    await using out = await tempDir("grid-kill-");
    const local = await seeds(join(out.path, "local"));
    assert.equal(local.code, 0, local.stderr);
    const doomed = startWorker(redis.url, 3);
    const coordinator = seeds(join(out.path, "queued"), redis.url);
    await doomed.until(/^running baseline seed/);
    await doomed.stop("SIGKILL");
    const rescuer = startWorker(redis.url, 20);
    try {
      const queued = await coordinator;
      assert.equal(queued.code, 0, queued.stderr);
      const summary = (dir: string) =>
        readJson(join(out.path, dir, "metrics", "baseline_seeds.json"));
      assert.deepEqual(comparable(await summary("queued")), comparable(await summary("local")));
      assert.equal(rescuer.lines.filter((l) => l.startsWith("done")).length, 2, "both runs");
    } finally {
      await rescuer.stop();
    }
  },
});

Deno.test({
  name:
    "a run that fails on a worker is reported once in one sentence; an unreachable queue is refused",
  ignore: !REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using redis = await startRedis();
    await using out = await tempDir("grid-fail-");
    const worker = startWorker(redis.url);
    const client = await GridClient.open(redis.url);
    try {
      // Holding out more images than there are fails in the worker's own data split.
      const config = {
        ...defaultConfig("baseline", RECIPES.baseline, 42),
        epochs: 1,
        limit: 512,
        workers: 1,
        validation: 70000,
      };
      const spec: RunSpec = {
        id: await runId("test", out.path, config),
        root: out.path,
        title: "baseline seed 42",
        config,
        outDir: out.path,
        command: "test",
      };
      await client.submit([spec]);
      await assert.rejects(client.result(spec), {
        message:
          "baseline seed 42 failed on a worker: The validation set must hold 1 to 59999 images, got 70000.",
      });
      await new Promise((resolve) => setTimeout(resolve, 2000));
      assert.equal(worker.lines.filter((l) => l.startsWith("running")).length, 1, "not retried");
      assert.equal(worker.lines.filter((l) => l.startsWith("failed")).length, 1);
    } finally {
      await client.close();
      await worker.stop();
    }
    const refused = await run("train/main.ts", [...SEEDS, "--queue", "redis://127.0.0.1:1"]);
    assert.equal(refused.code, 2);
    assert.equal(
      refused.stderr,
      "error: The queue at redis://127.0.0.1:1 cannot be reached (connection refused).",
    );
    const bad = await run("grid/worker_main.ts", []);
    assert.equal(bad.stderr, "error: --queue is needed: the redis://HOST:PORT to work for.");
  },
});

Deno.test("a worker without the coordinator's folder trains in scratch and returns the same files", async () => {
  await using out = await tempDir("grid-scratch-");
  const data = await loadMnist();
  await useEngine("auto");
  const config = {
    ...defaultConfig("baseline", RECIPES.baseline, 7),
    epochs: 1,
    limit: 256,
    workers: 1,
  };
  const spec = (root: string): RunSpec => ({
    id: "scratch",
    root,
    title: "baseline seed 7",
    config,
    outDir: join(root, "seeds", "seed-7"),
    command: "test",
  });
  const inPlace = await runSpec(data, spec(out.path));
  const elsewhere = "/nonexistent/coordinator/results";
  const scratch = await runSpec(data, spec(elsewhere));
  assert.ok(!existsSync("/nonexistent"), "nothing written at the coordinator's path");
  assert.deepEqual(Object.keys(scratch.files).sort(), Object.keys(inPlace.files).sort());
  assert.ok(Object.keys(scratch.files).includes("seeds/seed-7/models/baseline/weights.bin"));
  assert.equal(
    scratch.files["seeds/seed-7/models/baseline/weights.bin"],
    inPlace.files["seeds/seed-7/models/baseline/weights.bin"],
  );
  assert.equal(scratch.metrics.test_accuracy, inPlace.metrics.test_accuracy);
});
