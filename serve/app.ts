/**
 * The digit lab's server as a request handler: the page and its files, the
 * models' ONNX files for onnxruntime-web in the page, and a JSON API that
 * classifies images with ONNX Runtime on the server. Every failure is a
 * JSON `{"error": "one sentence"}` with its status; nothing a client sends
 * stops the server.
 */
import { join } from "node:path";
import { loadTestSet, type MnistSplit } from "../data/mnist.ts";
import { decodeGray, ImageError, PIXEL_LIMIT } from "../infer/images.ts";
import { PreprocessError, toMnist } from "../infer/preprocess.ts";
import { argmaxRows } from "../infer/model_io.ts";
import { bundleLab } from "./bundle.ts";
import { errorResponse, HttpError, json, readBody } from "./http.ts";
import { loadServedModels, type ServedModel } from "./models.ts";
import { serveStatic, staticTable } from "./static.ts";

export const DEFAULT_MAX_BODY = 5_000_000;

export interface LabOptions {
  modelsDir: string;
  /** Folder of robustness.json and NAME_test.json (default: ../metrics beside the models). */
  metricsDir?: string;
  /** Largest request body in bytes (default 5 MB). */
  maxBody?: number;
  /** Largest image in pixels the decoder takes (default sharp's 268 megapixels). */
  maxPixels?: number;
  /** ONNX Runtime threads per model (default: all cores). */
  threads?: number;
}

export interface Lab {
  handler(request: Request): Promise<Response>;
  models: ServedModel[];
  close(): Promise<void>;
}

type Route = (request: Request, url: URL) => Promise<Response> | Response;

/**
 * The model `/api/classify` uses when none is named: the robust one when it
 * is served (the most robust, and the most accurate over seeds), else the
 * one with the best recorded test accuracy, else the first by name.
 */
export function recommendedModel<T extends { name: string; testAccuracy?: number }>(
  models: T[],
): T {
  return models.find((model) => model.name === "robust") ??
    models.reduce((best, model) =>
      (model.testAccuracy ?? -1) > (best.testAccuracy ?? -1) ? model : best
    );
}

export async function createLab(options: LabOptions): Promise<Lab> {
  const metricsDir = options.metricsDir ?? join(options.modelsDir, "..", "metrics");
  const maxBody = options.maxBody ?? DEFAULT_MAX_BODY;
  const maxPixels = options.maxPixels ?? PIXEL_LIMIT;
  const models = await loadServedModels(options.modelsDir, metricsDir, {
    threads: options.threads,
  });
  const byName = new Map(models.map((model) => [model.name, model]));
  let bundle: Promise<Uint8Array<ArrayBuffer>> | undefined;
  const files = staticTable(models, () => {
    bundle ??= bundleLab().catch((error) => {
      bundle = undefined;
      throw error;
    });
    return bundle;
  });
  let testSet: Promise<MnistSplit> | undefined;

  const recommended = recommendedModel(models);

  const modelNamed = (url: URL, fallback?: ServedModel): ServedModel => {
    const name = url.searchParams.get("model");
    const names = models.map((model) => model.name).join(", ");
    if (!name) {
      if (fallback) return fallback;
      throw new HttpError(400, `Name a model with ?model=NAME (one of ${names}).`);
    }
    const model = byName.get(name);
    if (!model) throw new HttpError(404, `There is no model "${name}"; the models are ${names}.`);
    return model;
  };

  const classify: Route = async (request, url) => {
    // Without ?model=, the recommended model answers and names itself.
    const model = modelNamed(url, recommended);
    const body = await readBody(request, maxBody);
    if (body.length === 0) {
      throw new HttpError(400, "The request body is empty: send an image (PNG, JPEG, WebP, ...).");
    }
    let pixels: Float32Array;
    try {
      pixels = toMnist(await decodeGray(body, maxPixels));
    } catch (error) {
      if (error instanceof ImageError) {
        const status = /exceeds the decoder's limit/.test(error.message) ? 413 : 400;
        throw new HttpError(status, `The body ${error.message}.`);
      }
      if (error instanceof PreprocessError) throw new HttpError(422, `The image ${error.message}.`);
      throw error;
    }
    const probabilities = await model.batcher.classify(pixels);
    return json({
      model: model.name,
      prediction: argmaxRows(probabilities)[0],
      probabilities: Array.from(probabilities),
      preprocessed: Array.from(pixels),
    });
  };

  const describe = (model: ServedModel) => ({
    name: model.name,
    file: `/models/${encodeURIComponent(model.name)}.onnx`,
    input: model.inputName,
    layout: model.layout,
    test_accuracy: model.testAccuracy ?? null,
    default: model === recommended,
    metadata: model.metadata,
  });

  const mistakes: Route = async (_request, url) => {
    const model = modelNamed(url);
    testSet ??= loadTestSet();
    const test = await testSet;
    return json({
      model: model.name,
      mistakes: model.mistakes.filter((m) => m.index >= 0 && m.index < test.count).map((m) => ({
        ...m,
        pixels: Array.from(test.images.subarray(m.index * 784, (m.index + 1) * 784)),
      })),
    });
  };

  const robustness: Route = async () => {
    try {
      return new Response(await Deno.readFile(join(metricsDir, "robustness.json")), {
        headers: { "content-type": "application/json; charset=utf-8" },
      });
    } catch {
      throw new HttpError(
        404,
        `There is no ${metricsDir}/robustness.json: run deno task eval:robustness first.`,
      );
    }
  };

  const api: Record<string, { method: string; route: Route }> = {
    "/healthz": {
      method: "GET",
      route: () => json({ status: "ok", models: models.map((model) => model.name) }),
    },
    "/api/models": { method: "GET", route: () => json({ models: models.map(describe) }) },
    "/api/classify": { method: "POST", route: classify },
    "/api/mistakes": { method: "GET", route: mistakes },
    "/api/robustness": { method: "GET", route: robustness },
  };

  const handle = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    const endpoint = api[url.pathname];
    const file = files.get(url.pathname);
    const allowed = endpoint
      ? endpoint.method === "GET" ? ["GET", "HEAD"] : [endpoint.method]
      : file
      ? ["GET", "HEAD"]
      : undefined;
    if (!allowed) throw new HttpError(404, `Nothing is served at ${url.pathname}.`);
    if (!allowed.includes(request.method)) {
      await request.body?.cancel().catch(() => {});
      throw new HttpError(
        405,
        `${url.pathname} takes ${allowed.join(" or ")}, not ${request.method}.`,
        { allow: allowed.join(", ") },
      );
    }
    if (endpoint) {
      const response = await endpoint.route(request, url);
      return request.method === "HEAD" ? new Response(null, response) : response;
    }
    return serveStatic(file!, request.method);
  };

  return {
    models,
    async handler(request) {
      try {
        return await handle(request);
      } catch (error) {
        if (error instanceof HttpError) return errorResponse(error);
        console.error(`error: ${request.method} ${request.url}: ${(error as Error).message}`);
        return errorResponse(new HttpError(500, "The server failed on this request."));
      }
    },
    async close() {
      for (const model of models) await model.classifier.release();
    },
  };
}
