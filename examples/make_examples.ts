/**
 * deno run -A examples/make_examples.ts
 *
 * Writes the sample "people's digits" in examples/digits/: MNIST test digits
 * printed large as dark ink on grey paper (JPEG, with paper noise), chalk on
 * a dark board (PNG), and a transparent PNG, the cases preprocessing must
 * handle. Their true digit is the first character of each file name.
 */
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { sharp } from "../deps.ts";
import { loadMnist } from "../data/mnist.ts";
import { Random } from "../util/random.ts";

const OUT = new URL("./digits/", import.meta.url).pathname;

async function main() {
  await Deno.mkdir(OUT, { recursive: true });
  const { test } = await loadMnist();
  const random = new Random(2024);
  // The first test image of each digit.
  const firsts = Array.from({ length: 10 }, (_, digit) => test.labels.indexOf(digit));
  for (const [digit, index] of firsts.entries()) {
    const ink = test.images.subarray(index * 784, (index + 1) * 784);
    const style = ["paper", "chalk", "transparent"][digit % 3];
    const size = 180;
    const large = await sharp(Buffer.from(ink), { raw: { width: 28, height: 28, channels: 1 } })
      .resize(size, size, { kernel: "cubic" })
      .toColourspace("b-w")
      .raw()
      .toBuffer();
    let image;
    if (style === "paper") {
      // Dark ink on uneven grey paper, a photo-like JPEG.
      const pixels = Uint8Array.from(large, (v, i) => {
        const paper = 205 + 25 * Math.sin(i / 9000) + 10 * random.normal();
        return Math.max(0, Math.min(255, paper - v * 0.8));
      });
      image = sharp(Buffer.from(pixels), { raw: { width: size, height: size, channels: 1 } }).jpeg({
        quality: 85,
      });
    } else if (style === "chalk") {
      const pixels = Uint8Array.from(
        large,
        (v) => Math.min(255, 40 + v * 0.8 + 12 * random.normal()),
      );
      image = sharp(Buffer.from(pixels), { raw: { width: size, height: size, channels: 1 } }).png();
    } else {
      // Black ink with an alpha channel on a transparent background.
      const rgba = new Uint8Array(size * size * 4);
      for (let i = 0; i < size * size; i++) rgba[i * 4 + 3] = large[i];
      image = sharp(Buffer.from(rgba), { raw: { width: size, height: size, channels: 4 } }).png();
    }
    const file = join(OUT, `${digit}-${style}.${style === "paper" ? "jpg" : "png"}`);
    await Deno.writeFile(file, new Uint8Array(await image.toBuffer()));
    console.log(`written ${file}`);
  }
}

if (import.meta.main) await main();
