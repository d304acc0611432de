/**
 * Names for models given as files, where several files share a name: the
 * file's name without `.onnx` ("vgg"), qualified by as few of the folders
 * above it as tell it from the other files of that name. Shared by the
 * evaluation commands (distinctModelNames) and the ensemble export, which
 * differ only in which files keep their plain name.
 */
import { basename, dirname, resolve, sep } from "node:path";
import { UsageError } from "./cli.ts";

/** A file's plain name and the folders above it, nearest first. */
export interface FileName {
  plain: string;
  folders: string[];
}

/** `file`'s name qualified by its nearest `depth` folders ("seed-43/vgg" at depth 1). */
export function qualifiedName({ plain, folders }: FileName, depth: number): string {
  return [...folders.slice(0, depth).reverse(), plain].join("/");
}

/**
 * The fewest folders, `least` or more, that tell `files[i]` from every other
 * file of its plain name (none of them with the same folders as deep), or
 * undefined where even all its folders do not.
 */
export function foldersToTellApart(
  files: readonly FileName[],
  i: number,
  least = 0,
): number | undefined {
  const own = files[i];
  const sameAt = (other: FileName, depth: number) =>
    qualifiedName(other, depth) === qualifiedName(own, depth);
  for (let depth = least; depth <= own.folders.length; depth++) {
    if (!files.some((other, j) => j !== i && other.plain === own.plain && sameAt(other, depth))) {
      return depth;
    }
  }
  return undefined;
}

/**
 * Names for the models of one evaluation, one a file, as its metrics files
 * key them: the first file of a name keeps it plain ("vgg"), so a lone
 * model's key does not depend on where it lies; a later one takes the folders
 * above it (a `models/` folder right above it left out) as far up as it takes
 * to tell it from the other files of that name ("mild/vgg",
 * "mild-shift/seeds/seed-43/vgg" beside "mild/seeds/seed-43/vgg": seed-43/vgg
 * would not tell two runs' seed 43 apart). The same file twice is refused.
 */
export function distinctModelNames(files: readonly string[]): string[] {
  const seen = new Set<string>();
  const entries: FileName[] = files.map((file) => {
    const absolute = resolve(file);
    if (seen.has(absolute)) throw new UsageError(`${file} is given twice as a model.`);
    seen.add(absolute);
    // A results folder's models/ says nothing about which run it holds.
    const folder = basename(dirname(absolute)) === "models"
      ? dirname(dirname(absolute))
      : dirname(absolute);
    return { plain: basename(file, ".onnx"), folders: folder.split(sep).reverse() };
  });
  return entries.map((entry, i) => {
    const first = !entries.slice(0, i).some((other) => other.plain === entry.plain);
    return qualifiedName(
      entry,
      first ? 0 : foldersToTellApart(entries, i, 1) ?? entry.folders.length,
    );
  });
}

/** A model's name as part of a file name ("seed-43/vgg" → "seed-43_vgg"). */
export function fileSafeName(name: string): string {
  return name.replaceAll("/", "_");
}
