/**
 * The deployment side runs ONNX models only: inference and robustness
 * evaluation must not load TensorFlow.js, and only deps files name npm packages.
 */
import assert from "node:assert/strict";
import { bundleLab } from "../serve/bundle.ts";

const ROOT = new URL("..", import.meta.url);

async function moduleGraph(entry: string): Promise<string[]> {
  const { code, stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT.pathname,
    stdout: "piped",
    stderr: "null",
  }).output();
  assert.equal(code, 0, `deno info ${entry} failed`);
  const info = JSON.parse(new TextDecoder().decode(stdout));
  return info.modules.map((m: { specifier: string }) => m.specifier);
}

Deno.test("inference, robustness evaluation and the deploy face never load tfjs", async () => {
  for (
    const entry of [
      "infer/main.ts",
      "robustness/main.ts",
      "robustness/handwriting_main.ts",
      "deploy.ts",
    ]
  ) {
    const graph = await moduleGraph(entry);
    assert.ok(
      graph.some((m) => m.includes("onnxruntime-node")),
      `${entry} should use onnxruntime-node`,
    );
    const tfjs = graph.filter((m) => m.includes("tensorflow") || m.endsWith("deps_tfjs.ts"));
    assert.deepEqual(tfjs, [], `${entry} loads tfjs`);
  }
});

Deno.test("training never sees the robustness suite or USPS: they are tests, not training data", async () => {
  // The ablation trains and then evaluates each variant on the suite; training itself must not see it.
  for (const entry of ["train/main.ts", "train/worker.ts", "bench/bench.ts"]) {
    const graph = await moduleGraph(entry);
    assert.ok(
      graph.some((m) => m.endsWith("/transforms/appearance.ts")),
      `${entry}: graph incomplete`,
    );
    const suite = graph.filter((m) => /\/robustness\//.test(m));
    assert.deepEqual(suite, [], `${entry} loads the robustness suite`);
    assert.deepEqual(graph.filter((m) => m.endsWith("/data/usps.ts")), [], `${entry} loads USPS`);
  }
});

Deno.test("the report reads metrics files only: no tfjs, no training, no models", async () => {
  const graph = await moduleGraph("report/main.ts");
  // train/records.ts and train/seeds.ts are the shapes of metrics files, nothing more.
  const forbidden = graph.filter((m) =>
    m.includes("tensorflow") || m.endsWith("deps_tfjs.ts") ||
    (/\/(train|models|kernels|ablation)\//.test(m) &&
      !/\/(train\/records|train\/seeds|ablation\/results)\.ts$/.test(m))
  );
  assert.deepEqual(forbidden, [], "report/main.ts loads the training or deployment side");
});

Deno.test("only the deps files (deps.ts, deps_tfjs.ts, deps_browser.ts) import npm packages", async () => {
  const offenders: string[] = [];
  let scanned = 0;
  const walk = async (dir: URL) => {
    for await (const entry of Deno.readDir(dir)) {
      if (["node_modules", ".git", "scratch", "results"].includes(entry.name)) continue;
      const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
      if (entry.isDirectory) await walk(url);
      else if (entry.name.endsWith(".ts") && !entry.name.startsWith("deps")) {
        const source = await Deno.readTextFile(url);
        const statements =
          /^(?:import|export) (?:type )?(?:\* as [\w$]+|\*|\{[^}]*\}|[\w$]+(?:, \{[^}]*\})?) from "([^"]+)"/gm;
        for (const match of source.matchAll(statements)) {
          scanned++;
          if (!match[1].startsWith(".") && !match[1].startsWith("node:")) {
            offenders.push(`${url.pathname}: ${match[1]}`);
          }
        }
      }
    }
  };
  await walk(ROOT);
  assert.ok(scanned > 100, `only ${scanned} import statements found: the scan is broken`);
  assert.deepEqual(offenders, []);
});

Deno.test("the lab's server never loads tfjs; its page script bundles only our pure modules", async () => {
  const graph = await moduleGraph("serve/main.ts");
  const tfjs = graph.filter((m) => m.includes("tensorflow") || m.endsWith("deps_tfjs.ts"));
  assert.deepEqual(tfjs, [], "serve/main.ts loads tfjs");
  const browser = graph.filter((m) => m.includes("puppeteer") || m.endsWith("deps_browser.ts"));
  assert.deepEqual(browser, [], "serve/main.ts loads the browser driver");
  const bundle = new TextDecoder().decode(await bundleLab());
  // esbuild names each bundled module in a comment: only project files, none of npm.
  const modules = [...bundle.matchAll(/^\/\/ (\S+\.ts)$/gm)].map((m) => m[1]);
  for (const shared of ["infer/preprocess.ts", "infer/model_io.ts", "lab/bend.ts"]) {
    assert.ok(modules.includes(shared), `the page does not use ${shared}`);
  }
  assert.ok(modules.some((m) => m.startsWith("robustness/")), "the page does not use the suite");
  assert.deepEqual(modules.filter((m) => m.includes("node_modules") || m.startsWith("deps")), []);
  assert.doesNotMatch(bundle, /^import .* from ["']/m, "the bundle imports a package at run time");
});
