/**
 * Using the lab as a person would, through headless Chromium: open it,
 * draw a digit on the pad with the mouse, move a slider. Shared by the
 * browser test and `deno task lab:screenshot`.
 */
import { Chromium, type Page } from "./chromium.ts";

/** A digit 7 as one stroke, in fractions of the pad's size. */
export const SEVEN: Array<[number, number]> = [
  [0.25, 0.22],
  [0.5, 0.22],
  [0.75, 0.22],
  [0.68, 0.35],
  [0.6, 0.5],
  [0.52, 0.65],
  [0.45, 0.8],
];

export async function openLab(url: string): Promise<{ browser: Chromium; page: Page }> {
  const browser = await Chromium.launch();
  try {
    const page = await browser.newPage();
    await page.goto(url);
    await page.waitFor("window.lab?.ready || window.lab?.error", 60_000);
    const error = await page.evaluate<string | null>("window.lab.error");
    if (error) throw new Error(`The lab did not start: ${error}`);
    return { browser, page };
  } catch (error) {
    await browser.close();
    throw error;
  }
}

/** Completed classification rounds so far. */
export function updates(page: Page): Promise<number> {
  return page.evaluate<number>("window.lab.updates");
}

/** Waits until the page has classified again after round `after` and is idle. */
export async function settled(page: Page, after: number): Promise<void> {
  await page.waitFor(`window.lab.updates > ${after} || window.lab.error`);
  const error = await page.evaluate<string | null>("window.lab.error");
  if (error) throw new Error(`The page failed: ${error}`);
  // A round may already be queued behind the one that finished.
  let last = -1;
  for (let now = await updates(page); now !== last; now = await updates(page)) {
    last = now;
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
}

/** Draws `stroke` (fractions of the pad) with the mouse, with points in between. */
export async function drawStroke(page: Page, stroke: Array<[number, number]>): Promise<void> {
  const box = await page.evaluate<{ x: number; y: number; width: number; height: number }>(
    "(() => { const r = document.getElementById('pad').getBoundingClientRect(); " +
      "return { x: r.left, y: r.top, width: r.width, height: r.height }; })()",
  );
  const points: Array<[number, number]> = [];
  for (let i = 0; i < stroke.length - 1; i++) {
    for (let t = 0; t < 1; t += 0.25) {
      const [x0, y0] = stroke[i], [x1, y1] = stroke[i + 1];
      points.push([
        box.x + (x0 + (x1 - x0) * t) * box.width,
        box.y + (y0 + (y1 - y0) * t) * box.height,
      ]);
    }
  }
  const [xl, yl] = stroke.at(-1)!;
  points.push([box.x + xl * box.width, box.y + yl * box.height]);
  await page.drag(points);
}

/** Moves the slider of `key` to `value` as a person would (an input event). */
export async function moveSlider(page: Page, key: string, value: number): Promise<void> {
  await page.evaluate(
    `(() => { const s = document.getElementById('bend-${key}'); s.value = '${value}'; ` +
      "s.dispatchEvent(new Event('input', { bubbles: true })); })()",
  );
}
