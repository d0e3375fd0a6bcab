// One monitoring window judged against the reference: drift per statistic, the detector's flag rate, and what
// breaches the policy's thresholds. Pure: the monitor's activity calls it, and so can a test on recorded data.
import type { DriftReference } from './stats.js';
import { ksTest, psiContinuous, psiCounts } from './drift.js';
import type { TelemetryRecord } from './telemetry.js';

export interface StatDrift {
  /** mean and std of the inputs, conf (the top class's probability), class (the predicted-class distribution). */
  stat: 'mean' | 'std' | 'conf' | 'class';
  psi: number;
  /** Two-sample KS (continuous statistics only). */
  ks?: { d: number; p: number };
  drifted: boolean;
}

export interface WindowScores {
  inputs: number;
  /** Empty when the window had fewer inputs than the policy's minInputs: too few to judge. */
  drift: StatDrift[];
  flagged: number;
  breaches: { kind: 'drift' | 'detector'; detail: string }[];
}

export interface WindowThresholds {
  psi: number;
  ksPValue: number;
  minInputs: number;
  /** Flag rate above which the window breaches (only when a detector runs). */
  flagRate?: number;
}

const round = (v: number, digits = 4) => +v.toFixed(digits);

export function scoreWindow(ref: DriftReference, records: TelemetryRecord[], t: WindowThresholds): WindowScores {
  const inputs = records.length;
  const flagged = records.filter((r) => r.flag).length;
  const out: WindowScores = { inputs, drift: [], flagged, breaches: [] };
  if (inputs < t.minInputs) return out;
  for (const stat of ['mean', 'std', 'conf'] as const) {
    const sample = records.map((r) => r[stat]);
    const psi = psiContinuous(ref[stat], sample);
    const ks = ksTest(ref[stat], sample);
    // Both measures must agree: KS alone flags trivial shifts on large windows, PSI alone is noisy on small ones.
    const drifted = psi >= t.psi && ks.p < t.ksPValue;
    out.drift.push({ stat, psi: round(psi), ks: { d: round(ks.d), p: ks.p }, drifted });
  }
  const counts = new Array<number>(ref.classCounts.length).fill(0);
  for (const r of records) if (r.cls < counts.length) counts[r.cls]++;
  const psi = psiCounts(ref.classCounts, counts);
  out.drift.push({ stat: 'class', psi: round(psi), drifted: psi >= t.psi });
  const drifted = out.drift.filter((d) => d.drifted);
  if (drifted.length)
    out.breaches.push({
      kind: 'drift',
      detail: `drift in ${drifted.map(describeDrift).join(', ')}`,
    });
  if (t.flagRate !== undefined && flagged / inputs > t.flagRate)
    out.breaches.push({
      kind: 'detector',
      detail:
        `the detector flagged ${flagged} of ${inputs} inputs (${round((100 * flagged) / inputs, 1)}%), ` +
        `above ${100 * t.flagRate}%`,
    });
  return out;
}

function describeDrift(d: StatDrift): string {
  return `${d.stat} (PSI ${d.psi}${d.ks ? `, KS p ${d.ks.p.toExponential(1)}` : ''})`;
}
