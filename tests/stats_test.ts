/**
 * The statistics behind the report's "within noise": values worked by hand.
 */
import assert from "node:assert/strict";
import {
  binomialInterval,
  bootstrapMean,
  discordant,
  holdsZero,
  mcnemarExact,
  pairedBootstrap,
  summarize,
} from "../util/stats.ts";

const close = (actual: number, expected: number, tolerance = 1e-4) =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${actual} is not ${expected}`);

Deno.test("McNemar's exact p-value: binomial tails worked by hand", () => {
  // Models that never disagree tell nothing apart.
  assert.equal(mcnemarExact(0, 0), 1);
  // One-sided: 5 discordant images all favour A: 2 · (1/2)^5.
  close(mcnemarExact(5, 0), 0.0625);
  close(mcnemarExact(0, 5), 0.0625);
  // 1 against 4: 2 · (C(5,0) + C(5,1)) / 32.
  close(mcnemarExact(1, 4), 0.375);
  // An even split is capped at 1: 2 · 42/64 > 1.
  assert.equal(mcnemarExact(3, 3), 1);
  // 10 against 0: 2/1024.
  close(mcnemarExact(10, 0), 2 / 1024, 1e-9);
});

Deno.test("Wilson binomial intervals match the textbook values", () => {
  const none = binomialInterval(0, 10);
  close(none.low, 0);
  close(none.high, 0.2775);
  const half = binomialInterval(50, 100);
  close(half.low, 0.4038);
  close(half.high, 0.5962);
  const all = binomialInterval(10, 10);
  close(all.low, 0.7225);
  close(all.high, 1);
  assert.throws(() => binomialInterval(11, 10), /successes <= trials/);
});

Deno.test("summaries over seeds: mean, sample deviation and a t interval", () => {
  const s = summarize([1, 2, 3]);
  assert.equal(s.mean, 2);
  assert.equal(s.std, 1);
  close(s.ci95!.low, 2 - 4.303 / Math.sqrt(3));
  close(s.ci95!.high, 2 + 4.303 / Math.sqrt(3));
  const one = summarize([0.99]);
  assert.equal(one.std, 0);
  assert.equal(one.ci95, null);
  assert.throws(() => summarize([]), /no values/);
});

Deno.test("paired bootstrap: reproducible for a seed, centred on the observed difference", () => {
  const a = Array.from({ length: 400 }, (_, i) => i % 10 !== 0); // 90%
  const b = Array.from({ length: 400 }, (_, i) => i % 5 !== 0); // 80%
  const first = pairedBootstrap(a, b, 7, 500);
  assert.deepEqual(pairedBootstrap(a, b, 7, 500), first);
  assert.notDeepEqual(pairedBootstrap(a, b, 8, 500).ci95, first.ci95);
  close(first.difference, 0.1);
  assert.ok(first.ci95.low < 0.1 && first.ci95.high > 0.1);
  assert.ok(!holdsZero(first.ci95), "a 10-point difference on 400 images is not noise");
  // Identical results: every resample's difference is 0.
  const same = pairedBootstrap(a, a, 1, 100);
  assert.deepEqual(same.ci95, { low: 0, high: 0 });
  assert.ok(holdsZero(same.ci95));
  assert.deepEqual(discordant([true, false, true], [true, true, false]), { onlyA: 1, onlyB: 1 });
  assert.throws(() => discordant([true], [true, false]), /same images/);
});

Deno.test("bootstrap of a mean paired difference: exact mean, seeded interval, empty input refused", () => {
  // Scores in [0, 1]: half the images 0.5 better for A, the rest equal.
  const delta = Array.from({ length: 300 }, (_, i) => (i % 2 === 0 ? 0.5 : 0));
  const result = bootstrapMean(delta, 11, 400);
  close(result.difference, 0.25);
  assert.deepEqual(bootstrapMean(delta, 11, 400), result);
  assert.ok(result.ci95.low > 0.15 && result.ci95.high < 0.35 && result.ci95.low < 0.25);
  assert.throws(() => bootstrapMean([], 1), /at least one/);
});
