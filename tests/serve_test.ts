/**
 * The lab's server against a real listener on a free port: every endpoint,
 * every bad input, and a burst of mixed requests.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { sharp } from "../deps.ts";
import { loadTestSet } from "../data/mnist.ts";
import { OnnxClassifier } from "../infer/classifier.ts";
import { decodeGray } from "../infer/images.ts";
import { toMnist } from "../infer/preprocess.ts";
import { createLab, type LabOptions, recommendedModel } from "../serve/app.ts";
import { loadUspsTrain } from "../data/usps.ts";
import { classifyFiles } from "../infer/run.ts";
import { uspsDigits, writeDigitFiles } from "../robustness/transfer.ts";
import { tempDir } from "./temp_dir.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const MODELS_DIR = join(ROOT, "results", "models");
/** The app serves every ONNX model of the folder, sorted by name. */
const MODEL_NAMES = [...Deno.readDirSync(MODELS_DIR)]
  .filter((entry) => entry.name.endsWith(".onnx"))
  .map((entry) => entry.name.replace(/\.onnx$/, ""))
  .sort();
const test = await loadTestSet();

/** MNIST test digit `index` as a 28×28 PNG, dark ink on white as a person would send it. */
async function digitPng(index: number): Promise<Uint8Array<ArrayBuffer>> {
  const pixels = test.images.slice(index * 784, (index + 1) * 784).map((v) => 255 - v);
  const png = await sharp(pixels, { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer();
  return new Uint8Array(png);
}

async function startLab(options: Partial<LabOptions> = {}) {
  const lab = await createLab({ modelsDir: MODELS_DIR, threads: 1, ...options });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, lab.handler);
  const base = `http://127.0.0.1:${server.addr.port}`;
  return {
    lab,
    base,
    port: server.addr.port,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      await lab.close();
    },
  };
}

async function call(url: string, init?: RequestInit) {
  const response = await fetch(url, init);
  const type = response.headers.get("content-type") ?? "";
  const body = type.startsWith("application/json")
    ? await response.json()
    : new Uint8Array(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, body };
}

/** A PNG whose header claims width × height pixels (its image data is a stub). */
function pngClaiming(width: number, height: number): Uint8Array<ArrayBuffer> {
  const table = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (bytes: Uint8Array) => {
    let c = 0xffffffff;
    for (const byte of bytes) c = table[(c ^ byte) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Uint8Array) => {
    const out = new Uint8Array(12 + data.length);
    const view = new DataView(out.buffer);
    view.setUint32(0, data.length);
    out.set(new TextEncoder().encode(type), 4);
    out.set(data, 8);
    view.setUint32(8 + data.length, crc(out.subarray(4, 8 + data.length)));
    return out;
  };
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header.set([8, 0, 0, 0, 0], 8); // 8-bit gray
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", new Uint8Array([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])),
    chunk("IEND", new Uint8Array(0)),
  ];
  const png = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((offset, part) => (png.set(part, offset), offset + part.length), 0);
  return png;
}

/** One raw HTTP/1.1 request line, exactly as written (fetch would normalise the path). */
async function rawGet(port: number, path: string): Promise<string> {
  const connection = await Deno.connect({ hostname: "127.0.0.1", port });
  await connection.write(
    new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
  );
  const text = new TextDecoder().decode(await new Response(connection.readable).arrayBuffer());
  return text;
}

