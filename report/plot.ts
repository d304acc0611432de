/**
 * Plots as PNG: a vega-lite spec compiled to vega, rendered headless to SVG,
 * rasterised by sharp. Text needs system fonts (fonts-dejavu-core).
 */
import { sharp, vega, vegaLite } from "../deps.ts";
import { writeFileAtomic } from "../util/files.ts";

export type VegaLiteSpec = Record<string, unknown>;

const FONT = "DejaVu Sans, sans-serif";

/** Shared look: readable fonts, white background. */
export function withTheme(spec: VegaLiteSpec): VegaLiteSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    background: "white",
    padding: 12,
    ...spec,
    config: {
      font: FONT,
      title: { fontSize: 16, anchor: "start", offset: 10 },
      axis: { labelFontSize: 12, titleFontSize: 13, gridColor: "#e6e6e6" },
      legend: { labelFontSize: 12, titleFontSize: 13 },
      header: { labelFontSize: 13, titleFontSize: 13 },
      view: { stroke: "#cccccc" },
      ...(spec.config as Record<string, unknown> ?? {}),
    },
  };
}

export async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  const compiled = vegaLite.compile(withTheme(spec) as unknown as vegaLite.TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Renders a spec to PNG bytes at `scale` times its natural size. */
export async function renderPng(spec: VegaLiteSpec, scale = 2): Promise<Uint8Array> {
  const svg = await renderSvg(spec);
  const png = await sharp(new TextEncoder().encode(svg), { density: 72 * scale }).png().toBuffer();
  return new Uint8Array(png);
}

export async function writePlot(path: string, spec: VegaLiteSpec): Promise<void> {
  await writeFileAtomic(path, await renderPng(spec));
}
