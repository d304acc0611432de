/**
 * predictions.png: test digits with the model's answer and confidence;
 * correct answers in green, mistakes (the most confident ones) in red.
 */
import { Buffer } from "node:buffer";
import { sharp } from "../deps.ts";
import type { MnistSplit } from "../data/mnist.ts";
import { writeFileAtomic } from "../util/files.ts";
import type { TestSetMetrics } from "./inputs.ts";

const TILE = 84;
const GAP = 14;
const COLUMNS = 12;
const CAPTION = 30;

export async function writeExamplesTile(
  test: TestSetMetrics,
  split: MnistSplit,
  path: string,
): Promise<void> {
  const sections = [
    {
      title: "First test images: predicted digit and confidence (green: right, red: wrong)",
      items: test.samples,
    },
    {
      title: "The model's most confident mistakes (true digit in brackets)",
      items: test.confident_mistakes,
    },
  ].filter((s) => s.items.length > 0);
  const rowsOf = (n: number) => Math.ceil(n / COLUMNS);
  const width = GAP + COLUMNS * (TILE + GAP);
  let height = 0;
  for (const s of sections) height += 34 + rowsOf(s.items.length) * (TILE + CAPTION + GAP);
  const canvas = new Uint8Array(width * height * 3).fill(255);
  const texts: string[] = [];
  let top = 0;
  for (const section of sections) {
    texts.push(
      `<text x="${GAP}" y="${top + 24}" font-size="15" font-weight="bold">${section.title}</text>`,
    );
    top += 34;
    section.items.forEach((item, i) => {
      const left = GAP + (i % COLUMNS) * (TILE + GAP);
      const y0 = top + Math.floor(i / COLUMNS) * (TILE + CAPTION + GAP);
      const pixels = split.images.subarray(item.index * 784, (item.index + 1) * 784);
      for (let y = 0; y < TILE; y++) {
        for (let x = 0; x < TILE; x++) {
          const value = 255 -
            pixels[Math.floor((y * 28) / TILE) * 28 + Math.floor((x * 28) / TILE)];
          const at = ((y0 + y) * width + left + x) * 3;
          canvas[at] = canvas[at + 1] = canvas[at + 2] = value;
        }
      }
      const right = item.prediction === item.label;
      const colour = right ? "#1a7f37" : "#cf222e";
      const caption = `${item.prediction} ${(item.confidence * 100).toFixed(1)}%${
        right ? "" : ` (${item.label})`
      }`;
      texts.push(
        `<rect x="${left - 1.5}" y="${y0 - 1.5}" width="${TILE + 3}" height="${
          TILE + 3
        }" fill="none" stroke="${colour}" stroke-width="3"/>`,
        `<text x="${left + TILE / 2}" y="${
          y0 + TILE + 20
        }" font-size="13" text-anchor="middle" fill="${colour}">${caption}</text>`,
      );
    });
    top += rowsOf(section.items.length) * (TILE + CAPTION + GAP);
  }
  const overlay =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="DejaVu Sans, sans-serif">${
      texts.join("")
    }</svg>`;
  const png = await sharp(canvas, { raw: { width, height, channels: 3 } })
    .composite([{ input: Buffer.from(overlay), top: 0, left: 0 }])
    .png()
    .toBuffer();
  await writeFileAtomic(path, new Uint8Array(png));
}
