/**
 * Per-kernel time on the wasm backend. Its kernels run synchronously, so
 * wrapping each registered kernel function with a clock measures exactly the
 * time spent in it; what is left of a step is JavaScript around the kernels
 * (tape bookkeeping, augmentation, data copies).
 */
import { tf } from "../deps_tfjs.ts";

export interface KernelTime {
  kernel: string;
  calls: number;
  milliseconds: number;
}

export interface KernelProfiler {
  /** Times so far, slowest first. */
  report(): KernelTime[];
  reset(): void;
  /** Puts the unwrapped kernels back. */
  stop(): void;
}

/** Starts timing every kernel of the wasm backend (call after it is ready). */
export function profileKernels(): KernelProfiler {
  const times = new Map<string, { calls: number; milliseconds: number }>();
  const wrapped = tf.getKernelsForBackend("wasm").map((config) => {
    const timing = times.get(config.kernelName) ?? { calls: 0, milliseconds: 0 };
    times.set(config.kernelName, timing);
    const inner = config.kernelFunc;
    const timed: tf.KernelFunc = (args) => {
      const started = performance.now();
      try {
        return inner(args);
      } finally {
        timing.calls++;
        timing.milliseconds += performance.now() - started;
      }
    };
    tf.unregisterKernel(config.kernelName, "wasm");
    tf.registerKernel({ ...config, kernelFunc: timed });
    return config;
  });
  return {
    report: () =>
      [...times].filter(([, time]) => time.calls > 0)
        .map(([kernel, time]) => ({ kernel, ...time }))
        .sort((a, b) => b.milliseconds - a.milliseconds),
    reset: () => {
      for (const time of times.values()) {
        time.calls = 0;
        time.milliseconds = 0;
      }
    },
    stop: () => {
      for (const config of wrapped) {
        tf.unregisterKernel(config.kernelName, "wasm");
        tf.registerKernel(config);
      }
    },
  };
}