Deno.test("health, models and the files the page needs", async () => {
  await using app = await startLab();
  const health = await call(`${app.base}/healthz`);
  assert.deepEqual([health.status, health.body], [200, {
    status: "ok",
    models: MODEL_NAMES,
  }]);
  assert.ok(MODEL_NAMES.includes("baseline") && MODEL_NAMES.includes("improved"));
  const { status, body } = await call(`${app.base}/api/models`);
  assert.equal(status, 200);
  assert.deepEqual(body.models.map((m: { name: string }) => m.name), MODEL_NAMES);
  for (const model of body.models) {
    const metrics = JSON.parse(
      await Deno.readTextFile(join(ROOT, "results", "metrics", `${model.name}_test.json`)),
    );
    assert.equal(model.test_accuracy, metrics.accuracy);
    assert.equal(model.layout, "nhwc");
    assert.equal(model.metadata.model_name, model.name);
    assert.deepEqual(model.metadata.class_labels, [..."0123456789"]);
    const onnx = await call(`${app.base}${model.file}`);
    assert.equal(onnx.status, 200);
    assert.deepEqual(onnx.body, await Deno.readFile(join(MODELS_DIR, `${model.name}.onnx`)));
  }
  const page = await fetch(`${app.base}/`);
  assert.match(await page.text(), /<title>Digit lab<\/title>/);
  for (const path of ["/lab.css", "/vendor/ort/ort.wasm.min.js"]) {
    const response = await fetch(`${app.base}${path}`);
    assert.equal(response.status, 200, path);
    await response.body?.cancel();
  }
  const wasm = await fetch(`${app.base}/vendor/ort/ort-wasm-simd-threaded.wasm`, {
    method: "HEAD",
  });
  assert.equal(wasm.headers.get("content-type"), "application/wasm");
});

Deno.test("classify gives the committed models' answer, as infer's pipeline computes it", async () => {
  await using app = await startLab();
  const reference = await OnnxClassifier.load(join(MODELS_DIR, "improved.onnx"), { threads: 1 });
  try {
    let correct = 0;
    for (let index = 0; index < 20; index++) {
      const png = await digitPng(index);
      const { status, body } = await call(`${app.base}/api/classify?model=improved`, {
        method: "POST",
        body: png,
        headers: { "content-type": "image/png" },
      });
      assert.equal(status, 200);
      assert.equal(body.model, "improved");
      assert.equal(body.probabilities.length, 10);
      assert.equal(body.preprocessed.length, 784);
      const pixels = toMnist(await decodeGray(png));
      const expected = await reference.predict(pixels);
      body.probabilities.forEach((p: number, i: number) =>
        assert.ok(Math.abs(p - expected[i]) < 1e-6)
      );
      body.preprocessed.forEach((p: number, i: number) =>
        assert.ok(Math.abs(p - pixels[i]) < 1e-7)
      );
      assert.equal(body.prediction, body.probabilities.indexOf(Math.max(...body.probabilities)));
      if (body.prediction === test.labels[index]) correct++;
    }
    assert.ok(correct >= 19, `${correct} of 20 test digits right`);
  } finally {
    await reference.release();
  }
});

Deno.test("a real USPS digit's file gets the same answer from the API as from infer", async () => {
  await using app = await startLab();
  await using temp = await tempDir();
  const usps = uspsDigits(await loadUspsTrain());
  // USPS digits fill their 16x16 frame: the kind the deploy path used to call blank.
  const files = await writeDigitFiles(
    { ...usps, count: 12, labels: Array.from(usps.labels).slice(0, 12) },
    temp.path,
  );
  for (const model of MODEL_NAMES) {
    const classifier = await OnnxClassifier.load(join(MODELS_DIR, `${model}.onnx`), { threads: 1 });
    try {
      const inferred = await classifyFiles(classifier, files);
      for (const [i, file] of files.entries()) {
        const expected = inferred[i];
        assert.ok("prediction" in expected, `${file} refused by infer`);
        const { status, body } = await call(`${app.base}/api/classify?model=${model}`, {
          method: "POST",
          body: await Deno.readFile(file),
        });
        assert.equal(status, 200, JSON.stringify(body));
        assert.equal(body.prediction, expected.prediction, `${model}, ${file}`);
        assert.ok(Math.abs(body.probabilities[expected.prediction] - expected.confidence) < 1e-6);
      }
    } finally {
      await classifier.release();
    }
  }
});

