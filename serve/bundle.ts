/**
 * The page's script: lab/main.ts and what it imports (the shared
 * preprocessing, the suite's transforms) bundled for the browser by
 * `deno bundle`, once per server, when the page first asks for it.
 */
import { fileURLToPath as fromFileUrl } from "node:url";

const ROOT = new URL("../", import.meta.url);

export async function bundleLab(entry = "lab/main.ts"): Promise<Uint8Array<ArrayBuffer>> {
  const output = await Deno.makeTempFile({ suffix: ".js" });
  try {
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--quiet", "--platform", "browser", "--output", output, entry],
      cwd: fromFileUrl(ROOT),
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    if (code !== 0) {
      const why = new TextDecoder().decode(stderr).trim().split("\n")[0];
      throw new Error(`Bundling the lab's script failed (${why}).`);
    }
    return await Deno.readFile(output);
  } finally {
    await Deno.remove(output).catch(() => {});
  }
}
