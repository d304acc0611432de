/**
 * The PyTorch reference of `deno task bench` (bench/torch_reference.py), read
 * honestly: which BLAS it ran on decides what a ratio against it means.
 * Debian's torch takes whichever `libblas.so.3` the system selects; the
 * reference implementation makes its dense layers several times slower than
 * OpenBLAS, so a ratio against it flatters the project.
 */

export interface TorchReference {
  torch: string;
  threads: number;
  /** The BLAS shared libraries the reference process mapped (real paths). */
  blas_libraries: string[];
  /** torch's own BLAS_INFO (Debian's build says "generic" whatever is loaded). */
  blas_info: string;
  /** Where its convolutions run: "oneDNN" or "PyTorch's own". */
  convolutions: string;
  baseline: number;
  improved: number;
  robust: number;
}

export type BlasKind = "OpenBLAS" | "MKL" | "BLIS" | "reference BLAS" | "unknown";

/** The BLAS a library path is: Debian's alternatives resolve to telling folders. */
export function blasKind(libraries: string[]): BlasKind {
  const all = libraries.join(" ").toLowerCase();
  if (all.includes("openblas")) return "OpenBLAS";
  if (all.includes("mkl")) return "MKL";
  if (all.includes("blis")) return "BLIS";
  if (/\/blas\/libblas\.so|\/libblas\.so/.test(all)) return "reference BLAS";
  return "unknown";
}

/** What to print about the reference, and a warning when its ratios would flatter the project. */
export function describeReference(reference: TorchReference): {
  line: string;
  warning?: string;
} {
  const kind = blasKind(reference.blas_libraries);
  const line = `reference: PyTorch ${reference.torch}, ${reference.threads} threads, BLAS ${kind}` +
    `${reference.blas_libraries.length ? ` (${reference.blas_libraries.join(", ")})` : ""}, ` +
    `convolutions on ${reference.convolutions}`;
  if (kind === "OpenBLAS" || kind === "MKL" || kind === "BLIS") return { line };
  return {
    line,
    warning:
      `warning: the PyTorch reference ran on ${
        kind === "unknown" ? "an unidentified BLAS" : "the reference BLAS"
      }, which makes its dense layers slow, so these ratios flatter this project; ` +
      "for PyTorch at its best: apt-get install libopenblas0-pthread",
  };
}
