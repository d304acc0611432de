/**
 * Output files are written to a temporary name and renamed into place, so a
 * crash or a kill never leaves a half-written file where a good one was.
 */
import { dirname } from "node:path";

export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.tmp-${Deno.pid}`;
  try {
    if (typeof data === "string") await Deno.writeTextFile(temporary, data);
    else await Deno.writeFile(temporary, data);
    await Deno.rename(temporary, path);
  } catch (error) {
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
}

export function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  return writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/**
 * Replaces the folder `path` by one that `fill` writes: fill a temporary
 * folder, then swap it in with renames.
 */
export async function writeDirAtomic(
  path: string,
  fill: (dir: string) => Promise<void>,
): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.tmp-${Deno.pid}`;
  const previous = `${path}.old-${Deno.pid}`;
  await Deno.remove(temporary, { recursive: true }).catch(() => {});
  await Deno.mkdir(temporary);
  try {
    await fill(temporary);
  } catch (error) {
    await Deno.remove(temporary, { recursive: true }).catch(() => {});
    throw error;
  }
  const hadPrevious = await exists(path);
  if (hadPrevious) await Deno.rename(path, previous);
  await Deno.rename(temporary, path);
  if (hadPrevious) await Deno.remove(previous, { recursive: true });
}

export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}
