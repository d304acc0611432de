/**
 * The lab's sliders are the robustness suite's transforms: each bent alone
 * matches the suite's family (or MNIST-C corruption) at that level.
 */
import assert from "node:assert/strict";
import { loadTestSet, pixelsOf } from "../data/mnist.ts";
import { type Bend, BEND_CONTROLS, bendDigit, NO_BEND } from "../lab/bend.ts";
import { MNIST_C } from "../robustness/corruptions.ts";
import { FAMILIES, familyByName } from "../robustness/families.ts";
import { Random } from "../util/random.ts";

const test = await loadTestSet();
const digit = pixelsOf(test, [0]);

function bent(changes: Partial<Bend>, seed = 7): Float32Array {
  return bendDigit(digit, { ...NO_BEND, ...changes }, seed);
}

function suite(family: string, level: number): Float32Array {
  const chosen = familyByName(family)!;
  const random = new Random(1);
  return chosen.apply(digit, level, random, chosen.prepare?.(digit, random), 0);
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  return a.reduce((max, value, i) => Math.max(max, Math.abs(value - b[i])), 0);
}

Deno.test("no bend leaves the digit as it is", () => {
  assert.deepEqual(bent({}), digit);
});

Deno.test("each geometric slider is the suite's family at that level", () => {
  const cases: Array<[Partial<Bend>, string, number]> = [
    [{ rotation: 35 }, "rotation", 35],
    [{ rotation: -50 }, "rotation", -50],
    [{ shiftX: 4 }, "shift_x", 4],
    [{ shiftY: -3 }, "shift_y", -3],
    [{ zoom: 0.7 }, "zoom", 0.7],
    [{ shear: 0.4 }, "shear", 0.4],
    [{ blur: 1.5 }, "gaussian_blur", 1.5],
  ];
  for (const [changes, family, level] of cases) {
    const difference = maxDifference(bent(changes), suite(family, level));
    assert.ok(difference < 1e-6, `${family} ${level}: differs by ${difference}`);
    assert.ok(maxDifference(bent(changes), digit) > 0.1, `${family} ${level} changed nothing`);
  }
});

Deno.test("brightness and stripe at MNIST-C's severity are its corruptions", () => {
  const random = new Random(1);
  assert.deepEqual(bent({ brightness: 0.5 }), MNIST_C.brightness(digit, random));
  assert.deepEqual(bent({ stripe: 7 }), MNIST_C.stripe(digit, random));
  assert.ok(maxDifference(bent({ stripe: 3 }), bent({ stripe: 7 })) > 0.5);
});

Deno.test("noise and elastic scale one seeded perturbation", () => {
  for (const key of ["noise", "elastic"] as const) {
    const low = key === "noise" ? 0.1 : 20;
    assert.deepEqual(bent({ [key]: low }), bent({ [key]: low }), `${key} is not seeded`);
    assert.ok(maxDifference(bent({ [key]: low }, 7), bent({ [key]: low }, 8)) > 0.05);
  }
  // Gaussian noise: the same pattern, twice the strength, where nothing clips.
  const once = bent({ noise: 0.05 }), twice = bent({ noise: 0.1 });
  let checked = 0;
  for (let i = 0; i < 784; i++) {
    if ([once[i], twice[i]].some((v) => v <= 0 || v >= 1)) continue;
    assert.ok(Math.abs((twice[i] - digit[i]) - 2 * (once[i] - digit[i])) < 1e-5);
    checked++;
  }
  assert.ok(checked > 20, `only ${checked} pixels checked`);
});

Deno.test("every slider names a family of the suite and its range holds no bend", () => {
  const names = new Set(FAMILIES.map((family) => family.name));
  for (const control of BEND_CONTROLS) {
    assert.ok(names.has(control.family), `${control.key}: no family ${control.family}`);
    const neutral = NO_BEND[control.key];
    assert.ok(control.min <= neutral && neutral <= control.max, `${control.key} range`);
    if (control.severity !== undefined) {
      assert.ok(control.min <= control.severity && control.severity <= control.max);
    }
  }
  assert.equal(new Set(BEND_CONTROLS.map((c) => c.key)).size, Object.keys(NO_BEND).length);
});
