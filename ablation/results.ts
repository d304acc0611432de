/**
 * The shape of metrics/ablation.json. Self-contained (no imports), so that
 * the report can read it without loading the training side.
 */

export interface AblationSettings {
  epochs: number;
  batchSize: number;
  learningRate: number;
  learningRateDecay: number;
  weightAverageDecay: number;
  /** The first seed; with `seeds`, the seeds every variant trains with (older files: `seed` alone). */
  seed: number;
  seeds?: number[];
  limit?: number;
  workers: number;
  /** Test images for the robustness measures. */
  evalImages: number;
}

export interface VariantRobustness {
  /** Mean accuracy over the rotation sweep (−60° to 60°). */
  rotation: number;
  /** Mean accuracy over both shift sweeps (−6 to 6 pixels). */
  shift: number;
  /** Mean accuracy over the 15 MNIST-C corruptions. */
  mnist_c: number;
}

export interface VariantResult {
  name: string;
  /** The run's seed (absent in a variant's summary over seeds and in older files). */
  seed?: number;
  description: string;
  architecture: { batchNorm: boolean; convDropout: number; denseDropout: number };
  augmentation: { rotation: number; translation: number; zoom: number } | null;
  test_accuracy: number;
  test_loss: number;
  test_accuracy_augmented: number;
  /** Last epoch's training accuracy (with dropout and augmentation on) minus validation accuracy. */
  train_val_gap: number;
  /** First epoch with at least 99% validation accuracy, or null. */
  epochs_to_99: number | null;
  history: Array<{
    epoch: number;
    loss: number;
    accuracy: number;
    val_loss: number;
    val_accuracy: number;
  }>;
  train_seconds: number;
  robustness: VariantRobustness | null;
  /** The exported model's answer for every test image, in order (for McNemar's test between variants). */
  predictions?: string;
}

/** A measure over seeds: as util/stats.ts's SeedSummary (repeated here to keep this file import-free). */
export interface Spread {
  n: number;
  mean: number;
  std: number;
  ci95: { low: number; high: number } | null;
}

/** The measures summarised over seeds, by VariantResult field (robustness ones by their own name). */
export const SPREAD_MEASURES = [
  "test_accuracy",
  "test_accuracy_augmented",
  "train_val_gap",
  "rotation",
  "shift",
  "mnist_c",
] as const;
export type SpreadMeasure = typeof SPREAD_MEASURES[number];

export function measureOf(result: VariantResult, measure: SpreadMeasure): number | undefined {
  return measure === "rotation" || measure === "shift" || measure === "mnist_c"
    ? result.robustness?.[measure]
    : result[measure];
}

export interface AblationFile {
  command: string;
  date: string;
  settings: AblationSettings;
  versions: Record<string, string>;
  /** The variants of the rotation-range sweep and their largest training rotation. */
  rotation_sweep: Array<{ variant: string; degrees: number }>;
  /** One entry per variant: with several seeds, every measure's mean over them. */
  variants: VariantResult[];
  /** Every run, one per variant and seed (older single-seed files: absent, `variants` are the runs). */
  runs?: VariantResult[];
  /** Per variant and measure, the spread over seeds. */
  spread?: Record<string, Partial<Record<SpreadMeasure, Spread>>>;
}

/** The runs of a file: its `runs`, or for an older single-seed file its variants with their seed. */
export function runsOf(file: AblationFile): VariantResult[] {
  return file.runs ?? file.variants.map((result) => ({ ...result, seed: file.settings.seed }));
}

export function seedsOf(settings: AblationSettings): number[] {
  return settings.seeds ?? [settings.seed];
}
