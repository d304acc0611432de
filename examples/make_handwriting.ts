/**
 * deno run -A examples/make_handwriting.ts
 *
 * Writes examples/handwriting/: a labelled set of digits that look like what
 * people photograph or scan, not like MNIST. Two sources:
 * - "scan": MNIST test digits enlarged and degraded the way scans and photos
 *   degrade: thick or thin pens, grey ink, paper with uneven light, blur,
 *   low resolution, sensor noise, JPEG;
 * - "font": the ten digits rendered from the system's DejaVu fonts (sans,
 *   serif, mono; regular, bold, oblique), degraded the same way.
 * The true digit is the first character of each file name, as in
 * examples/digits/. Every strength is drawn from a seeded generator, so the
 * set is the same on every machine with the same fonts.
 */
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { sharp } from "../deps.ts";
import { loadMnist } from "../data/mnist.ts";
import { Random } from "../util/random.ts";

const OUT = new URL("./handwriting/", import.meta.url).pathname;
const SCANS_PER_DIGIT = 24;
const FONTS = ["DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono"];
const STYLES = [
  { weight: "normal", style: "normal" },
  { weight: "bold", style: "normal" },
  { weight: "normal", style: "oblique" },
  { weight: "bold", style: "oblique" },
];
const SEED = 2026;

interface Page {
  size: number;
  /** Ink coverage in [0, 1], row-major. */
  ink: Float32Array;
}

function clamp01(value: number): number {
  return value < 0 ? 0 : value > 1 ? 1 : value;
}

/** A square 3×3 max (thicker pen) or min (thinner pen), `passes` times. */
function pen(page: Page, passes: number, thicker: boolean): Page {
  let ink = page.ink;
  const { size } = page;
  for (let pass = 0; pass < passes; pass++) {
    const next = new Float32Array(ink.length);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        let value = thicker ? 0 : 1;
        for (let dy = -1; dy <= 1; dy++) {
          for (let dx = -1; dx <= 1; dx++) {
            const xx = Math.min(size - 1, Math.max(0, x + dx));
            const yy = Math.min(size - 1, Math.max(0, y + dy));
            const v = ink[yy * size + xx];
            value = thicker ? Math.max(value, v) : Math.min(value, v);
          }
        }
        next[y * size + x] = value;
      }
    }
    ink = next;
  }
  return { size, ink };
}

async function resized(gray: Uint8Array, from: number, to: number): Promise<Uint8Array> {
  return new Uint8Array(
    await sharp(Buffer.from(gray), { raw: { width: from, height: from, channels: 1 } })
      .resize(to, to, { kernel: "cubic" })
      .toColourspace("b-w")
      .raw()
      .toBuffer(),
  );
}

/** The ink printed onto paper and photographed: returns an encoded image and how it was made. */
async function photograph(page: Page, random: Random): Promise<{ bytes: Uint8Array; ext: string }> {
  // Pen: a third thinner, a third thicker, a third as drawn.
  const penKind = random.int(3);
  // One erosion at most: more erases whole strokes of MNIST's thin digits.
  const thicker = penKind === 1;
  const passes = thicker ? 1 + random.int(Math.max(1, Math.round(page.size / 40))) : 1;
  let drawn = penKind === 0 ? page : pen(page, passes, thicker);
  // Grey ink: pencil to marker.
  const strength = random.uniform(0.25, 0.95);
  // Paper, lit from one side; a fifth are light strokes on a dark board.
  const board = random.next() < 0.2;
  const paper = board ? random.uniform(0.05, 0.3) : random.uniform(0.6, 0.95);
  const tilt = random.uniform(-0.2, 0.2), angle = random.uniform(0, 2 * Math.PI);
  const { size } = drawn;
  const gray = new Uint8Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const light = tilt *
        ((x / size - 0.5) * Math.cos(angle) + (y / size - 0.5) * Math.sin(angle));
      const ink = strength * drawn.ink[y * size + x];
      const value = board ? paper + ink * (1 - paper) + light : (paper + light) * (1 - ink);
      gray[y * size + x] = Math.round(255 * clamp01(value));
    }
  }
  drawn = { size: 0, ink: new Float32Array() };
  // Blur (focus, ink bleed), then a low-resolution camera or scanner.
  const blurred = random.next() < 0.6
    ? new Uint8Array(
      await sharp(Buffer.from(gray), { raw: { width: size, height: size, channels: 1 } })
        .blur(0.3 + random.uniform(0, size / 50))
        .toColourspace("b-w")
        .raw()
        .toBuffer(),
    )
    : gray;
  const side = 16 + random.int(48);
  const small = await resized(blurred, size, side);
  const noise = random.uniform(0, 0.04);
  const noisy = small.map((v) => Math.round(255 * clamp01(v / 255 + noise * random.normal())));
  const image = sharp(Buffer.from(noisy), { raw: { width: side, height: side, channels: 1 } });
  const jpeg = random.next() < 0.5;
  const encoded = jpeg
    ? image.jpeg({ quality: 50 + random.int(45) })
    : image.png({ compressionLevel: 9 });
  return { bytes: new Uint8Array(await encoded.toBuffer()), ext: jpeg ? "jpg" : "png" };
}

