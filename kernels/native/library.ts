/**
 * The native engine's shared library: kernels/native/engine.c, compiled
 * against BLIS (or, without it, OpenBLAS), and oneDNN for the convolutions
 * where it is installed, by the machine's C compiler on first use (into
 * .native/, keyed by the sources' hash), then opened through Deno's FFI.
 */
import { fileURLToPath } from "node:url";

/** Why the native engine cannot run here, in one sentence for the user. */
export class NativeUnavailable extends Error {}

/** A setting of the engine's that has no meaning: the user's to fix, not a reason to fall back. */
export class NativeSettingError extends Error {}

export const NATIVE_INSTALL_COMMAND = "apt-get install libblis-dev libdnnl-dev gcc";

const SOURCE = new URL("./engine.c", import.meta.url);
/** Included by engine.c when built with oneDNN; part of the library's hash. */
const DNNL_SOURCE = new URL("./convolution_dnnl.c", import.meta.url);
const BUILD_DIR = new URL("../../.native/", import.meta.url);

const SYMBOLS = {
  engine_init: { parameters: ["i32"], result: "i32" },
  engine_corename: { parameters: [], result: "pointer" },
  engine_blas: { parameters: [], result: "pointer" },
  engine_set_convolutions: { parameters: ["i32"], result: "pointer" },
  conv2d_forward: { parameters: ["buffer", "buffer", "buffer", "buffer"], result: "i32" },
  conv2d_backprop_filter: { parameters: ["buffer", "buffer", "buffer", "buffer"], result: "i32" },
  conv2d_backprop_input: { parameters: ["buffer", "buffer", "buffer", "buffer"], result: "i32" },
  depthwise_forward: { parameters: ["buffer", "buffer", "buffer", "buffer"], result: "i32" },
  depthwise_backprop_input: { parameters: ["buffer", "buffer", "buffer", "buffer"], result: "i32" },
  depthwise_backprop_filter: {
    parameters: ["buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  relu_grad: { parameters: ["buffer", "buffer", "buffer", "i32"], result: "void" },
  sum_rows: { parameters: ["buffer", "buffer", "i32", "i32", "f64"], result: "void" },
  batch_norm_train: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer", "i32", "i32", "f64"],
    result: "i32",
  },
  batch_norm_train_grad: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "i32",
      "i32",
      "f64",
    ],
    result: "i32",
  },
  max_pool_grad: { parameters: ["buffer", "buffer", "buffer", "buffer"], result: "void" },
  adam_update: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "i32", "f64", "f64", "f64", "f64", "f64"],
    result: "void",
  },
  batch_matmul: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
    ],
    result: "void",
  },
} as const;

export type NativeLibrary = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

export interface NativeEngine {
  symbols: NativeLibrary;
  /** The library file opened. */
  path: string;
  /** The BLAS library linked: BLIS or OpenBLAS. */
  blas: string;
  /** The BLAS's name for the CPU kernels it chose (for example zen3, Haswell, SkylakeX). */
  blasCore: string;
  /** What the convolutions run on: "oneDNN 2.6", or "im2col + BLIS" without it. */
  convolutions: string;
}

/**
 * The compiler's flags (besides the output and the BLAS). No errno from
 * sqrt, so that Adam's loop vectorises (results are the same). A BLAS
 * symbol the library does not resolve fails the build (`--no-undefined`),
 * not the first call ("symbol lookup error" kills the process).
 */
const COMPILE_FLAGS = [
  "-O3",
  "-march=native",
  "-fno-math-errno",
  "-fPIC",
  "-shared",
  "-Wl,--no-undefined",
  // Never unloaded: Deno closes a worker's library handle when the worker
  // ends, and a thread that ends after the last one would call the released
  // thread-exit cleanup (convolution_dnnl.c) in unmapped code.
  "-Wl,-z,nodelete",
];

/**
 * The environment variable that names the BLAS library file to link (BLIS
 * or OpenBLAS in a place the linker does not search, or a particular
 * build); a file that does not exist makes the native engine unavailable.
 */
export const BLAS_VARIABLE = "MNIST_BLAS";

