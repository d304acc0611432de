/**
 * The USPS handwritten digits (data/usps/, provenance in its README): real
 * digits from envelopes, 16×16, never trained on. They measure how well
 * models trained on MNIST read other people's handwriting.
 */
import { gunzipSync } from "node:zlib";
import { DataError } from "./mnist.ts";

export const USPS_SIDE = 16;
export const USPS_PIXELS = USPS_SIDE * USPS_SIDE;
/** The folder shipped with the repository. */
export const USPS_DIR_URL = new URL("./usps/", import.meta.url);

export interface UspsSplit {
  /** count × 256 ink values in [0, 1] (0 paper, 1 full ink), row-major 16×16. */
  ink: Float32Array;
  labels: Uint8Array;
  count: number;
}

export interface Usps {
  train: UspsSplit;
  test: UspsSplit;
}

/**
 * Parses the text format (after gunzip): one digit a line, its label written
 * as a float, then 256 values in [-1, 1] (-1 paper, 1 ink).
 */
export function parseUspsText(text: string, file = "USPS file"): UspsSplit {
  const lines = text.split("\n").filter((line) => line.trim() !== "");
  if (lines.length === 0) throw new DataError(`${file} holds no digits.`);
  const ink = new Float32Array(lines.length * USPS_PIXELS);
  const labels = new Uint8Array(lines.length);
  for (const [row, line] of lines.entries()) {
    const fields = line.trim().split(/\s+/);
    if (fields.length !== USPS_PIXELS + 1) {
      throw new DataError(
        `${file} line ${row + 1} has ${fields.length} values; a USPS digit has ${
          USPS_PIXELS + 1
        } (its label and ${USPS_PIXELS} pixels).`,
      );
    }
    const label = Number(fields[0]);
    if (!Number.isInteger(label) || label < 0 || label > 9) {
      throw new DataError(`${file} line ${row + 1} has label "${fields[0]}"; labels are 0-9.`);
    }
    labels[row] = label;
    for (let p = 0; p < USPS_PIXELS; p++) {
      const value = Number(fields[p + 1]);
      if (!(value >= -1 && value <= 1)) {
        throw new DataError(
          `${file} line ${row + 1} has pixel value "${fields[p + 1]}"; pixels are -1 to 1.`,
        );
      }
      ink[row * USPS_PIXELS + p] = (value + 1) / 2;
    }
  }
  return { ink, labels, count: lines.length };
}

/** Gunzips and parses one USPS file's bytes. */
export function parseUspsGzip(bytes: Uint8Array, file = "USPS file"): UspsSplit {
  let text: string;
  try {
    text = new TextDecoder().decode(gunzipSync(bytes));
  } catch (error) {
    const reason = (error as Error).message;
    throw new DataError(
      /unexpected end/i.test(reason)
        ? `${file} is truncated: its gzip stream ends early.`
        : `${file} is not a gzip file (${reason.replace(/\.$/, "")}).`,
    );
  }
  return parseUspsText(text, file);
}

async function readSplit(url: URL): Promise<UspsSplit> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(url);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new DataError(`USPS file ${url.pathname} is missing.`);
    }
    throw new DataError(`USPS file ${url.pathname} cannot be read: ${(error as Error).message}`);
  }
  return parseUspsGzip(bytes, url.pathname);
}

/** The test split alone (2,007 digits): what evaluations read. */
export function loadUspsTest(dir: URL = USPS_DIR_URL): Promise<UspsSplit> {
  return readSplit(new URL("zip.test.gz", dir));
}

/** The training split alone (7,291 digits): where preprocessing is chosen, never trained on. */
export function loadUspsTrain(dir: URL = USPS_DIR_URL): Promise<UspsSplit> {
  return readSplit(new URL("zip.train.gz", dir));
}

export async function loadUsps(dir: URL = USPS_DIR_URL): Promise<Usps> {
  const [train, test] = await Promise.all([loadUspsTrain(dir), loadUspsTest(dir)]);
  return { train, test };
}

/** Digit `index` as an ordinary image a user would have: 8-bit gray, dark ink on white paper. */
export function uspsDigitGray(
  split: UspsSplit,
  index: number,
): { width: number; height: number; data: Uint8Array } {
  const ink = split.ink.subarray(index * USPS_PIXELS, (index + 1) * USPS_PIXELS);
  return {
    width: USPS_SIDE,
    height: USPS_SIDE,
    data: Uint8Array.from(ink, (v) => Math.round(255 * (1 - v))),
  };
}
