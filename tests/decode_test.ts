/**
 * One grayscale conversion for every decoder: sharp (any format), pngjs
 * (the fast path for plain PNGs) and a browser canvas all end in
 * grayFromPixels, so the lab's page and API see the same bytes.
 */
import assert from "node:assert/strict";
import { decodePngRgba, sharp } from "../deps.ts";
import { decodeGray, decodeGrayWithSharp, ImageError } from "../infer/images.ts";
import { grayFromPixels, PreprocessError } from "../infer/preprocess.ts";

Deno.test("grayFromPixels: luma, and transparency flattened onto white", () => {
  // gray; gray + alpha; RGB; RGBA (opaque red, half-transparent black, clear)
  assert.deepEqual(Array.from(grayFromPixels([0, 128, 255, 7], 2, 2, 1).data), [0, 128, 255, 7]);
  assert.deepEqual(Array.from(grayFromPixels([0, 255, 0, 0, 40, 128], 3, 1, 2).data), [
    0,
    255,
    147,
  ]);
  assert.deepEqual(
    Array.from(grayFromPixels([255, 0, 0, 0, 255, 0, 0, 0, 255], 3, 1, 3).data),
    [76, 150, 29],
  );
  assert.deepEqual(
    Array.from(grayFromPixels([255, 0, 0, 255, 0, 0, 0, 128, 9, 9, 9, 0], 3, 1, 4).data),
    [76, 127, 255],
  );
  assert.throws(() => grayFromPixels([1, 2, 3], 2, 2, 1), PreprocessError);
  assert.throws(() => grayFromPixels(new Uint8Array(20), 2, 2, 5), /5 channels/);
});

/** A 40×30 test picture: a colour gradient with varying transparency. */
function picture(): Uint8Array {
  const data = new Uint8Array(40 * 30 * 4);
  for (let i = 0; i < 40 * 30; i++) {
    const x = i % 40, y = Math.floor(i / 40);
    data.set([x * 6, y * 8, (x * y) % 256, 255 - ((x + y) % 4) * 60], i * 4);
  }
  return data;
}

Deno.test("PNGs of every colour type decode alike through pngjs and sharp", async () => {
  const raw = { raw: { width: 40, height: 30, channels: 4 as const } };
  const variants: Record<string, () => Promise<Buffer>> = {
    rgba: () => sharp(picture(), raw).png().toBuffer(),
    rgb: () => sharp(picture(), raw).removeAlpha().png().toBuffer(),
    gray: () => sharp(picture(), raw).removeAlpha().toColourspace("b-w").png().toBuffer(),
    "gray + alpha": () => sharp(picture(), raw).toColourspace("b-w").png().toBuffer(),
    palette: () => sharp(picture(), raw).png({ palette: true, colours: 16 }).toBuffer(),
    "1-bit gray": () =>
      sharp(picture(), raw).removeAlpha().toColourspace("b-w").png({ palette: true, colours: 2 })
        .toBuffer(),
    interlaced: () => sharp(picture(), raw).png({ progressive: true }).toBuffer(),
    "16-bit": () => sharp(picture(), raw).toColourspace("rgb16").png().toBuffer(),
  };
  for (const [name, encode] of Object.entries(variants)) {
    const bytes = new Uint8Array(await encode());
    const reference = await decodeGrayWithSharp(bytes);
    const fast = await decodeGray(bytes);
    if (name !== "16-bit") {
      // The fast path must really be taken (decodeGray falls back to sharp on failure).
      const png = decodePngRgba(bytes);
      assert.deepEqual(grayFromPixels(png.data, png.width, png.height, 4).data, fast.data, name);
    }
    assert.deepEqual([fast.width, fast.height], [40, 30], name);
    const worst = fast.data.reduce((m, v, i) => Math.max(m, Math.abs(v - reference.data[i])), 0);
    assert.ok(worst <= (name === "16-bit" ? 1 : 0), `${name}: differs by ${worst}`);
  }
});

Deno.test("a PNG claiming more pixels than the limit is refused before decoding", async () => {
  const png = new Uint8Array(
    await sharp({ create: { width: 300, height: 200, channels: 3, background: "#fff" } }).png()
      .toBuffer(),
  );
  await assert.rejects(decodeGray(png, 10_000), (error: Error) => {
    assert.ok(error instanceof ImageError);
    assert.match(error.message, /exceeds the decoder's limit of 10000 pixels/);
    return true;
  });
  assert.equal((await decodeGray(png, 60_000)).width, 300);
  await assert.rejects(decodeGray(png.slice(0, 50)), /truncated or corrupt|cannot be decoded/);
});
