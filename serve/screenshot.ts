/**
 * deno task lab:screenshot [--out FILE] [--models DIR]
 *
 * A picture of the lab in use for the README: the lab served on a free
 * port, a 7 drawn with the mouse in headless Chromium, rotated by the
 * slider, with the rotation curve shown.
 */
import { join } from "node:path";
import { parseFlags, runMain } from "../util/cli.ts";
import { writeFileAtomic } from "../util/files.ts";
import { createLab } from "./app.ts";
import { drawStroke, moveSlider, openLab, settled, SEVEN, updates } from "./lab_driver.ts";

export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, {
    out: { type: "string", default: join("results", "plots", "lab.png") },
    models: { type: "string", default: join("results", "models") },
    rotation: { type: "string", default: "40" },
    help: { type: "boolean", default: false },
  });
  if (values.help) {
    console.log(
      "Usage: deno task lab:screenshot [--out FILE] [--models DIR] [--rotation DEGREES]\n\n" +
        "Draws a 7 in the lab in headless Chromium, rotates it and saves a screenshot (PNG).",
    );
    return;
  }
  const lab = await createLab({ modelsDir: values.models });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, lab.handler);
  try {
    const { browser, page } = await openLab(`http://127.0.0.1:${server.addr.port}/`);
    try {
      let round = await updates(page);
      await drawStroke(page, SEVEN);
      await settled(page, round);
      round = await updates(page);
      await moveSlider(page, "rotation", Number(values.rotation));
      await settled(page, round);
      await page.evaluate("document.getElementById('curve').click()");
      await page.waitFor("document.querySelector('#curve-box svg .marker')");
      await writeFileAtomic(values.out, await page.screenshot());
      if (page.errors.length > 0) throw new Error(`The page logged errors: ${page.errors[0]}`);
      console.log(`wrote ${values.out}`);
    } finally {
      await browser.close();
    }
  } finally {
    await server.shutdown();
    await lab.close();
  }
}

if (import.meta.main) await runMain(() => main(Deno.args));