/** An MNIST digit enlarged to `size` pixels with a margin, as ink coverage. */
async function mnistPage(pixels: Uint8Array, size: number): Promise<Page> {
  const inner = Math.round(size * 0.8);
  const large = await resized(pixels, 28, inner);
  const ink = new Float32Array(size * size);
  const margin = Math.floor((size - inner) / 2);
  for (let y = 0; y < inner; y++) {
    for (let x = 0; x < inner; x++) {
      ink[(y + margin) * size + x + margin] = large[y * inner + x] / 255;
    }
  }
  return { size, ink };
}

/** A digit rendered from a system font, black on white, as ink coverage. */
async function fontPage(
  digit: number,
  font: string,
  weight: string,
  style: string,
  size: number,
): Promise<Page> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}">` +
    `<rect width="100%" height="100%" fill="white"/>` +
    `<text x="50%" y="78%" text-anchor="middle" font-family="${font}" font-weight="${weight}" ` +
    `font-style="${style}" font-size="${
      Math.round(size * 0.75)
    }" fill="black">${digit}</text></svg>`;
  const gray = await sharp(Buffer.from(svg)).toColourspace("b-w").raw().toBuffer();
  return { size, ink: Float32Array.from(gray.subarray(0, size * size), (v) => 1 - v / 255) };
}

async function main() {
  await Deno.remove(OUT, { recursive: true }).catch(() => {});
  await Deno.mkdir(OUT, { recursive: true });
  const random = new Random(SEED);
  const { test } = await loadMnist();
  // Test digits spread over the set: every 31st image of each class.
  let written = 0;
  for (let digit = 0; digit < 10; digit++) {
    const indices: number[] = [];
    for (let i = 0; i < test.count && indices.length < SCANS_PER_DIGIT; i++) {
      if (test.labels[i] === digit && i % 31 === digit) indices.push(i);
    }
    for (const index of indices) {
      const page = await mnistPage(test.images.subarray(index * 784, (index + 1) * 784), 112);
      const { bytes, ext } = await photograph(page, random);
      await Deno.writeFile(join(OUT, `${digit}-scan-${index}.${ext}`), bytes);
      written++;
    }
  }
  for (let digit = 0; digit < 10; digit++) {
    for (const font of FONTS) {
      for (const { weight, style } of STYLES) {
        const page = await fontPage(digit, font, weight, style, 96);
        const { bytes, ext } = await photograph(page, random);
        const name = `${digit}-font-${font.replaceAll(" ", "")}-${weight}-${style}.${ext}`;
        await Deno.writeFile(join(OUT, name.toLowerCase()), bytes);
        written++;
      }
    }
  }
  console.log(`written ${written} images to ${OUT}`);
}

if (import.meta.main) await main();