Deno.test("without ?model= the recommended model answers and says so; /api/models marks it", async () => {
  await using app = await startLab();
  const png = await digitPng(3);
  const plain = await call(`${app.base}/api/classify`, { method: "POST", body: png });
  assert.equal(plain.status, 200, JSON.stringify(plain.body));
  assert.equal(plain.body.model, "robust");
  const named = await call(`${app.base}/api/classify?model=robust`, { method: "POST", body: png });
  assert.deepEqual(plain.body.probabilities, named.body.probabilities);
  const { body } = await call(`${app.base}/api/models`);
  const defaults = body.models.filter((m: { default: boolean }) => m.default);
  assert.deepEqual(defaults.map((m: { name: string }) => m.name), ["robust"]);
  // Without a robust model: the best recorded test accuracy, whatever the order.
  const pick = (models: Array<{ name: string; testAccuracy?: number }>) =>
    recommendedModel(models).name;
  assert.equal(pick([{ name: "a", testAccuracy: 0.98 }, { name: "b", testAccuracy: 0.99 }]), "b");
  assert.equal(
    pick([{ name: "b", testAccuracy: 0.99 }, { name: "robust", testAccuracy: 0.9 }]),
    "robust",
  );
  assert.equal(pick([{ name: "x" }, { name: "y", testAccuracy: 0.5 }]), "y");
});

Deno.test("bad requests get one JSON sentence with their status", async () => {
  await using app = await startLab({ maxBody: 20_000 });
  const post = (query: string, body?: BodyInit) =>
    call(`${app.base}/api/classify${query}`, { method: "POST", body });
  const png = await digitPng(0);
  const cases: Array<
    [string, Promise<{ status: number; body: { error: string } }>, number, RegExp]
  > = [
    ["empty body", post("?model=baseline"), 400, /body is empty/],
    ["not an image", post("?model=baseline", "hello, not a picture"), 400, /not an image/],
    [
      "truncated PNG",
      post("?model=baseline", png.slice(0, 60)),
      400,
      /truncated or corrupt|cannot be decoded/,
    ],
    [
      "unknown model",
      post("?model=lenet", png),
      404,
      /no model "lenet".*baseline, .*improved/,
    ],
    [
      "over the body limit",
      post("?model=baseline", new Uint8Array(30_000)),
      413,
      /larger than the limit of 20000 bytes/,
    ],
    [
      "over the pixel limit",
      post("?model=baseline", pngClaiming(20_000, 20_000)),
      413,
      /exceeds the decoder's limit of 268 megapixels/,
    ],
    [
      "blank image",
      post(
        "?model=baseline",
        new Uint8Array(
          await sharp({ create: { width: 40, height: 40, channels: 3, background: "#fff" } }).png()
            .toBuffer(),
        ),
      ),
      422,
      /no ink/,
    ],
    ["wrong method", call(`${app.base}/api/classify?model=baseline`), 405, /takes POST, not GET/],
    [
      "wrong method on the API",
      call(`${app.base}/api/models`, { method: "DELETE" }),
      405,
      /takes GET or HEAD, not DELETE/,
    ],
    ["unknown path", call(`${app.base}/api/nothing`), 404, /Nothing is served at \/api\/nothing/],
  ];
  for (const [what, request, status, message] of cases) {
    const response = await request;
    assert.equal(response.status, status, `${what}: ${JSON.stringify(response.body)}`);
    assert.match(response.body.error, message, what);
    assert.equal(response.body.error.split("\n").length, 1);
  }
  const allow = await call(`${app.base}/api/classify`);
  assert.equal(allow.headers.get("allow"), "POST");
  // A body that streams past the limit without announcing its length.
  let chunks = 0;
  const stream = new ReadableStream({
    pull(controller) {
      if (chunks++ < 10) controller.enqueue(new Uint8Array(8_000));
      else controller.close();
    },
  });
  const streamed = await post("?model=baseline", stream);
  assert.equal(streamed.status, 413);
  // The server is still there.
  assert.equal((await call(`${app.base}/healthz`)).status, 200);
});

