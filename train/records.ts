/**
 * The per-epoch record of a training run, as metrics files store it. Kept
 * free of tfjs so the report can read metrics without loading it.
 */
export interface EpochRecord {
  epoch: number;
  learning_rate: number;
  loss: number;
  accuracy: number;
  val_loss: number;
  val_accuracy: number;
  /**
   * Validation accuracy of the last step's weights, recorded when the run
   * evaluates a moving average of them (then `val_accuracy` is the average's).
   */
  val_accuracy_live?: number;
  /** Time of the epoch's training steps. */
  seconds: number;
  /** The whole epoch: steps, validation and checkpoint (absent in older files). */
  wall_seconds?: number;
  images_per_s: number;
}