/** Names the library by its source, flags and BLAS, so a change to any builds a new one. */
async function sourceHash(source: Uint8Array<ArrayBuffer>, blas: string): Promise<string> {
  const flagged = new Uint8Array([
    ...source,
    ...new TextEncoder().encode(COMPILE_FLAGS.join(" ") + blas),
  ]);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", flagged));
  return Array.from(digest.subarray(0, 6), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The BLAS libraries tried, best first: BLIS was faster on these convolutions' shapes. */
const BLAS_CHOICES = [
  { name: "BLIS", flags: ["-DENGINE_BLIS", "-lblis"] },
  { name: "OpenBLAS", flags: ["-lopenblas"] },
];

/**
 * oneDNN for the convolutions, tried first with each BLAS: three to five
 * times im2col's speed on the models' layers (docs/how-it-works.md). Its OpenMP
 * runtime is linked to keep it at one thread per caller.
 */
const DNNL_FLAGS = ["-DENGINE_DNNL", "-ldnnl", "-lgomp"];

/** The environment variable that turns oneDNN off ("im2col"): the bench's before and after. */
export const CONVOLUTIONS_VARIABLE = "MNIST_CONVOLUTIONS";

/** Each BLAS with oneDNN, then without it. */
function withDnnl(
  choices: Array<{ name: string; flags: string[] }>,
): Array<{ name: string; flags: string[] }> {
  return choices.flatMap((blas) => [
    { name: blas.name, flags: [...DNNL_FLAGS, ...blas.flags] },
    blas,
  ]);
}

/**
 * The BLAS to link: the file MNIST_BLAS names (BLIS when its name says so,
 * else OpenBLAS's interface), or the system's BLIS, then OpenBLAS.
 */
async function blasChoices(): Promise<Array<{ name: string; flags: string[] }>> {
  const file = Deno.env.get(BLAS_VARIABLE);
  if (file === undefined || file === "") return BLAS_CHOICES;
  try {
    if (!(await Deno.stat(file)).isFile) throw new Deno.errors.NotFound();
  } catch {
    throw new NativeUnavailable(`${BLAS_VARIABLE} names ${file}, which is not a file`);
  }
  return /blis/i.test(file.split("/").at(-1)!)
    ? [{ name: "BLIS", flags: ["-DENGINE_BLIS", file] }]
    : [{ name: "OpenBLAS", flags: [file] }];
}

/** A build that failed only because an optional or BLAS library is not installed. */
const MISSING_LIBRARY = /cannot find -l\w+|dnnl\.h: No such file/;

async function compile(output: string, choices: Array<{ name: string; flags: string[] }>) {
  const failures: string[] = [];
  for (const blas of choices) {
    const temporary = `${output}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
    let result: Deno.CommandOutput;
    try {
      result = await new Deno.Command("cc", {
        args: [
          // Built on the machine that runs it (-march=native), so its own instruction set.
          ...COMPILE_FLAGS,
          "-o",
          temporary,
          fileURLToPath(SOURCE),
          ...blas.flags,
          "-lm",
        ],
        stdout: "null",
        stderr: "piped",
      }).output();
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new NativeUnavailable("there is no C compiler (cc)");
      }
      throw error;
    }
    if (result.success) {
      await Deno.rename(temporary, output);
      return;
    }
    await Deno.remove(temporary).catch(() => {});
    failures.push(new TextDecoder().decode(result.stderr));
  }
  if (failures.every((message) => MISSING_LIBRARY.test(message))) {
    throw new NativeUnavailable("neither BLIS nor OpenBLAS is installed");
  }
  const message = failures.find((m) => !MISSING_LIBRARY.test(m)) ?? failures[0];
  const undefinedSymbol = message.match(/undefined reference to `([^']+)'/);
  throw new NativeUnavailable(
    undefinedSymbol
      ? `the BLAS library ${
        [...new Set(choices.map((c) => c.flags.at(-1)))].join(" or ")
      } does not define ${undefinedSymbol[1]}`
      : `compiling the native kernels failed (${
        message.split("\n").find((line) => /error/i.test(line)) ?? message.split("\n")[0]
      })`,
  );
}

/** A C string the library returns ("unknown" for NULL). */
export function cString(pointer: Deno.PointerValue): string {
  return pointer ? new Deno.UnsafePointerView(pointer).getCString() : "unknown";
}

let loaded: Promise<NativeEngine> | undefined;

/**
 * Builds (if needed) and opens the native library, linked against the BLAS
 * that `MNIST_BLAS` names or else the system's. `MNIST_NATIVE_LIBRARY`
 * names a prebuilt engine library instead (a missing one makes the engine
 * unavailable, which the tests use to check the fallback).
 */
export function loadNativeEngine(): Promise<NativeEngine> {
  loaded ??= (async () => {
    const convolutions = Deno.env.get(CONVOLUTIONS_VARIABLE) || "onednn";
    if (convolutions !== "onednn" && convolutions !== "im2col") {
      throw new NativeSettingError(
        `${CONVOLUTIONS_VARIABLE} must be onednn or im2col, not "${convolutions}".`,
      );
    }
    let path = Deno.env.get("MNIST_NATIVE_LIBRARY");
    if (!path) {
      const source = new Uint8Array([
        ...await Deno.readFile(SOURCE),
        ...await Deno.readFile(DNNL_SOURCE),
      ]);
      const choices = withDnnl(await blasChoices());
      await Deno.mkdir(BUILD_DIR, { recursive: true });
      const hash = await sourceHash(source, JSON.stringify(choices));
      path = fileURLToPath(new URL(`engine-${hash}.so`, BUILD_DIR));
      try {
        await Deno.stat(path);
      } catch {
        await compile(path, choices);
      }
    }
    let library: Deno.DynamicLibrary<typeof SYMBOLS>;
    try {
      library = Deno.dlopen(path, SYMBOLS);
    } catch (error) {
      throw new NativeUnavailable(
        `its library ${path} cannot be opened (${(error as Error).message.split("\n")[0]})`,
      );
    }
    // One BLAS thread per caller: the engine's parallelism is its workers.
    library.symbols.engine_init(1);
    return {
      symbols: library.symbols,
      path,
      blas: cString(library.symbols.engine_blas()),
      blasCore: cString(library.symbols.engine_corename()),
      convolutions: cString(
        library.symbols.engine_set_convolutions(convolutions === "onednn" ? 1 : 0),
      ),
    };
  })();
  loaded.catch(() => {
    loaded = undefined;
  });
  return loaded;
}
