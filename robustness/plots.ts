/**
 * Robustness figures: accuracy against each sweep, the MNIST-C bar chart,
 * and a grid of one test digit under every family and level.
 */
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { sharp } from "../deps.ts";
import { writePlot } from "../report/plot.ts";
import { writeFileAtomic } from "../util/files.ts";
/** What the plots need of a family: its name and whether it is an MNIST-C corruption. */
export type FamilyRef = { name: string; group: "sweep" | "mnist-c" };
import type { ModelRobustness } from "./evaluate.ts";

// The plots need only the accuracies, which is all the report has from robustness.json.
type Results = Record<string, Pick<ModelRobustness, "clean" | "families">>;

function rows(results: Results, families: string[]) {
  return Object.entries(results).flatMap(([model, result]) =>
    families.flatMap((family) =>
      (result.families[family] ?? []).map((l) => ({
        model,
        family,
        level: l.level,
        accuracy: l.accuracy,
      }))
    )
  );
}

const accuracyAxis = {
  field: "accuracy",
  type: "quantitative",
  title: "Accuracy",
  scale: { domain: [0, 1] },
  axis: { format: "%" },
};

function sweepSpec(title: string, xTitle: string, values: unknown[], dashByFamily = false) {
  return {
    title,
    width: 520,
    height: 300,
    data: { values },
    mark: { type: "line", point: true, strokeWidth: 2 },
    encoding: {
      x: { field: "level", type: "quantitative", title: xTitle },
      y: accuracyAxis,
      color: { field: "model", type: "nominal", title: "Model" },
      ...(dashByFamily
        ? { strokeDash: { field: "family", type: "nominal", title: "Direction" } }
        : {}),
    },
  };
}

/** Writes the plots for the families that were run; returns the files written. */
export async function writeRobustnessPlots(
  results: Results,
  families: FamilyRef[],
  plotsDir: string,
): Promise<string[]> {
  const names = new Set(families.map((f) => f.name));
  const written: string[] = [];
  const plot = async (file: string, spec: Record<string, unknown>) => {
    const path = join(plotsDir, file);
    await writePlot(path, spec);
    written.push(path);
  };
  if (names.has("rotation")) {
    await plot(
      "robustness_rotation.png",
      sweepSpec(
        "Accuracy against rotation",
        "Rotation (degrees, counter-clockwise)",
        rows(results, ["rotation"]),
      ),
    );
  }
  const shifts = ["shift_x", "shift_y"].filter((f) => names.has(f));
  if (shifts.length) {
    await plot(
      "robustness_shift.png",
      sweepSpec("Accuracy against shift", "Shift (pixels)", rows(results, shifts), true),
    );
  }
  if (names.has("zoom")) {
    await plot(
      "robustness_zoom.png",
      sweepSpec("Accuracy against zoom", "Scale factor", rows(results, ["zoom"])),
    );
  }
  const others = ["shear", "elastic", "gaussian_noise", "gaussian_blur"].filter((f) =>
    names.has(f)
  );
  if (others.length) {
    await plot("robustness_other_sweeps.png", {
      title: "Accuracy against shear, elastic deformation, noise and blur",
      data: { values: rows(results, others) },
      facet: { field: "family", type: "nominal", title: null, sort: others },
      columns: 2,
      resolve: { scale: { x: "independent" } },
      spec: {
        width: 300,
        height: 180,
        mark: { type: "line", point: true, strokeWidth: 2 },
        encoding: {
          x: { field: "level", type: "quantitative", title: "Level" },
          y: accuracyAxis,
          color: { field: "model", type: "nominal", title: "Model" },
        },
      },
    });
  }
  const mnistC = families.filter((f) => f.group === "mnist-c").map((f) => f.name);
  if (mnistC.length) {
    const values = rows(results, mnistC).map((r) => ({
      ...r,
      corruption: r.family.replace("mnist_c/", ""),
    }));
    await plot("robustness_mnist_c.png", {
      title: "Accuracy on the MNIST-C corruptions",
      width: 520,
      height: { step: 11 },
      data: { values },
      mark: { type: "bar" },
      encoding: {
        y: {
          field: "corruption",
          type: "nominal",
          title: null,
          sort: mnistC.map((n) => n.replace("mnist_c/", "")),
        },
        yOffset: { field: "model" },
        x: accuracyAxis,
        color: { field: "model", type: "nominal", title: "Model" },
      },
    });
  }
  return written;
}

const TILE = 56;
const GAP = 8;
const LABEL_WIDTH = 170;
const ROW_HEIGHT = TILE + 32;

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** A square image of ink in [0, 1] (`side` defaults to 28) under its caption. */
export interface GridTile {
  label: string;
  pixels: Float32Array;
  side?: number;
}

/**
 * Rows of labelled digit tiles, dark ink on white, under a title: one test
 * digit under every family and level (rows are families, each tile labelled
 * with its level; MNIST-C: its corruption), or the digits a model misreads.
 */
export async function writeExamplesGrid(
  examples: Array<{ title: string; images: GridTile[] }>,
  path: string,
  heading = "One test digit under each perturbation family and level",
): Promise<void> {
  const columns = Math.max(...examples.map((e) => e.images.length));
  const width = LABEL_WIDTH + columns * (TILE + GAP) + GAP;
  const height = 40 + examples.length * ROW_HEIGHT;
  const canvas = new Uint8Array(width * height).fill(255);
  const texts: string[] = [
    `<text x="${GAP}" y="24" font-size="16" font-weight="bold">${escapeXml(heading)}</text>`,
  ];
  const frames: string[] = [];
  examples.forEach(({ title, images }, row) => {
    const top = 40 + row * ROW_HEIGHT;
    texts.push(
      `<text x="${GAP}" y="${top + TILE / 2 + 5}" font-size="13">${escapeXml(title)}</text>`,
    );
    images.forEach(({ label, pixels, side = 28 }, column) => {
      const left = LABEL_WIDTH + column * (TILE + GAP);
      const scale = TILE / side;
      frames.push(
        `<rect x="${left - 0.5}" y="${top - 0.5}" width="${TILE + 1}" height="${
          TILE + 1
        }" fill="none" stroke="#c8c8c8"/>`,
      );
      for (let y = 0; y < TILE; y++) {
        for (let x = 0; x < TILE; x++) {
          const value = pixels[Math.floor(y / scale) * side + Math.floor(x / scale)];
          canvas[(top + y) * width + left + x] = Math.round(
            255 * (1 - Math.min(1, Math.max(0, value))),
          );
        }
      }
      // Long names (MNIST-C's) break at underscores onto a second line.
      const lines = label.split("_").length > 1
        ? [label.split("_")[0], label.split("_").slice(1).join("_")]
        : [label];
      lines.forEach((line, i) =>
        texts.push(
          `<text x="${left + TILE / 2}" y="${
            top + TILE + 13 + i * 11
          }" font-size="10" text-anchor="middle">${escapeXml(line)}</text>`,
        )
      );
    });
  });
  const overlay =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="DejaVu Sans, sans-serif">${
      [...frames, ...texts].join("")
    }</svg>`;
  const png = await sharp(canvas, { raw: { width, height, channels: 1 } })
    .composite([{ input: Buffer.from(overlay), top: 0, left: 0 }])
    .toColourspace("b-w")
    .png()
    .toBuffer();
  await writeFileAtomic(path, new Uint8Array(png));
}
