/** Markdown building blocks shared by the report's sections. */

/** The arithmetic mean (NaN for none). */
export const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

/** A fraction as a percentage, "–" when absent. */
export const pct = (value: number | null | undefined, digits = 2) =>
  value === null || value === undefined ? "–" : `${(value * 100).toFixed(digits)}%`;

/** A difference of fractions in signed percentage points: "+1.23", "−0.40". */
export const signedPoints = (value: number, digits = 2) =>
  `${value >= 0 ? "+" : "−"}${Math.abs(value * 100).toFixed(digits)}`;

/** A markdown table, the first column left-aligned and the others right-aligned. */
export function table(header: string[], rows: string[][]): string {
  return [
    `| ${header.join(" | ")} |`,
    `|${header.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`,
    ...rows.map((row) => `| ${row.join(" | ")} |`),
  ].join("\n");
}
