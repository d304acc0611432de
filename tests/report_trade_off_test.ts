import assert from "node:assert/strict";
import type { ReportInputs } from "../report/inputs.ts";
import { CLEAN_TARGET, FAMILY_MARGIN, tradeOffPoints, tradeOffSpec } from "../report/trade_off.ts";

const seedsFile = (model: string, accuracies: number[]) => ({
  model,
  seeds: accuracies.map((_, i) => 42 + i),
  runs: accuracies.map((test_accuracy, i) => ({ seed: 42 + i, dir: "results", test_accuracy })),
  summary: {},
});

const withRotation = (rotation: number) => ({ summary: { families: { rotation } } });

function inputs(): ReportInputs {
  return {
    training: {},
    testSets: { committee: { accuracy: 0.9972 } },
    seeds: {
      robust: seedsFile("robust", [0.9950, 0.9956, 0.9950]),
      resnet: seedsFile("resnet", [0.9960, 0.9962, 0.9958]),
      // No rotation sweep: no point.
      vit: seedsFile("vit", [0.98, 0.98, 0.98]),
      // Far under the target: a point, not plotted.
      separable: seedsFile("separable", [0.9917, 0.9917, 0.9917]),
    },
    seedRuns: {},
    ensembleRuns: [],
    robustness: {
      families: {},
      models: {
        robust: withRotation(0.947),
        resnet: withRotation(0.93),
        separable: withRotation(0.926),
        committee: withRotation(0.934),
      },
    },
  } as unknown as ReportInputs;
}

Deno.test("trade-off points: clean mean over seeds with its t interval, against the first seed's rotations", () => {
  const points = tradeOffPoints(inputs());
  assert.deepEqual(points.map((p) => p.row), ["robust", "resnet", "separable", "committee"]);
  const robust = points[0];
  const mean = (0.9950 + 0.9956 + 0.9950) / 3;
  const sd = Math.sqrt(((0.9950 - mean) ** 2 * 2 + (0.9956 - mean) ** 2) / 2);
  assert.ok(Math.abs(robust.clean - mean) < 1e-12);
  // Student's t with 2 degrees of freedom: 4.303.
  assert.ok(Math.abs(robust.high - (mean + 4.303 * sd / Math.sqrt(3))) < 1e-6);
  assert.ok(Math.abs(robust.low - (mean - 4.303 * sd / Math.sqrt(3))) < 1e-6);
  assert.equal(robust.kind, "single network");
  assert.equal(robust.rotation, 0.947);
  const committee = points[3];
  assert.equal(committee.kind, "ensemble");
  assert.equal(committee.seeds, 1);
  assert.equal(committee.low, committee.clean, "one file, no interval");
});

Deno.test("the trade-off plot draws the target's two lines where the target puts them", () => {
  const spec = tradeOffSpec(tradeOffPoints(inputs()), 0.947);
  const rules = spec.layer.slice(0, 2).map((layer) => layer.data.values[0]);
  assert.deepEqual(rules, [{ clean: CLEAN_TARGET }, { rotation: 0.947 - FAMILY_MARGIN }]);
  assert.equal(CLEAN_TARGET, 0.996);
  assert.match(JSON.stringify(spec.title), /99\.6% clean, rotations ≥ 93\.7%/);
  const plotted = spec.layer[3].data.values as { row: string }[];
  assert.deepEqual(plotted.map((p) => p.row), ["robust", "resnet", "committee"]);
  assert.match(JSON.stringify(spec.title), /left out, under 99\.2% clean: separable/);
});

Deno.test("trade-off labels: the VGG's recipe rows by their recipe, another architecture's with its name", () => {
  const given = inputs();
  const turnedRun = (seed: number) => ({ seed, test: { accuracy: 0.996 } });
  for (const row of ["vgg:mild", "vgg-gap:mild"]) {
    given.training[row] = { seed: 42, test_accuracy: 0.9962 } as never;
  }
  given.turnedRuns = {
    "turned:mild-shift": [turnedRun(42)],
    "turned:vgg-gap:mild": [turnedRun(42)],
  } as never;
  for (const row of ["vgg:mild", "vgg-gap:mild", "turned:mild-shift", "turned:vgg-gap:mild"]) {
    given.robustness!.models[row] = withRotation(0.9) as never;
  }
  const labels = Object.fromEntries(tradeOffPoints(given).map((p) => [p.row, p.label]));
  assert.deepEqual(
    [labels["vgg:mild"], labels["vgg-gap:mild"]],
    ["mild", "vgg-gap, mild"],
  );
  assert.deepEqual(
    [labels["turned:mild-shift"], labels["turned:vgg-gap:mild"]],
    ["turned (mild-shift)", "turned (vgg-gap, mild)"],
  );
});
