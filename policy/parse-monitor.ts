// The `monitor` block: how the monitor stage judges the served model's windows, and the server's input guard.
// Thresholds are required: a monitor without them would watch and never alert.
import { own } from './own.js';
import { unknownSplit } from './parse-train.js';
import type { Reader } from './reader.js';
import type { Artifacts, DetectorConfig, MonitorConfig, Stage } from './types.js';

const MIB = 1024 * 1024;

export function readMonitor(r: Reader, v: unknown, stages: Stage[], artifacts: Artifacts): MonitorConfig | undefined {
  const listed = stages.some((s) => s.name === 'monitor');
  if (v === undefined) {
    if (listed) r.fail('monitor', 'the monitor stage needs a monitor block with its window and drift thresholds');
    return undefined;
  }
  if (!listed) r.fail('monitor', 'the policy has a monitor block but does not list the monitor stage');
  // The monitor watches a released model, and its drift reference is what the evaluate stage measured.
  for (const needed of ['evaluate', 'release'])
    if (!stages.some((s) => s.name === needed))
      r.fail('monitor', `the monitor stage watches what the ${needed} stage produced; list the ${needed} stage too`);
  // One decision resolves an incident (it may switch the served model at once): a quorum cannot be collected.
  const stage = stages.find((s) => s.name === 'monitor')!;
  const at = `stages[${stages.indexOf(stage)}].approval`;
  if (!stage.approval) r.fail(at, 'incidents need a responder: the monitor stage cannot go without an approval');
  if (stage.approval.quorum !== 1 || stage.approval.roles.length !== 1)
    r.fail(at, 'an incident is resolved by one decision: name one role (the incident responder) and quorum 1');
  const m = r.mapping(v, 'monitor', {
    required: ['window', 'drift'],
    optional: ['minInputs', 'quietWindows', 'flagRate', 'detector', 'windowsPerRun', 'telemetry'],
  });
  const windowMs = r.duration(m.window, 'monitor.window', 'expected a duration such as 30s, 5m or 1h', 1000);
  const d = r.mapping(m.drift, 'monitor.drift', { required: ['psi', 'ksPValue'] });
  const psi = r.number(d.psi, 'monitor.drift.psi', 0, 10);
  if (!(psi > 0)) r.fail('monitor.drift.psi', `expected a population stability index above 0, got ${psi}`);
  const ksPValue = r.number(d.ksPValue, 'monitor.drift.ksPValue', 0, 1);
  if (!(ksPValue > 0 && ksPValue < 1))
    r.fail('monitor.drift.ksPValue', `expected a p-value in (0, 1), got ${ksPValue}`);
  const config: MonitorConfig = {
    windowMs,
    minInputs: m.minInputs === undefined ? 100 : r.integer(m.minInputs, 'monitor.minInputs', 10, 1_000_000),
    quietWindows: m.quietWindows === undefined ? 10 : r.integer(m.quietWindows, 'monitor.quietWindows', 0, 100_000),
    drift: { psi, ksPValue },
    windowsPerRun: m.windowsPerRun === undefined ? 24 : r.integer(m.windowsPerRun, 'monitor.windowsPerRun', 1, 1000),
    telemetry: readTelemetry(r, m.telemetry),
  };
  if (m.detector !== undefined) config.detector = readDetector(r, m.detector, artifacts);
  if (m.flagRate !== undefined) {
    if (!config.detector) r.fail('monitor.flagRate', 'a flag-rate threshold needs monitor.detector');
    const rate = r.number(m.flagRate, 'monitor.flagRate', 0, 1);
    if (!(rate > config.detector.fpr))
      r.fail('monitor.flagRate', `expected a rate above the detector's calibrated fpr ${config.detector.fpr}`);
    config.flagRate = rate;
  }
  return config;
}

function readDetector(r: Reader, v: unknown, artifacts: Artifacts): DetectorConfig {
  const p = 'monitor.detector';
  const m = r.mapping(v, p, { required: ['calibration'], optional: ['bits', 'median', 'fpr', 'action'] });
  const c = r.mapping(m.calibration, `${p}.calibration`, { required: ['split'], optional: ['count'] });
  const split = r.string(c.split, `${p}.calibration.split`);
  if (!own(artifacts.dataset?.splits, split)) r.fail(`${p}.calibration.split`, unknownSplit(split, artifacts));
  const fpr = m.fpr === undefined ? 0.05 : r.number(m.fpr, `${p}.fpr`, 0, 1);
  if (!(fpr > 0 && fpr < 0.5)) r.fail(`${p}.fpr`, `expected a false-positive rate in (0, 0.5), got ${fpr}`);
  return {
    // 8 bits leave 8-bit images unchanged: every input off the 8-bit grid would be flagged, and an attacker rounds.
    // The defaults were measured on Fashion-MNIST (engine/detect/squeeze.ts, FASHION_SQUEEZE).
    bits: m.bits === undefined ? 2 : r.integer(m.bits, `${p}.bits`, 1, 7),
    median: m.median === undefined ? 1 : r.integer(m.median, `${p}.median`, 1, 5),
    fpr,
    action: m.action === undefined ? 'flag' : r.oneOf(m.action, `${p}.action`, ['flag', 'refuse'] as const),
    calibration: {
      split,
      // Fewer clean scores than this cannot place a 5% quantile with any precision.
      count: c.count === undefined ? 1000 : r.integer(c.count, `${p}.calibration.count`, 100, 100_000),
    },
  };
}

function readTelemetry(r: Reader, v: unknown): MonitorConfig['telemetry'] {
  const defaults = { maxFileBytes: 16 * MIB, files: 4, rawInputs: false };
  if (v === undefined) return defaults;
  const m = r.mapping(v, 'monitor.telemetry', { optional: ['maxFileMiB', 'files', 'rawInputs'] });
  return {
    maxFileBytes:
      m.maxFileMiB === undefined
        ? defaults.maxFileBytes
        : r.integer(m.maxFileMiB, 'monitor.telemetry.maxFileMiB', 1, 1024) * MIB,
    files: m.files === undefined ? defaults.files : r.integer(m.files, 'monitor.telemetry.files', 1, 100),
    rawInputs: m.rawInputs === undefined ? false : r.boolean(m.rawInputs, 'monitor.telemetry.rawInputs'),
  };
}
