/**
 * A temporary directory for one test, removed with everything in it when
 * its `await using` binding goes out of scope, whether the test passed or
 * threw.
 */
export interface TempDir extends AsyncDisposable {
  path: string;
}

export async function tempDir(prefix = "mnist-test-"): Promise<TempDir> {
  const path = await Deno.makeTempDir({ prefix });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}
