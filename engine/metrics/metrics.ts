// Robustness metrics from per-image results. Robust accuracy counts every evaluated image: one the model already
// gets wrong is not robust.
export interface SampleResult {
  label: number;
  clean: number;
  adversarial: number;
  linf: number;
  l2: number;
}

export interface ClassMetrics {
  class: number;
  recall: number;
  missRate: number;
  robustRecall: number;
  robustMissRate: number;
}

export interface AttackMetrics {
  images: number;
  clean_accuracy: number;
  robust_accuracy: number;
  /** Among images the model got right, the fraction the attack turned wrong. */
  attack_success_rate: number;
  median_linf: number;
  median_l2: number;
  /** confusion[label][prediction] under attack. */
  confusion: number[][];
  classes: ClassMetrics[];
}

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Correct on the clean image and still correct under attack. */
export const robust = (r: SampleResult) => r.clean === r.label && r.adversarial === r.label;

export function computeMetrics(results: SampleResult[], classes: number): AttackMetrics {
  const n = results.length;
  const correct = results.filter((r) => r.clean === r.label);
  const fooled = correct.filter((r) => r.adversarial !== r.label);
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (const r of results) confusion[r.label][r.adversarial]++;
  const perClass = Array.from({ length: classes }, (_v, k): ClassMetrics => {
    const of = results.filter((r) => r.label === k);
    const recall = of.length ? of.filter((r) => r.clean === k).length / of.length : NaN;
    const robustRecall = of.length ? of.filter(robust).length / of.length : NaN;
    return { class: k, recall, missRate: 1 - recall, robustRecall, robustMissRate: 1 - robustRecall };
  });
  return {
    images: n,
    clean_accuracy: correct.length / n,
    robust_accuracy: results.filter(robust).length / n,
    attack_success_rate: correct.length ? fooled.length / correct.length : 0,
    median_linf: median(fooled.map((r) => r.linf)),
    median_l2: median(fooled.map((r) => r.l2)),
    confusion,
    classes: perClass,
  };
}
