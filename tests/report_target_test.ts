import assert from "node:assert/strict";
import type { ReportInputs } from "../report/inputs.ts";
import { referenceSpread, targetMarkdown, targetRows } from "../report/target.ts";
import { robustnessBySeed } from "../report/robust.ts";

const SEEDS = [42, 43, 44];

/** A robustness file holding one model's family means. */
const robustnessFile = (name: string, families: Record<string, number>) => ({
  models: { [name]: { summary: { families, mnist_c_mean: null, worst: null } } },
});

const seedsFile = (accuracies: number[]) => ({
  runs: accuracies.map((test_accuracy, i) => ({ seed: SEEDS[i], test_accuracy })),
});

const testSet = (accuracy: number) => ({ accuracy });

// The robust CNN: zigzag moves 1.5 points between its seeds, shift_y 0.2.
const ROBUST = [
  { shift_y: 0.990, "mnist_c/zigzag": 0.939 },
  { shift_y: 0.988, "mnist_c/zigzag": 0.940 },
  { shift_y: 0.989, "mnist_c/zigzag": 0.925 },
];

/**
 * A turned model that misses the bar on one seed for each family but whose
 * means hold (shift_y −1.04, −0.88, −0.75; zigzag +0.36, −1.77, +1.56), a
 * named recipe's run at 99.56%, and a model evaluated on one seed only.
 */
function inputs(): ReportInputs {
  const turned = [
    { shift_y: 0.9796, "mnist_c/zigzag": 0.9426 },
    { shift_y: 0.9792, "mnist_c/zigzag": 0.9223 },
    { shift_y: 0.9815, "mnist_c/zigzag": 0.9406 },
  ];
  return {
    training: {},
    testSets: {},
    seeds: {
      robust: seedsFile([0.9954, 0.9955, 0.9948]),
      "vgg:mild-mix": seedsFile([0.9955, 0.9957, 0.9956]),
      resnet: seedsFile([0.9960, 0.9961, 0.9962]),
    },
    seedRuns: {
      robust: SEEDS.map((seed, i) => ({ seed, robustness: robustnessFile("robust", ROBUST[i]) })),
      // A named recipe's files name the model by its architecture.
      "vgg:mild-mix": SEEDS.map((seed, i) => ({
        seed,
        robustness: robustnessFile("vgg", { shift_y: ROBUST[i].shift_y, "mnist_c/zigzag": 0.95 }),
      })),
      resnet: [{ seed: 42, robustness: robustnessFile("resnet", ROBUST[0]) }, { seed: 43 }],
    },
    turnedRuns: {
      turned: SEEDS.map((seed, i) => ({
        seed,
        test: testSet(0.9963),
        robustness: robustnessFile("turned", turned[i]),
      })),
    },
    ensembleRuns: [],
  } as unknown as ReportInputs;
}

const ROWS = ["robust", "resnet", "vgg:mild-mix", "turned", "ensemble"];

Deno.test("robustness by seed reads a named recipe's run under its architecture and a turned model's under its own name", () => {
  const given = inputs();
  assert.deepEqual([...robustnessBySeed(given, "vgg:mild-mix").keys()], SEEDS);
  assert.equal(robustnessBySeed(given, "vgg:mild-mix").get(43)!.families["mnist_c/zigzag"], 0.95);
  assert.equal(robustnessBySeed(given, "turned").get(44)!.families.shift_y, 0.9815);
  assert.equal(robustnessBySeed(given, "resnet").size, 1);
});

Deno.test("the target's rows: each family against the same seed's robust CNN, read on each seed, on the means and on the intervals", () => {
  const rows = targetRows(inputs(), ROWS);
  // The reference and the ensemble are not rows; a model measured on one seed is left out.
  assert.deepEqual(rows.map((row) => row.model), ["vgg:mild-mix", "turned"]);
  const turned = rows.find((row) => row.model === "turned")!;
  assert.deepEqual(turned.seeds, SEEDS);
  // Its lowest family on the means is shift_y: (−1.04 − 0.88 − 0.75) / 3 points.
  const [lowest, next] = turned.gaps;
  assert.equal(lowest.family, "shift_y");
  assert.ok(Math.abs(lowest.overSeeds.mean - (-0.0104 - 0.0088 - 0.0075) / 3) < 1e-9);
  assert.ok(Math.abs(lowest.bySeed.get(42)! - -0.0104) < 1e-9);
  assert.equal(next.family, "mnist_c/zigzag");
  assert.ok(Math.abs(next.bySeed.get(43)! - -0.0177) < 1e-9);
  // 99.63% on every seed; one family below the bar on seed 42 and another on 43; every mean within it;
  // shift_y's interval (t, 2 degrees of freedom) reaches below −1 point.
  assert.ok(Math.abs(turned.clean.mean - 0.9963) < 1e-12);
  assert.equal(turned.eachSeed, false);
  assert.equal(turned.means, true);
  assert.ok(lowest.overSeeds.ci95!.low < -0.01);
  assert.equal(turned.intervals, false);
  // Every family holds on every seed, but the clean mean is under 99.6%: no reading meets the target.
  const mix = rows.find((row) => row.model === "vgg:mild-mix")!;
  assert.ok(mix.gaps.every((gap) => [...gap.bySeed.values()].every((d) => d >= -0.01)));
  assert.deepEqual([mix.eachSeed, mix.means, mix.intervals], [false, false, false]);
});

Deno.test("a model whose families all hold on every seed, with a clean interval above the bar, meets all three readings", () => {
  const given = inputs();
  given.seeds["vgg:mild-mix"] = seedsFile([0.9965, 0.9966, 0.9967]) as never;
  const mix = targetRows(given, ROWS).find((row) => row.model === "vgg:mild-mix")!;
  assert.deepEqual([mix.eachSeed, mix.means, mix.intervals], [true, true, true]);
});

Deno.test("the reference's spread names the families on which its own seeds differ by more than a point", () => {
  const spread = referenceSpread(inputs(), SEEDS);
  assert.deepEqual(spread.map((s) => s.family), ["mnist_c/zigzag"]);
  assert.equal(spread[0].low, 0.925);
  assert.equal(spread[0].high, 0.940);
});

Deno.test("the target's section names each row's misses and its verdicts, and is absent without rows", () => {
  const markdown = targetMarkdown(inputs(), ROWS)!;
  const row = markdown.split("\n").find((line) =>
    line.startsWith("| VGG-style CNN, mild recipe, behind")
  )!;
  assert.match(row, /\| 42, 43, 44 \| 99\.63% /);
  assert.match(row, /shift_y on 42 \(−1\.04\); mnist_c\/zigzag on 43 \(−1\.77\)/);
  assert.match(row, /\| not met \| met \| not met \|$/);
  assert.match(markdown, /mnist_c\/zigzag \(92\.50% to 94\.00%\)/);
  assert.equal(targetMarkdown(inputs(), ["robust", "resnet", "ensemble"]), undefined);
});
