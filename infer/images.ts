/**
 * Reading people's image files with sharp, and finding them in folders.
 */
import { extname, join } from "node:path";
import { decodePngRgba, sharp } from "../deps.ts";
import { writeFileAtomic } from "../util/files.ts";
import { grayFromPixels, type GrayImage, PreprocessError } from "./preprocess.ts";

export class ImageError extends Error {}

export const IMAGE_EXTENSIONS = [
  ".png",
  ".jpg",
  ".jpeg",
  ".webp",
  ".gif",
  ".tif",
  ".tiff",
  ".avif",
  ".svg",
];

/** sharp's default decoder limit (268 megapixels), kept on deliberately. */
export const PIXEL_LIMIT = 0x3fff * 0x3fff;

function tooLarge(pixelLimit: number): string {
  return `is too large: it exceeds the decoder's limit of ${
    pixelLimit >= 1e6 ? `${Math.round(pixelLimit / 1e6)} megapixels` : `${pixelLimit} pixels`
  }`;
}

function explain(message: string, pixelLimit: number): string {
  if (/unsupported image format/i.test(message)) {
    return "is not an image in a format sharp can decode";
  }
  if (/exceeds pixel limit/i.test(message)) return tooLarge(pixelLimit);
  if (/premature end|corrupt|truncated|read error|bad|invalid/i.test(message)) {
    return `cannot be decoded: it is truncated or corrupt (${
      message.split("\n")[0].replace(/:\s*$/, "")
    })`;
  }
  return `cannot be decoded (${message.split("\n")[0]})`;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * Width and height of a PNG of at most 8 bits per channel, from its header:
 * such files decode exactly alike in pngjs and sharp, and pngjs is about 15
 * times faster on small ones (a web API's digits). Undefined for anything else.
 */
function plainPngHeader(bytes: Uint8Array): { width: number; height: number } | undefined {
  if (bytes.length < 33 || PNG_SIGNATURE.some((byte, i) => bytes[i] !== byte)) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const isHeader = String.fromCharCode(...bytes.subarray(12, 16)) === "IHDR";
  if (!isHeader || bytes[24] > 8) return undefined;
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/** Decodes an image file to 8-bit gray, transparency flattened onto white. */
export async function readGray(path: string): Promise<GrayImage> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new ImageError("does not exist");
    throw new ImageError(`cannot be read (${(error as Error).message})`);
  }
  return decodeGray(bytes);
}

/**
 * Decodes encoded image bytes (any format sharp reads) to 8-bit gray through
 * `grayFromPixels`, refusing images over `pixelLimit` before decoding them.
 */
export async function decodeGray(bytes: Uint8Array, pixelLimit = PIXEL_LIMIT): Promise<GrayImage> {
  const png = plainPngHeader(bytes);
  if (png) {
    if (png.width * png.height > pixelLimit) throw new ImageError(tooLarge(pixelLimit));
    try {
      const { width, height, data } = decodePngRgba(bytes);
      return grayFromPixels(data, width, height, 4);
    } catch {
      // sharp decodes it below, or names what is wrong with it.
    }
  }
  return await decodeGrayWithSharp(bytes, pixelLimit);
}

/** `decodeGray` through sharp alone, for any format it reads. */
export async function decodeGrayWithSharp(
  bytes: Uint8Array,
  pixelLimit = PIXEL_LIMIT,
): Promise<GrayImage> {
  if (bytes.length === 0) throw new ImageError("is empty (0 bytes)");
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: pixelLimit, failOn: "error" })
      .toColourspace("srgb")
      .raw()
      .toBuffer({ resolveWithObject: true });
    return grayFromPixels(data, info.width, info.height, info.channels);
  } catch (error) {
    if (error instanceof PreprocessError) throw new ImageError(error.message);
    throw new ImageError(explain((error as Error).message, pixelLimit));
  }
}

/** Writes a 28×28 [0, 1] image as an 8-bit grayscale PNG. */
export async function writeMnistPng(pixels: Float32Array, path: string): Promise<void> {
  const bytes = Uint8Array.from(
    pixels,
    (value) => Math.round(Math.min(1, Math.max(0, value)) * 255),
  );
  const png = await sharp(bytes, { raw: { width: 28, height: 28, channels: 1 } })
    .toColourspace("b-w")
    .png()
    .toBuffer();
  await writeFileAtomic(path, new Uint8Array(png));
}

/**
 * The image files named: files as given, folders walked (recursively) for
 * files with an image extension, in sorted order.
 */
export async function collectImages(paths: string[]): Promise<string[]> {
  const files: string[] = [];
  const walk = async (dir: string) => {
    const entries = [];
    for await (const entry of Deno.readDir(dir)) entries.push(entry);
    entries.sort((a, b) => a.name.localeCompare(b.name));
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) await walk(path);
      else if (IMAGE_EXTENSIONS.includes(extname(entry.name).toLowerCase())) files.push(path);
    }
  };
  for (const path of paths) {
    let isDirectory = false;
    try {
      isDirectory = (await Deno.stat(path)).isDirectory;
    } catch {
      // Reported per file when it is read.
    }
    if (isDirectory) await walk(path);
    else files.push(path);
  }
  return files;
}
