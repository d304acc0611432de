/**
 * Distillation (`train --teacher`): the teachers' probabilities mix into the
 * targets as the loss is linear in them, the teachers' mean is what each gives,
 * bad teachers are refused in one sentence, and a distilled run trains on one
 * thread and on workers and records what it distilled from.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { tf } from "../deps_tfjs.ts";
import { loadMnist, pixelsOf } from "../data/mnist.ts";
import { useWasmBackend } from "../kernels/backend.ts";
import { buildModel } from "../models/architectures.ts";
import { saveLayersModel } from "../models/layers_io.ts";
import { shardGradients, teacherProbabilities } from "../train/steps.ts";
import { loadTeachers, TeacherError } from "../train/teachers.ts";
import { Random } from "../util/random.ts";
import { runScript } from "./run_script.ts";
import { tempDir } from "./temp_dir.ts";

await useWasmBackend();
const data = await loadMnist();
const indices = Array.from({ length: 32 }, (_, i) => i);
const pixels = pixelsOf(data.train, indices);
const labels = Uint8Array.from(indices, (i) => data.train.labels[i]);

function largestDifference(a: Float32Array, b: ArrayLike<number>): number {
  return a.reduce((worst, value, i) => Math.max(worst, Math.abs(value - b[i])), 0);
}

/** Rows of random class probabilities, one a digit. */
function randomTargets(count: number, random: Random): Float32Array {
  const targets = new Float32Array(count * 10);
  for (let row = 0; row < count; row++) {
    let sum = 0;
    for (let k = 0; k < 10; k++) sum += targets[row * 10 + k] = random.next() + 1e-3;
    for (let k = 0; k < 10; k++) targets[row * 10 + k] /= sum;
  }
  return targets;
}

Deno.test("soft targets mix the teachers' gradients with the labels' in proportion, leaking nothing", () => {
  const model = buildModel("baseline");
  const before = tf.memory().numTensors;
  const gradients = (soft?: { probabilities: Float32Array; weight: number }) =>
    shardGradients(model, pixels, labels, labels.length, undefined, soft).gradients;
  const plain = gradients();
  const oneHot = new Float32Array(labels.length * 10);
  labels.forEach((label, row) => oneHot[row * 10 + label] = 1);
  const scale = plain.reduce((largest, value) => Math.max(largest, Math.abs(value)), 0);
  assert.ok(
    largestDifference(gradients({ probabilities: oneHot, weight: 1 }), plain) < 1e-5 * scale,
    "the labels as a teacher are the labels",
  );
  const teacher = randomTargets(labels.length, new Random(3));
  assert.deepEqual(
    gradients({ probabilities: teacher, weight: 0 }),
    plain,
    "weight 0: labels only",
  );
  const full = gradients({ probabilities: teacher, weight: 1 });
  assert.ok(largestDifference(full, plain) > 1e-3 * scale, "another teacher moves the gradients");
  const mixed = gradients({ probabilities: teacher, weight: 0.3 });
  const expected = plain.map((value, i) => 0.7 * value + 0.3 * full[i]);
  assert.ok(largestDifference(mixed, expected) < 1e-5 * scale, "linear in the weight");
  assert.equal(tf.memory().numTensors, before);
  model.dispose();
});

Deno.test("the teachers' probabilities are the mean of each one's, in inference mode", () => {
  const teachers = [buildModel("baseline"), buildModel("improved")];
  const before = tf.memory().numTensors;
  const mean = teacherProbabilities(teachers, pixels);
  assert.equal(tf.memory().numTensors, before);
  const each = teachers.map((teacher) =>
    tf.tidy(() =>
      (teacher.predict(tf.tensor4d(pixels, [labels.length, 28, 28, 1])) as tf.Tensor)
        .dataSync() as Float32Array
    )
  );
  assert.ok(largestDifference(mean, each[0].map((p, i) => (p + each[1][i]) / 2)) < 1e-6);
  for (let row = 0; row < labels.length; row++) {
    const sum = mean.slice(row * 10, row * 10 + 10).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-5);
  }
  teachers.forEach((teacher) => teacher.dispose());
});

Deno.test("a teacher folder without a model, or a model that does not read digits, is refused by name", async () => {
  await using temp = await tempDir();
  await assert.rejects(
    loadTeachers([join(temp.path, "none")]),
    (error: Error) =>
      error instanceof TeacherError && /--teacher .*none holds no model\.json/.test(error.message),
  );
  const fives = tf.sequential({
    layers: [tf.layers.flatten({ inputShape: [28, 28, 1] }), tf.layers.dense({ units: 5 })],
  });
  const dir = join(temp.path, "fives");
  await saveLayersModel(fives, dir);
  fives.dispose();
  const before = tf.memory().numTensors;
  await assert.rejects(
    loadTeachers([dir]),
    (error: Error) =>
      error instanceof TeacherError && /maps \[28,28,1\] to \[5\]/.test(error.message),
  );
  assert.equal(tf.memory().numTensors, before, "the refused teacher is disposed");
});

Deno.test("train --teacher distils on one thread and on workers, and records it", async () => {
  await using temp = await tempDir();
  const quick = ["--model", "baseline", "--epochs", "1", "--limit", "512"];
  const teacher = await runScript("train/main.ts", [...quick, "--out", join(temp.path, "t")]);
  assert.equal(teacher.code, 0, teacher.stderr);
  const teacherDir = join(temp.path, "t", "models", "baseline");
  const readMetrics = async (out: string) =>
    JSON.parse(await Deno.readTextFile(join(out, "metrics", "baseline_metrics.json")));
  const undistilled = await readMetrics(join(temp.path, "t"));
  for (const workers of ["1", "2"]) {
    const out = join(temp.path, `student-${workers}`);
    const args = ["--teacher", teacherDir, "--distill", "0.7", "--workers", workers, "--out", out];
    const student = await runScript("train/main.ts", [...quick, ...args]);
    assert.equal(student.code, 0, student.stderr);
    const metrics = await readMetrics(out);
    assert.deepEqual(metrics.config.distillation, { teachers: [teacherDir], weight: 0.7 });
    assert.ok(Number.isFinite(metrics.history[0].loss));
    if (workers === "2") {
      // The seed, images and workers of the teacher's own run: only the targets differ.
      assert.notEqual(metrics.history[0].loss, undistilled.history[0].loss);
    }
  }
  // A resumed run keeps its teachers; another weight is refused, naming both.
  const changed = await runScript("train/main.ts", [
    ...["--model", "baseline", "--epochs", "2", "--limit", "512", "--resume"],
    ...["--teacher", teacherDir, "--distill", "0.3", "--out", join(temp.path, "student-1")],
  ]);
  assert.equal(changed.code, 1);
  assert.match(
    changed.stderr,
    /^error: --teacher and --distill cannot change on --resume: the run in .* distils from .* at weight 0\.7, the command asks for .* at weight 0\.3\.$/,
  );
});
