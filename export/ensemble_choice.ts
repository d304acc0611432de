/**
 * Which models to put in an ensemble, chosen on validation digits (never
 * the test set): greedy forward selection (Caruana et al., 2004, without
 * repetition) by the log loss of the members' mean probabilities. It starts
 * from the candidate with the lowest loss and adds, one at a time, the one
 * that lowers the ensemble's loss most, until none does. Log loss rather
 * than accuracy, because a few hundred digits at 99.6% differ by a mistake
 * or two, while every digit's confidence counts in the loss.
 */

export interface ChoiceStep {
  members: string[];
  logLoss: number;
  accuracy: number;
}

export interface Choice {
  /** Each candidate alone. */
  candidates: ChoiceStep[];
  /** The ensemble after each addition; the last is the choice. */
  steps: ChoiceStep[];
  members: string[];
}

/** Log loss and accuracy of the mean of `members`' probabilities (count × 10 each). */
export function scoreMean(
  probabilities: ReadonlyMap<string, Float32Array>,
  members: readonly string[],
  labels: Uint8Array,
): ChoiceStep {
  let loss = 0;
  let correct = 0;
  const rows = members.map((name) => probabilities.get(name)!);
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    let bestValue = -1;
    let truth = 0;
    for (let c = 0; c < 10; c++) {
      let p = 0;
      for (const row of rows) p += row[i * 10 + c];
      p /= rows.length;
      if (p > bestValue) {
        bestValue = p;
        best = c;
      }
      if (c === labels[i]) truth = p;
    }
    loss -= Math.log(Math.max(truth, 1e-7));
    if (best === labels[i]) correct++;
  }
  return {
    members: [...members],
    logLoss: loss / labels.length,
    accuracy: correct / labels.length,
  };
}

/**
 * Greedy selection over `probabilities` (name → count × 10 on the
 * validation digits). An ensemble has at least two members: if no second
 * candidate lowers the loss, the one that raises it least joins.
 */
export function chooseMembers(
  probabilities: ReadonlyMap<string, Float32Array>,
  labels: Uint8Array,
): Choice {
  const names = [...probabilities.keys()];
  if (names.length < 2) {
    throw new Error(`Choosing an ensemble needs at least two candidates, got ${names.length}.`);
  }
  const candidates = names.map((name) => scoreMean(probabilities, [name], labels));
  const byLoss = (a: ChoiceStep, b: ChoiceStep) => a.logLoss - b.logLoss;
  const steps = [[...candidates].sort(byLoss)[0]];
  for (;;) {
    const current = steps.at(-1)!;
    const rest = names.filter((name) => !current.members.includes(name));
    if (rest.length === 0) break;
    const best = rest.map((name) => scoreMean(probabilities, [...current.members, name], labels))
      .sort(byLoss)[0];
    if (best.logLoss >= current.logLoss && current.members.length >= 2) break;
    steps.push(best);
  }
  return { candidates, steps, members: steps.at(-1)!.members };
}
