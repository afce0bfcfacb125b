/**
 * The small amount of numerics the model build needs, in plain TypeScript so
 * `npm run models:build` has no Python or ML-framework dependency. Everything
 * is deterministic: no Math.random, fixed iteration order.
 */

/** mulberry32: a tiny seeded PRNG; quality is ample for weight initialisation. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Rounds to `digits` significant digits, so manifests stay readable and training uses exactly what ships. */
export function roundSig(x: number, digits = 6): number {
  return x === 0 ? 0 : Number(x.toPrecision(digits));
}

/**
 * Per-column mean and population std, rounded with roundSig. A constant column
 * gets std 1 so normalisation never divides by ~0.
 */
export function standardise(rows: readonly (readonly number[])[]): { mean: number[]; std: number[] } {
  const d = rows[0]?.length ?? 0;
  const mean: number[] = [];
  const std: number[] = [];
  for (let j = 0; j < d; j++) {
    const column = rows.map((r) => r[j] ?? 0);
    const m = column.reduce((a, b) => a + b, 0) / column.length;
    const s = Math.sqrt(column.reduce((a, b) => a + (b - m) ** 2, 0) / column.length);
    mean.push(roundSig(m));
    std.push(s > 1e-9 ? roundSig(s) : 1);
  }
  return { mean, std };
}

/** softmax(x W + b) for k >= 2 outputs, sigmoid for k = 1: the same maths as the ONNX graph. */
export function evaluateDense(weights: readonly (readonly number[])[], bias: readonly number[], x: readonly number[]): number[] {
  const logits = bias.map((b, c) => x.reduce((acc, xi, i) => acc + xi * (weights[i]?.[c] ?? 0), b));
  if (logits.length === 1) return [1 / (1 + Math.exp(-(logits[0] ?? 0)))];
  return softmax(logits);
}

function softmax(logits: readonly number[]): number[] {
  const max = Math.max(...logits);
  const exps = logits.map((z) => Math.exp(z - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

export interface SoftmaxTrainOptions {
  readonly learningRate: number;
  readonly epochs: number;
  /** L2 penalty on the weights; keeps them finite when the classes are separable. */
  readonly l2: number;
  readonly random: () => number;
  readonly onEpoch?: (epoch: number, loss: number) => void;
}

export interface SoftmaxModel {
  /** [features][classes] */
  readonly weights: number[][];
  readonly bias: number[];
  /** Final mean cross-entropy on the training rows (without the L2 term). */
  readonly loss: number;
}

/** Multinomial logistic regression by full-batch gradient descent. */
export function trainSoftmaxRegression(
  rows: readonly (readonly number[])[],
  targets: readonly number[],
  classes: number,
  options: SoftmaxTrainOptions,
): SoftmaxModel {
  const m = rows.length;
  const d = rows[0]?.length ?? 0;
  if (m === 0 || m !== targets.length || classes < 2) {
    throw new RangeError(`need rows (${m}) = targets (${targets.length}) > 0 and classes (${classes}) >= 2`);
  }
  // Small symmetric random start; zeros would also work, the seed keeps it reproducible either way.
  const weights = Array.from({ length: d }, () => Array.from({ length: classes }, () => (options.random() - 0.5) * 0.02));
  const bias = new Array<number>(classes).fill(0);
  let loss = Number.NaN;
  for (let epoch = 1; epoch <= options.epochs; epoch++) {
    const gradW = Array.from({ length: d }, () => new Array<number>(classes).fill(0));
    const gradB = new Array<number>(classes).fill(0);
    let crossEntropy = 0;
    rows.forEach((x, r) => {
      const p = evaluateDense(weights, bias, x);
      const y = targets[r] ?? 0;
      crossEntropy -= Math.log(Math.max(p[y] ?? 0, 1e-300));
      for (let c = 0; c < classes; c++) {
        const err = (p[c] ?? 0) - (c === y ? 1 : 0);
        gradB[c] = (gradB[c] ?? 0) + err / m;
        for (let i = 0; i < d; i++) {
          const g = gradW[i];
          if (g) g[c] = (g[c] ?? 0) + ((x[i] ?? 0) * err) / m;
        }
      }
    });
    loss = crossEntropy / m;
    for (let i = 0; i < d; i++) {
      const w = weights[i];
      const g = gradW[i];
      if (!w || !g) continue;
      for (let c = 0; c < classes; c++) w[c] = (w[c] ?? 0) - options.learningRate * ((g[c] ?? 0) + options.l2 * (w[c] ?? 0));
    }
    for (let c = 0; c < classes; c++) bias[c] = (bias[c] ?? 0) - options.learningRate * (gradB[c] ?? 0);
    options.onEpoch?.(epoch, loss);
  }
  return { weights, bias, loss };
}

export interface LogisticTrainOptions extends SoftmaxTrainOptions {
  /**
   * Weight each class by m / (2 * count), so both classes count equally in
   * the loss (the classes are unbalanced; an unweighted fit leans to the
   * majority). Defaults to true.
   */
  readonly balanced?: boolean;
}

/**
 * Binary logistic regression, sigmoid(x w + b), by full-batch gradient
 * descent; the same maths as a one-output ONNX dense classifier
 * (evaluateDense with k = 1). Returns weights as [features][1].
 */
export function trainLogisticRegression(
  rows: readonly (readonly number[])[],
  targets: readonly (0 | 1)[],
  options: LogisticTrainOptions,
): SoftmaxModel {
  const m = rows.length;
  const d = rows[0]?.length ?? 0;
  if (m === 0 || m !== targets.length) throw new RangeError(`need rows (${m}) = targets (${targets.length}) > 0`);
  const positives = targets.filter((y) => y === 1).length;
  if (positives === 0 || positives === m) throw new RangeError(`need both classes in the targets (got ${positives} of ${m} positive)`);
  const balanced = options.balanced ?? true;
  const classWeight = [balanced ? m / (2 * (m - positives)) : 1, balanced ? m / (2 * positives) : 1];
  const w = Array.from({ length: d }, () => (options.random() - 0.5) * 0.02);
  let b = 0;
  let loss = Number.NaN;
  const gradW = new Array<number>(d);
  for (let epoch = 1; epoch <= options.epochs; epoch++) {
    gradW.fill(0);
    let gradB = 0;
    let crossEntropy = 0;
    for (let r = 0; r < m; r++) {
      const x = rows[r] ?? [];
      const y = targets[r] ?? 0;
      let z = b;
      for (let i = 0; i < d; i++) z += (x[i] ?? 0) * (w[i] ?? 0);
      const p = 1 / (1 + Math.exp(-z));
      const cw = classWeight[y] ?? 1;
      crossEntropy -= cw * Math.log(Math.max(y === 1 ? p : 1 - p, 1e-300));
      const err = (cw * (p - y)) / m;
      gradB += err;
      for (let i = 0; i < d; i++) gradW[i] = (gradW[i] ?? 0) + (x[i] ?? 0) * err;
    }
    loss = crossEntropy / m;
    for (let i = 0; i < d; i++) w[i] = (w[i] ?? 0) - options.learningRate * ((gradW[i] ?? 0) + options.l2 * (w[i] ?? 0));
    b -= options.learningRate * gradB;
    options.onEpoch?.(epoch, loss);
  }
  return { weights: w.map((v) => [v]), bias: [b], loss };
}
