/** Runs one of the project's scripts as a user would, capturing its exit code and output. */
const ROOT = new URL("..", import.meta.url).pathname;

export async function runScript(
  script: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", script, ...args],
    cwd: ROOT,
    env: { RUST_BACKTRACE: "0", NO_COLOR: "1", VIPS_WARNING: "0" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code,
    stdout: new TextDecoder().decode(stdout),
    stderr: new TextDecoder().decode(stderr).trim(),
  };
}
