/// <reference lib="dom" />
/**
 * The lab's pictures, drawn with plain DOM and SVG: probability bars per
 * model, 28×28 images on small canvases, and an accuracy-against-level
 * curve from robustness.json with a marker at the slider's level.
 */

export const MODEL_COLOURS = ["#3867d6", "#e67e22", "#20a35a", "#8e44ad", "#c0392b", "#16a085"];

/** Fills `canvas` (28×28) with an image of 784 values in [0, 1], ink bright on dark. */
export function drawDigit(canvas: HTMLCanvasElement, pixels: ArrayLike<number>, scale = 1): void {
  const context = canvas.getContext("2d")!;
  const image = context.createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const value = Math.round(Math.min(1, Math.max(0, pixels[i] * scale)) * 255);
    image.data.set([value, value, value, 255], i * 4);
  }
  context.putImageData(image, 0, 0);
}

/** Ten rows of digit, bar and percentage; the most probable bar highlighted. */
export function renderBars(container: HTMLElement, probabilities: ArrayLike<number> | null): void {
  container.replaceChildren();
  const best = probabilities
    ? Array.from(probabilities).indexOf(Math.max(...Array.from(probabilities)))
    : -1;
  for (let digit = 0; digit < 10; digit++) {
    const p = probabilities ? probabilities[digit] : 0;
    const label = document.createElement("span");
    label.textContent = String(digit);
    const track = document.createElement("div");
    const bar = document.createElement("div");
    bar.className = digit === best ? "bar top" : "bar";
    bar.style.width = `${(p * 100).toFixed(2)}%`;
    track.append(bar);
    const value = document.createElement("span");
    value.textContent = probabilities ? `${(p * 100).toFixed(1)}%` : "";
    container.append(label, track, value);
  }
}

export interface CurveSeries {
  name: string;
  points: Array<{ level: number; accuracy: number }>;
}

const SVG = "http://www.w3.org/2000/svg";

function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attributes: Record<string, string | number>,
  text?: string,
): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

/** A line chart of accuracy (0–100%) against level, one line per model, a marker at `marker`. */
export function curveChart(
  title: string,
  unit: string,
  series: CurveSeries[],
  marker: number,
): SVGSVGElement {
  const width = 300, height = 224, left = 40, right = 10, top = 38, bottom = 36;
  const levels = series.flatMap((s) => s.points.map((p) => p.level)).concat(marker);
  const min = Math.min(...levels), max = Math.max(...levels);
  const x = (level: number) => left + ((level - min) / (max - min || 1)) * (width - left - right);
  const y = (accuracy: number) => top + (1 - accuracy) * (height - top - bottom);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img" });
  chart.append(svg("text", { x: left, y: 14, "font-size": 12, "font-weight": "bold" }, title));
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    chart.append(
      svg("line", { x1: left, x2: width - right, y1: y(tick), y2: y(tick), stroke: "#dde" }),
      svg("text", {
        x: left - 4,
        y: y(tick) + 4,
        "font-size": 10,
        "text-anchor": "end",
      }, `${tick * 100}%`),
    );
  }
  for (const level of [min, (min + max) / 2, max]) {
    chart.append(
      svg("text", {
        x: x(level),
        y: height - bottom + 14,
        "font-size": 10,
        "text-anchor": "middle",
      }, String(+level.toFixed(2))),
    );
  }
  chart.append(
    svg("text", {
      x: (left + width - right) / 2,
      y: height - 6,
      "font-size": 10,
      "text-anchor": "middle",
    }, unit),
  );
  series.forEach((s, i) => {
    const colour = MODEL_COLOURS[i % MODEL_COLOURS.length];
    const path = s.points.map((p, j) => `${j ? "L" : "M"}${x(p.level)},${y(p.accuracy)}`).join("");
    chart.append(svg("path", { d: path, fill: "none", stroke: colour, "stroke-width": 2 }));
    for (const p of s.points) {
      chart.append(svg("circle", { cx: x(p.level), cy: y(p.accuracy), r: 2.5, fill: colour }));
    }
    // The legend: one row under the title.
    chart.append(
      svg("text", { x: left + 80 * i, y: 28, "font-size": 10, fill: colour }, `— ${s.name}`),
    );
  });
  chart.append(
    svg("line", {
      x1: x(marker),
      x2: x(marker),
      y1: top,
      y2: height - bottom,
      stroke: "#b00020",
      "stroke-dasharray": "4 3",
      "stroke-width": 1.5,
      class: "marker",
    }),
  );
  return chart;
}
