/**
 * Shared command-line plumbing: flag parsing with clear errors, and a main
 * wrapper that turns any failure into one sentence and a non-zero exit.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

/** A mistake in how the command was called; exit code 2. */
export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig["options"]>;

export function parseFlags<T extends Options>(
  args: string[],
  options: T,
  allowPositionals = false,
) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals });
  } catch (error) {
    // node's messages run over several lines; keep one sentence.
    const first = (error as Error).message.split("\n")[0].replace(
      /\. To specify a positional.*$/,
      "",
    );
    const ambiguous = first.match(/^Option '(--[\w-]+)' argument is ambiguous/);
    const message = ambiguous
      ? `${ambiguous[1]} needs a value; for a value starting with "-" write ${ambiguous[1]}=VALUE`
      : first.replace(/\.$/, "");
    throw new UsageError(`${message}. Run with --help for the flags.`);
  }
}

/** An integer flag value within [min, max], or `fallback` when absent. */
export function intFlag(
  value: string | undefined,
  name: string,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  if (!/^-?\d+$/.test(value.trim())) {
    throw new UsageError(`--${name} must be a whole number, got "${value}".`);
  }
  const number = Number(value);
  if (number < min || number > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`--${name} must be ${range}, got ${number}.`);
  }
  return number;
}

/**
 * Runs a command's main function: errors print as one line on stderr
 * (a stack trace only with DEBUG=1) and exit non-zero.
 */
export async function runMain(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    console.error(`error: ${message}`);
    if (Deno.env.get("DEBUG") && error instanceof Error) console.error(error.stack);
    Deno.exit(error instanceof UsageError ? 2 : 1);
  }
}

/** The command line as typed, for metrics files. */
export function commandLine(task: string, args: string[]): string {
  return [task, ...args].join(" ");
}
