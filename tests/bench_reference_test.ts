import assert from "node:assert/strict";
import { blasKind, describeReference, type TorchReference } from "../bench/reference.ts";

const reference = (libraries: string[]): TorchReference => ({
  torch: "1.13.0a0",
  threads: 2,
  blas_libraries: libraries,
  blas_info: "generic",
  convolutions: "oneDNN",
  baseline: 1000,
  improved: 700,
  robust: 500,
});

Deno.test("the reference's BLAS is named from the library it loaded, and a slow one is warned about", () => {
  // Debian's alternatives resolve libblas.so.3 to these real paths.
  const openblas = "/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3";
  const generic = "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3";
  assert.equal(blasKind([openblas]), "OpenBLAS");
  assert.equal(blasKind([generic]), "reference BLAS");
  assert.equal(blasKind(["/opt/intel/lib/libmkl_rt.so.2"]), "MKL");
  assert.equal(blasKind([]), "unknown");

  const good = describeReference(reference([openblas]));
  assert.equal(good.warning, undefined);
  assert.match(good.line, /BLAS OpenBLAS \(.*openblas-pthread.*\), convolutions on oneDNN$/);
  const slow = describeReference(reference([generic]));
  assert.match(slow.line, /BLAS reference BLAS/);
  assert.match(slow.warning!, /reference BLAS.*flatter.*apt-get install libopenblas0-pthread$/);
  assert.match(describeReference(reference([])).warning!, /an unidentified BLAS/);
});