Deno.test("static files never leave the app's folders", async () => {
  await using app = await startLab();
  for (
    const path of [
      "/../deno.json",
      "/%2e%2e/deno.json",
      "/%2E%2E%2Fdeno.json",
      "/vendor/ort/../../deno.json",
      "/vendor/ort/..%2f..%2fdeno.json",
      "/lab.css/..%2f..%2fdeno.json",
      "/models/..%2fmetrics%2fbaseline_test.json",
      "/deps.ts",
      "/lab/main.ts",
    ]
  ) {
    const answer = await rawGet(app.port, path);
    assert.match(answer, /^HTTP\/1\.1 404/, `${path}: ${answer.split("\r\n")[0]}`);
    assert.doesNotMatch(answer, /"imports"|onnxruntime|@tensorflow/, path);
  }
});

Deno.test("500 mixed concurrent requests: each answered, none lost, the server alive after", async () => {
  await using app = await startLab();
  const pngs = await Promise.all(Array.from({ length: 10 }, (_, i) => digitPng(i)));
  // Each answer alone first: batching must not change any.
  const alone = new Map<string, number[]>();
  for (const model of ["baseline", "improved"]) {
    for (const [i, png] of pngs.entries()) {
      const { body } = await call(`${app.base}/api/classify?model=${model}`, {
        method: "POST",
        body: png,
      });
      alone.set(`${model}/${i}`, body.probabilities);
    }
  }
  const callsBefore = app.lab.models.map((model) => model.batcher.batchSizes.length);
  const kinds = ["good", "good", "good", "not-image", "unknown-model", "health"] as const;
  const requests = Array.from({ length: 500 }, async (_, i) => {
    const kind = kinds[i % kinds.length];
    const model = i % 2 ? "baseline" : "improved";
    if (kind === "health") return [kind, (await call(`${app.base}/healthz`)).status] as const;
    const response = await call(
      `${app.base}/api/classify?model=${kind === "unknown-model" ? "nope" : model}`,
      { method: "POST", body: kind === "not-image" ? "garbage" : pngs[i % 10] },
    );
    if (kind === "good") {
      const expected = alone.get(`${model}/${i % 10}`)!;
      response.body.probabilities.forEach((p: number, c: number) =>
        assert.ok(Math.abs(p - expected[c]) < 1e-5, `request ${i}: ${p}, alone ${expected[c]}`)
      );
    }
    return [kind, response.status] as const;
  });
  const answers = await Promise.all(requests);
  const expected = { good: 200, "not-image": 400, "unknown-model": 404, health: 200 };
  assert.equal(answers.length, 500);
  for (const [kind, status] of answers) assert.equal(status, expected[kind], kind);
  const batches = app.lab.models.flatMap((model, m) =>
    model.batcher.batchSizes.slice(callsBefore[m])
  );
  assert.equal(batches.reduce((a, b) => a + b), answers.filter(([k]) => k === "good").length);
  assert.ok(Math.max(...batches) > 1, "concurrent requests were never batched");
  assert.equal((await call(`${app.base}/healthz`)).status, 200);
});

Deno.test("serve: a missing models folder or a bad flag is one sentence and a non-zero exit", async () => {
  const run = async (args: string[]) => {
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", "serve/main.ts", ...args],
      cwd: ROOT,
      env: { RUST_BACKTRACE: "0", NO_COLOR: "1" },
      stdout: "null",
      stderr: "piped",
    }).output();
    return { code, stderr: new TextDecoder().decode(stderr).trim() };
  };
  const missing = await run(["--models", "/nonexistent/models", "--port", "0"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^error: The models folder \/nonexistent\/models does not exist/);
  assert.equal(missing.stderr.split("\n").length, 1);
  const bogus = await run(["--bogus"]);
  assert.equal(bogus.code, 2);
  assert.match(bogus.stderr, /^error: Unknown option '--bogus'/);
  const port = await run(["--port", "70000"]);
  assert.match(port.stderr, /^error: --port must be from 0 to 65535, got 70000\.$/);
  const body = await run(["--max-body", "lots"]);
  assert.match(body.stderr, /^error: --max-body must be a number of megabytes/);
});
