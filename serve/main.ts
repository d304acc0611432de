/**
 * deno task serve [--port 8000] [--host 127.0.0.1] [--models results/models]
 *
 * The digit lab: a page to draw digits on and watch every model answer, and
 * a JSON API that classifies images with ONNX Runtime.
 */
import { intFlag, parseFlags, runMain, UsageError } from "../util/cli.ts";
import { createLab, DEFAULT_MAX_BODY } from "./app.ts";

const HELP = `Serve the digit lab: draw a digit, watch every model answer, bend it.

Usage: deno task serve [flags]

Flags:
  --port N          port to listen on (default 8000; 0 picks a free one)
  --host H          address to listen on (default 127.0.0.1: this machine only)
  --models DIR      folder of ONNX models to serve (default results/models)
  --metrics DIR     folder of robustness.json and NAME_test.json
                    (default: metrics/ beside the models folder)
  --max-body MB     largest request body accepted, in megabytes (default 5)
  --threads N       ONNX Runtime threads per model (default: every core; they do not
                    spin between calls, so request handling keeps its share)
  --help            show this help

API:
  GET  /api/models                 the models: name, layout, metadata, test accuracy, and
                                   which is the default
  POST /api/classify[?model=NAME]  an image body (PNG, JPEG, WebP, ...) ->
                                   {"model", "prediction", "probabilities", "preprocessed"};
                                   without ?model= the default (robust when served, else
                                   the best by test accuracy) answers
  GET  /healthz                    {"status": "ok", "models": [...]}`;

export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, {
    port: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    models: { type: "string", default: "results/models" },
    metrics: { type: "string" },
    "max-body": { type: "string" },
    threads: { type: "string" },
    help: { type: "boolean", default: false },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const port = intFlag(values.port, "port", 8000, 0, 65535);
  let maxBody = DEFAULT_MAX_BODY;
  if (values["max-body"] !== undefined) {
    const megabytes = Number(values["max-body"]);
    if (!(megabytes > 0 && megabytes <= 1000)) {
      throw new UsageError(
        `--max-body must be a number of megabytes above 0 and at most 1000, got "${
          values["max-body"]
        }".`,
      );
    }
    maxBody = Math.round(megabytes * 1e6);
  }
  const lab = await createLab({
    modelsDir: values.models,
    metricsDir: values.metrics,
    maxBody,
    threads: intFlag(values.threads, "threads", navigator.hardwareConcurrency, 1, 256),
  });
  const names = lab.models.map((model) => model.name).join(", ");
  try {
    Deno.serve({
      port,
      hostname: values.host,
      onListen: ({ hostname, port }) => {
        const shown = hostname.includes(":") ? `[${hostname}]` : hostname;
        console.log(`Digit lab at http://${shown}:${port}/ serving ${names}`);
      },
    }, lab.handler);
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      throw new UsageError(`Port ${port} on ${values.host} is in use: pass another --port.`);
    }
    throw new Error(`Cannot listen on ${values.host}:${port} (${(error as Error).message}).`);
  }
}

if (import.meta.main) await runMain(() => main(Deno.args));
