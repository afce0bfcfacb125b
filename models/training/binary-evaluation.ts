/**
 * Evaluating a binary classifier honestly: accuracy, balanced accuracy,
 * log-loss and ROC AUC, and the baseline every model must beat, the best
 * single-feature threshold. Used by train-hive-thermal.ts in each
 * leave-one-hive-out fold.
 */
import { roundSig } from './softmax-regression.js';

export interface BinaryMetrics {
  n: number;
  positives: number;
  accuracy: number;
  /** Mean recall over the classes present (a one-class fold gives that class's recall). */
  balanced_accuracy: number;
  log_loss: number;
  /** Area under the ROC curve; null when the set holds one class only. */
  auc: number | null;
}

const EPS = 1e-7;

export function binaryMetrics(labels: readonly (0 | 1)[], probabilities: readonly number[]): BinaryMetrics {
  const n = labels.length;
  let correct = 0;
  let logLoss = 0;
  const hits = [0, 0];
  const counts = [0, 0];
  labels.forEach((y, i) => {
    const p = Math.min(Math.max(probabilities[i] ?? 0.5, EPS), 1 - EPS);
    const predicted = p >= 0.5 ? 1 : 0;
    if (predicted === y) {
      correct++;
      hits[y] = (hits[y] ?? 0) + 1;
    }
    counts[y] = (counts[y] ?? 0) + 1;
    logLoss -= Math.log(y === 1 ? p : 1 - p);
  });
  const recalls = [0, 1].filter((c) => (counts[c] ?? 0) > 0).map((c) => (hits[c] ?? 0) / (counts[c] ?? 1));
  return {
    n,
    positives: counts[1] ?? 0,
    accuracy: roundSig(correct / n, 4),
    balanced_accuracy: roundSig(recalls.reduce((a, b) => a + b, 0) / recalls.length, 4),
    log_loss: roundSig(logLoss / n, 4),
    auc: auc(labels, probabilities),
  };
}

/** Mann-Whitney AUC with ties counted as half. */
function auc(labels: readonly (0 | 1)[], scores: readonly number[]): number | null {
  const pos: number[] = [];
  const neg: number[] = [];
  labels.forEach((y, i) => (y === 1 ? pos : neg).push(scores[i] ?? 0));
  if (pos.length === 0 || neg.length === 0) return null;
  const all = [...pos.map((s) => ({ s, y: 1 })), ...neg.map((s) => ({ s, y: 0 }))].sort((a, b) => a.s - b.s);
  let rankSumPos = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j < all.length && all[j]?.s === all[i]?.s) j++;
    const rank = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) if (all[k]?.y === 1) rankSumPos += rank;
    i = j;
  }
  return roundSig((rankSumPos - (pos.length * (pos.length + 1)) / 2) / (pos.length * neg.length), 4);
}

export interface Threshold {
  feature: string;
  /** Predict positive when value >= threshold (direction 1) or value < threshold (direction -1). */
  direction: 1 | -1;
  threshold: number;
  trainBalancedAccuracy: number;
}

/** The single feature and cut-off with the best balanced accuracy on the given rows. */
export function fitThreshold(names: readonly string[], rows: readonly (readonly number[])[], labels: readonly (0 | 1)[]): Threshold {
  const positives = labels.filter((y) => y === 1).length;
  const negatives = labels.length - positives;
  let best: Threshold = { feature: names[0] ?? '', direction: 1, threshold: Number.NEGATIVE_INFINITY, trainBalancedAccuracy: 0.5 };
  names.forEach((feature, j) => {
    const sorted = rows.map((r, i) => ({ v: r[j] ?? 0, y: labels[i] ?? 0 })).sort((a, b) => a.v - b.v);
    // Sweep cut-offs between distinct values: below the cut are predicted negative (direction 1).
    let negBelow = 0;
    let posBelow = 0;
    for (let i = 0; i < sorted.length; i++) {
      const here = sorted[i];
      if (!here) continue;
      if (here.y === 1) posBelow++;
      else negBelow++;
      const next = sorted[i + 1];
      if (!next || next.v === here.v) continue;
      const cut = (here.v + next.v) / 2;
      const up = (negBelow / negatives + (positives - posBelow) / positives) / 2;
      for (const [direction, score] of [[1, up], [-1, 1 - up]] as const) {
        if (score > best.trainBalancedAccuracy + 1e-12) best = { feature, direction, threshold: cut, trainBalancedAccuracy: score };
      }
    }
  });
  return best;
}

export function predictThreshold(t: Threshold, names: readonly string[], row: readonly number[]): number {
  const v = row[names.indexOf(t.feature)] ?? 0;
  const positive = t.direction === 1 ? v >= t.threshold : v < t.threshold;
  // A hard classifier: its log-loss is shown with p clipped to 1e-7, so it is large when it is wrong.
  return positive ? 1 : 0;
}
