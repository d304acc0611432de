/**
 * Names for the models of one evaluation, one a file, as its metrics files
 * key them: the file's name without `.onnx` ("vgg"), and where that name is
 * already taken by an earlier file, the folders above it (a `models/` folder
 * right above it left out) as far up as it takes to tell it from the other
 * files of that name ("mild/vgg", "mild-shift/seeds/seed-43/vgg" beside
 * "mild/seeds/seed-43/vgg"). The first file keeps the plain name, so a lone
 * model's key does not depend on where it lies.
 */
import { basename, dirname, resolve, sep } from "node:path";
import { UsageError } from "./cli.ts";

export function distinctModelNames(files: readonly string[]): string[] {
  const seen = new Set<string>();
  const entries = files.map((file) => {
    const absolute = resolve(file);
    if (seen.has(absolute)) throw new UsageError(`${file} is given twice as a model.`);
    seen.add(absolute);
    // A results folder's models/ says nothing about which run it holds.
    const folder = basename(dirname(absolute)) === "models"
      ? dirname(dirname(absolute))
      : dirname(absolute);
    return { plain: basename(file, ".onnx"), folders: folder.split(sep) };
  });
  const taken = new Set<string>();
  return entries.map(({ plain, folders }, i) => {
    let name = plain;
    // The folders above, nearest first, until they are this file's own among
    // the files of its name: seed-43/vgg would not tell two runs' seed 43 apart.
    for (let k = 1; taken.has(name) && k <= folders.length; k++) {
      const suffix = folders.slice(-k).join("/");
      const shared = entries.some((other, j) =>
        j !== i && other.plain === plain && other.folders.slice(-k).join("/") === suffix
      );
      name = shared ? name : `${suffix}/${plain}`;
    }
    if (taken.has(name)) name = `${folders.join("/")}/${plain}`;
    taken.add(name);
    return name;
  });
}

/** A model's name as part of a file name ("seed-43/vgg" → "seed-43_vgg"). */
export function fileSafeName(name: string): string {
  return name.replaceAll("/", "_");
}
