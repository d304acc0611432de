/**
 * Teachers for distillation: trained models whose class probabilities on each
 * augmented training batch become part of the student's targets
 * (`train --teacher`).
 */
import { tf } from "../deps_tfjs.ts";
import { exists } from "../util/files.ts";
import { NUM_CLASSES } from "../models/architectures.ts";
import { loadLayersModel, MODEL_JSON } from "../models/layers_io.ts";
import { join } from "node:path";

/** What a run distils from: the teachers' model folders and their targets' weight. */
export interface Distillation {
  /** tfjs model folders (model.json + weights.bin), read at the start of every run and worker. */
  teachers: string[];
  /** Weight of the teachers' mean probabilities against the labels, in (0, 1]. */
  weight: number;
}

/** The teachers' weight when `--distill` is not given: half the targets theirs, half the labels. */
export const DEFAULT_DISTILLATION_WEIGHT = 0.5;

export class TeacherError extends Error {}

/** Loads the teachers, refusing in one sentence a folder without a model or a model that does not read digits. */
export async function loadTeachers(dirs: string[]): Promise<tf.LayersModel[]> {
  const teachers: tf.LayersModel[] = [];
  let current = "";
  try {
    for (const dir of dirs) {
      current = dir;
      if (!(await exists(join(dir, MODEL_JSON)))) {
        throw new TeacherError(`--teacher ${dir} holds no ${MODEL_JSON} (a tfjs model folder).`);
      }
      const teacher = await loadLayersModel(dir);
      teachers.push(teacher);
      const input = JSON.stringify(teacher.inputs[0].shape.slice(1));
      const output = JSON.stringify(teacher.outputs[0].shape.slice(1));
      if (input !== "[28,28,1]" || output !== `[${NUM_CLASSES}]`) {
        throw new TeacherError(
          `--teacher ${dir} maps ${input} to ${output}, not 28×28×1 digits to ${NUM_CLASSES} classes.`,
        );
      }
    }
  } catch (error) {
    teachers.forEach((teacher) => teacher.dispose());
    if (error instanceof TeacherError) throw error;
    throw new TeacherError(`--teacher ${current} could not be read: ${(error as Error).message}`);
  }
  return teachers;
}
