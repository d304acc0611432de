import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import {
  loadUsps,
  loadUspsTest,
  parseUspsGzip,
  parseUspsText,
  USPS_PIXELS,
  uspsDigitGray,
} from "../data/usps.ts";
import { tempDir } from "./temp_dir.ts";

/** One USPS line: the label written as a float, then 256 values in [-1, 1]. */
function line(label: number, value: (p: number) => number): string {
  return [label.toFixed(4), ...Array.from({ length: USPS_PIXELS }, (_, p) => value(p))].join(" ");
}

Deno.test("the shipped USPS has 7,291 + 2,007 digits and its README's test histogram", async () => {
  const { train, test } = await loadUsps();
  assert.equal(train.count, 7291);
  assert.equal(test.count, 2007);
  assert.equal(test.ink.length, 2007 * 256);
  const histogram = Array(10).fill(0);
  for (const label of test.labels) histogram[label]++;
  // The data's README: "Test class counts: 359 264 198 166 200 160 170 147 166 177".
  assert.deepEqual(histogram, [359, 264, 198, 166, 200, 160, 170, 147, 166, 177]);
  let low = Infinity, high = -Infinity;
  for (const v of train.ink) {
    low = Math.min(low, v);
    high = Math.max(high, v);
  }
  assert.deepEqual([low, high], [0, 1]);
  // Paper at the corners, ink somewhere: ink is 1 at the file's +1.
  assert.equal(test.ink[0], 0);
  assert.ok(test.ink.subarray(0, 256).some((v) => v === 1));
});

Deno.test("values map -1 to paper and +1 to ink; an image file of a digit is dark ink on white", () => {
  const split = parseUspsText(line(7, (p) => (p === 17 ? 1 : p === 18 ? 0 : -1)) + "\n");
  assert.equal(split.count, 1);
  assert.equal(split.labels[0], 7);
  assert.equal(split.ink[17], 1);
  assert.equal(split.ink[18], 0.5);
  assert.equal(split.ink[0], 0);
  const gray = uspsDigitGray(split, 0);
  assert.deepEqual([gray.width, gray.height], [16, 16]);
  assert.deepEqual([gray.data[0], gray.data[17], gray.data[18]], [255, 0, 128]);
});

Deno.test("bad or truncated USPS files give one sentence", async () => {
  const good = line(3, () => -1);
  assert.throws(() => parseUspsText(good + "\n" + good.split(" ").slice(0, 100).join(" "), "f"), {
    message: "f line 2 has 100 values; a USPS digit has 257 (its label and 256 pixels).",
  });
  assert.throws(() => parseUspsText(line(11, () => 0), "f"), {
    message: 'f line 1 has label "11.0000"; labels are 0-9.',
  });
  assert.throws(() => parseUspsText(line(1, (p) => (p === 5 ? 3 : 0)), "f"), {
    message: 'f line 1 has pixel value "3"; pixels are -1 to 1.',
  });
  assert.throws(() => parseUspsText("\n\n", "f"), { message: "f holds no digits." });
  const gzipped = gzipSync(new TextEncoder().encode(good + "\n" + good + "\n"));
  assert.equal(parseUspsGzip(new Uint8Array(gzipped), "f").count, 2);
  assert.throws(() => parseUspsGzip(new Uint8Array(gzipped.subarray(0, 40)), "f"), {
    message: "f is truncated: its gzip stream ends early.",
  });
  assert.throws(() => parseUspsGzip(new TextEncoder().encode("plain text"), "f"), {
    message: /^f is not a gzip file \(.+\)\.$/,
  });
  await using temp = await tempDir();
  await assert.rejects(loadUspsTest(pathToFileURL(temp.path + "/")), {
    message: `USPS file ${join(temp.path, "zip.test.gz")} is missing.`,
  });
});
