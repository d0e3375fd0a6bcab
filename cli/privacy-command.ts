// `secmlops privacy epsilon|noise`: the DP-SGD accountant on its own, to plan a run or check a stated (ε, δ).
import { writeFile } from 'node:fs/promises';
import { PrivacyParameterError, epsilon, noiseFor, stepsFor } from '../engine/privacy/rdp.js';
import { UsageError } from './usage-error.js';

export interface EpsilonCommand {
  sampleRate: number;
  noiseMultiplier: number;
  steps: number;
  delta: number;
  json?: string;
}

export interface NoiseCommand {
  sampleRate: number;
  epochs: number;
  targetEpsilon: number;
  delta: number;
  json?: string;
}

/** Parameter errors are the caller's: exit 2, naming the option. */
function usage<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof PrivacyParameterError) throw new UsageError(e.message);
    throw e;
  }
}

export async function epsilonCommand(o: EpsilonCommand): Promise<void> {
  const m = { sampleRate: o.sampleRate, noiseMultiplier: o.noiseMultiplier, steps: o.steps };
  const r = usage(() => epsilon(m, o.delta));
  console.log(
    `ε = ${r.epsilon.toFixed(4)} at δ = ${o.delta} (RDP order ${r.order}) after ${o.steps} steps of Poisson ` +
      `sampling at q = ${o.sampleRate} with noise multiplier ${o.noiseMultiplier}`,
  );
  if (o.json)
    await writeFile(
      o.json,
      `${JSON.stringify({ epsilon: r.epsilon, delta: o.delta, order: r.order, ...m }, null, 2)}\n`,
    );
}

export async function noiseCommand(o: NoiseCommand): Promise<void> {
  const sigma = usage(() => noiseFor(o.sampleRate, o.epochs, o.targetEpsilon, o.delta));
  const steps = stepsFor(o.sampleRate, o.epochs);
  const spent = epsilon({ sampleRate: o.sampleRate, noiseMultiplier: sigma, steps }, o.delta);
  console.log(
    `noise multiplier ${sigma}: ε = ${spent.epsilon.toFixed(4)} ≤ ${o.targetEpsilon} at δ = ${o.delta} after ` +
      `${o.epochs} epochs (${steps} steps) at q = ${o.sampleRate}`,
  );
  if (o.json)
    await writeFile(
      o.json,
      `${JSON.stringify(
        {
          noiseMultiplier: sigma,
          epsilon: spent.epsilon,
          delta: o.delta,
          steps,
          sampleRate: o.sampleRate,
          epochs: o.epochs,
        },
        null,
        2,
      )}\n`,
    );
}
