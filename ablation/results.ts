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
  seed: number;
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
}

export interface AblationFile {
  command: string;
  date: string;
  settings: AblationSettings;
  versions: Record<string, string>;
  /** The variants of the rotation-range sweep and their largest training rotation. */
  rotation_sweep: Array<{ variant: string; degrees: number }>;
  variants: VariantResult[];
}
