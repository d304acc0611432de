/**
 * `deno task export --turned C.onnx --turn T.onnx`: a classifier behind a
 * learned turn, written as one ONNX file once it matches its pieces.
 */
import { basename } from "node:path";
import { loadMnist, pixelsOf } from "../data/mnist.ts";
import { MAX_TURN, turnEach } from "../transforms/augment.ts";
import { intFlag, UsageError } from "../util/cli.ts";
import { Random } from "../util/random.ts";
import {
  DEFAULT_GATE_DEGREES,
  exportTurned,
  TURN_PICKS,
  TURNED_TOLERANCE,
  type TurnPick,
} from "./turned.ts";

/** Seed of the turns given to the verification digits, so that the turn path is checked. */
const VERIFICATION_TURN_SEED = 4241;

async function readModelFile(path: string, what: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new UsageError(`There is no ${what} at ${path}.`);
    }
    throw error;
  }
}

export async function runTurnedExport(
  values: { turned?: string; turn?: string; out?: string; gate?: string; pick?: string },
  indices: number[],
  command: string,
): Promise<void> {
  const classifierPath = values.turned!;
  if (!values.turn) {
    throw new UsageError(
      "--turned needs --turn ANGLE.onnx, the angle network's export (deno task train:turn).",
    );
  }
  const onnxPath = values.out ?? classifierPath.replace(/\.onnx$/, "") + "-turned.onnx";
  if (!onnxPath.endsWith(".onnx")) {
    throw new UsageError(
      `With --turned, --out names the ONNX file (ending in .onnx), got "${onnxPath}".`,
    );
  }
  const gateDegrees = intFlag(values.gate, "gate", DEFAULT_GATE_DEGREES, 0, 89);
  const pick = (values.pick ?? "gate") as TurnPick;
  if (!TURN_PICKS.includes(pick)) {
    throw new UsageError(`--pick must be ${TURN_PICKS.join(" or ")}, got "${values.pick}".`);
  }
  const classifier = await readModelFile(classifierPath, "classifier");
  const angle = await readModelFile(values.turn, "angle network");
  const data = await loadMnist();
  const pixels = pixelsOf(data.test, indices);
  const random = new Random(VERIFICATION_TURN_SEED);
  const turns = indices.map(() => random.uniform(-MAX_TURN, MAX_TURN));
  const verificationPixels = new Float32Array(pixels.length * 2);
  verificationPixels.set(pixels);
  verificationPixels.set(turnEach(pixels, turns), pixels.length);
  const started = performance.now();
  const result = await exportTurned({
    classifier,
    angle,
    settings: { gateDegrees, pick },
    onnxPath,
    verificationPixels,
    name: basename(onnxPath, ".onnx"),
    command,
  });
  console.log(
    `${classifierPath} behind ${values.turn} -> ${onnxPath} (${
      (result.bytes / 1024).toFixed(0)
    } KiB, gate ${gateDegrees}°, pick ${pick}, ${
      ((performance.now() - started) / 1000).toFixed(1)
    } s): on ${result.images} test images (half turned within ±60°), largest difference from ` +
      `the pieces run one by one ${
        result.maxAbsDifference.toExponential(2)
      } (limit ${TURNED_TOLERANCE})` +
      (result.atGate ? `, ${result.atGate} read at the gate left out` : ""),
  );
}
