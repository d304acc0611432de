import assert from "node:assert/strict";
import { epochLine } from "../train/progress.ts";
import type { EpochRecord } from "../train/records.ts";

const record: EpochRecord = {
  epoch: 3,
  learning_rate: 8e-4,
  loss: 0.12345,
  accuracy: 0.9612,
  val_loss: 0.0456,
  val_accuracy: 0.9871,
  seconds: 75,
  images_per_s: 812.4,
};

Deno.test("an epoch line names every figure of the record", () => {
  assert.equal(
    epochLine(record, 12),
    "epoch 3/12  loss 0.1235  acc 96.12%  val_loss 0.0456  val_acc 98.71%  812 img/s  1m15s  lr 8.00e-4",
  );
});

Deno.test("an epoch line shows the last step's weights beside the averaged ones", () => {
  const line = epochLine({ ...record, val_accuracy_live: 0.9855 }, 12);
  assert.match(line, /val_acc 98\.71% \(last step's weights 98\.55%\)/);
});
