/**
 * The library's public face: data, models, the training engine (one thread
 * or data-parallel workers), the ONNX exporter, the ablation study, and
 * (re-exported from deploy.ts) inference and robustness.
 *
 * ```ts
 * import { defaultConfig, loadMnist, RECIPES, trainModel, useEngine } from "./mod.ts";
 * await useEngine(); // native kernels where they can be built, else wasm
 * const result = await trainModel(await loadMnist(), {
 *   config: { ...defaultConfig("baseline", RECIPES.baseline), epochs: 1, limit: 2000 },
 *   outDir: "my-results",
 *   command: "example",
 * });
 * console.log(result.metrics.test_accuracy);
 * ```
 */
export * from "./deploy.ts";
export {
  parseIdxImages,
  parseIdxLabels,
  splitTrainValidation,
  VALIDATION_SIZE,
} from "./data/mnist.ts";
export { registerTrainingKernels, REPLACED_KERNELS, useWasmBackend } from "./kernels/backend.ts";
export {
  activeEngine,
  ENGINE_CHOICES,
  type EngineChoice,
  EngineError,
  type EngineInfo,
  type EngineName,
  NATIVE_KERNELS,
  useEngine,
} from "./kernels/engine.ts";
export { type KernelProfiler, type KernelTime, profileKernels } from "./kernels/profile.ts";
export {
  type Architecture,
  ARCHITECTURES,
  buildArchitecture,
  buildBaseline,
  buildCnn,
  buildImproved,
  buildModel,
  buildRobust,
  CNN_NAMES,
  type CnnOptions,
  MODEL_NAMES,
  type ModelName,
  type ResidualOptions,
  type SeparableOptions,
  type TransformerOptions,
} from "./models/architectures.ts";
export { MultiHeadSelfAttention, PositionEmbedding } from "./models/attention_layers.ts";
export { layerMultiplyAdds, multiplyAdds } from "./models/cost.ts";
export { loadLayersModel, saveLayersModel } from "./models/layers_io.ts";
export { buildTurnNetwork, TURN_MODEL_NAME } from "./models/turn.ts";
export {
  augmentBatch,
  type AugmentRanges,
  MAX_TURN,
  ROBUST_AUGMENTATION,
  STROKE_KEEPING_AUGMENTATION,
  TRAINING_AUGMENTATION,
  TURN_AUGMENTATION,
  turnBatch,
  turnEach,
} from "./transforms/augment.ts";
export {
  type AppearanceJitter,
  jitterAppearance,
  morph,
  NO_JITTER,
  smoothField,
} from "./transforms/appearance.ts";
export {
  type FinishStage,
  learningRateAt,
  MODEL_AUGMENTATION,
  NAMED_RECIPES,
  type NamedRecipe,
  type Recipe,
  RECIPES,
} from "./train/recipes.ts";
export {
  DEFAULT_WORKERS,
  defaultConfig,
  type Metrics,
  type TrainConfig,
  TrainingError,
  trainModel,
} from "./train/run.ts";
export { crossEntropy, evaluate, shardGradients, trainStep } from "./train/steps.ts";
export { FlatAdam } from "./train/adam.ts";
export { WorkerFailure, WorkerPool, type WorkerPoolOptions } from "./train/parallel.ts";
export { AblationError, ablationPaths, runAblation } from "./ablation/run.ts";
export type { AblationFile, VariantResult } from "./ablation/results.ts";
export { ABLATION_SCHEDULE, ROTATION_SWEEP, type Variant, VARIANTS } from "./ablation/variants.ts";
export { loadCheckpoint, saveCheckpoint } from "./train/checkpoint.ts";
export { convertToOnnx, encodeOnnx, type Layout, UnsupportedModelError } from "./export/convert.ts";
export { readLayersArtifacts } from "./export/layers_artifacts.ts";
export { exportModel, VerificationError } from "./export/export_model.ts";
export { compareWithTfjs } from "./export/verify.ts";
export {
  ENSEMBLE_TOLERANCE,
  EnsembleError,
  type EnsembleMember,
  exportEnsemble,
  mergeEnsemble,
} from "./export/ensemble.ts";
export { type Choice, chooseMembers } from "./export/ensemble_choice.ts";
export {
  DEFAULT_GATE_DEGREES,
  exportTurned,
  mergeTurned,
  readAngles,
  TURN_PICKS,
  TurnedError,
  type TurnPick,
  type TurnSettings,
} from "./export/turned.ts";
export {
  readTurns,
  trainTurnNetwork,
  TURN_DEFAULTS,
  type TurnConfig,
  turnError,
  TurnTrainingError,
} from "./train/turn.ts";
export {
  type SeedRun,
  seedRunDir,
  type SeedsSummary,
  summarizeSeeds as summarizeSeedRuns,
} from "./train/seeds.ts";
export { combineMoments, setExactStatistics, StatisticsPass } from "./train/batch_norm_stats.ts";
export { batchNormShift, type ShiftResult } from "./studies/batch_norm_shift.ts";
