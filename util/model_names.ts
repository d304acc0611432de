/**
 * Names for the models of one evaluation, one a file, as its metrics files
 * key them: the file's name without `.onnx` ("vgg"), and where that name is
 * already taken by an earlier file, the folders above it (a `models/` folder
 * right above it left out) as far up as it takes to tell them apart
 * ("seed-43/vgg", then "mild-shift/seeds/seed-43/vgg"). The first file keeps
 * the plain name, so a lone model's key does not depend on where it lies.
 */
import { basename, dirname, resolve } from "node:path";
import { UsageError } from "./cli.ts";

export function distinctModelNames(files: readonly string[]): string[] {
  const taken = new Set<string>();
  const seen = new Set<string>();
  return files.map((file) => {
    const absolute = resolve(file);
    if (seen.has(absolute)) throw new UsageError(`${file} is given twice as a model.`);
    seen.add(absolute);
    let name = basename(file).replace(/\.onnx$/, "");
    // A results folder's models/ says nothing about which run it holds.
    let folder = dirname(absolute);
    if (basename(folder) === "models") folder = dirname(folder);
    // Each step makes the name longer and only so many are taken, so this ends.
    while (taken.has(name)) {
      name = `${basename(folder)}/${name}`;
      folder = dirname(folder);
    }
    taken.add(name);
    return name;
  });
}

/** A model's name as part of a file name ("seed-43/vgg" → "seed-43_vgg"). */
export function fileSafeName(name: string): string {
  return name.replaceAll("/", "_");
}
