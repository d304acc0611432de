/**
 * Bending a digit with the robustness suite's own transforms, as the lab's
 * sliders do: one affine warp for rotation, shift, zoom and shear
 * (transforms/affine.ts), then the suite's elastic, blur and noise families
 * and MNIST-C's brightness and stripe at the slider's strength. Pure, so it
 * runs in the browser and in tests alike.
 */
import { inverseAffine, warpAffine } from "../transforms/affine.ts";
import { brighten, invertSideColumns } from "../robustness/corruptions.ts";
import { type Family, familyByName } from "../robustness/families.ts";
import { Random } from "../util/random.ts";

export interface Bend {
  rotation: number;
  shiftX: number;
  shiftY: number;
  zoom: number;
  shear: number;
  elastic: number;
  blur: number;
  noise: number;
  brightness: number;
  stripe: number;
}

export interface BendControl {
  key: keyof Bend;
  label: string;
  min: number;
  max: number;
  step: number;
  /** The suite's family whose accuracy curve this slider moves along (robustness.json). */
  family: string;
  /** For a family measured at one MNIST-C severity: the slider value that severity is. */
  severity?: number;
}

/** The sliders, over the ranges the suite sweeps (MNIST-C's severity for brightness and stripe). */
export const BEND_CONTROLS: readonly BendControl[] = [
  { key: "rotation", label: "rotation (°)", min: -60, max: 60, step: 1, family: "rotation" },
  { key: "shiftX", label: "shift x (px)", min: -6, max: 6, step: 0.5, family: "shift_x" },
  { key: "shiftY", label: "shift y (px)", min: -6, max: 6, step: 0.5, family: "shift_y" },
  { key: "zoom", label: "zoom", min: 0.5, max: 1.5, step: 0.05, family: "zoom" },
  { key: "shear", label: "shear", min: -0.6, max: 0.6, step: 0.05, family: "shear" },
  { key: "elastic", label: "elastic (alpha)", min: 0, max: 80, step: 1, family: "elastic" },
  { key: "blur", label: "blur (sigma)", min: 0, max: 2, step: 0.05, family: "gaussian_blur" },
  { key: "noise", label: "noise (sigma)", min: 0, max: 0.4, step: 0.01, family: "gaussian_noise" },
  {
    key: "brightness",
    label: "brightness (+)",
    min: 0,
    max: 1,
    step: 0.05,
    family: "mnist_c/brightness",
    severity: 0.5,
  },
  {
    key: "stripe",
    label: "stripe (columns)",
    min: 0,
    max: 14,
    step: 1,
    family: "mnist_c/stripe",
    severity: 7,
  },
];

export const NO_BEND: Readonly<Bend> = {
  rotation: 0,
  shiftX: 0,
  shiftY: 0,
  zoom: 1,
  shear: 0,
  elastic: 0,
  blur: 0,
  noise: 0,
  brightness: 0,
  stripe: 0,
};

/** The lab's seed for the elastic field and noise pattern: one per page, so a slider scales one perturbation. */
export const BEND_SEED = 7;

function family(name: string): Family {
  const found = familyByName(name);
  if (!found) throw new Error(`The robustness suite has no family "${name}".`);
  return found;
}

/**
 * `image` (784 values in [0, 1]) bent as `bend` says. The elastic field and
 * the noise pattern are drawn from `seed`, so moving a slider scales one
 * perturbation, as a sweep of the suite does.
 */
export function bendDigit(image: Float32Array, bend: Bend, seed = BEND_SEED): Float32Array {
  let out: Float32Array = image.slice();
  const { rotation, shiftX, shiftY, zoom, shear } = bend;
  if (rotation !== 0 || shiftX !== 0 || shiftY !== 0 || zoom !== 1 || shear !== 0) {
    const warped = new Float32Array(out.length);
    const params = { rotation: (rotation * Math.PI) / 180, shiftX, shiftY, zoom, shear };
    warpAffine(out, 0, warped, 0, inverseAffine(params));
    out = warped;
  }
  const levels: Array<[string, number]> = [
    ["elastic", bend.elastic],
    ["gaussian_blur", bend.blur],
    ["gaussian_noise", bend.noise],
  ];
  for (const [index, [name, level]] of levels.entries()) {
    if (level === 0) continue;
    const chosen = family(name);
    const random = new Random(seed + index);
    const prepared = chosen.prepare?.(out, random);
    out = chosen.apply(out, level, random, prepared, 0);
  }
  if (bend.brightness !== 0) out = brighten(out, bend.brightness);
  if (bend.stripe !== 0) out = invertSideColumns(out, bend.stripe);
  return out;
}
