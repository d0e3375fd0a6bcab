// Text rendering of a monitor's state for `secmlops status`: what is served, the latest windows, the incidents.
import type { MonitorStatus } from '../workflows/monitor-messages.js';
import { renderAudit } from './render.js';

const fmt = (v: number) => (Math.abs(v) >= 0.001 || v === 0 ? v.toFixed(3) : v.toExponential(1));

export function renderMonitor(m: MonitorStatus, windows = 5): string {
  const lines = [
    `monitor ${m.workflowId}: ${m.windowCount} windows of ${m.windowMs / 1000} s (run ${m.runs + 1})`,
    `  serving sha256:${m.serving.modelSha256} from ${m.serving.attestation} (pipeline ${m.serving.pipeline})`,
  ];
  for (const w of m.windows.slice(-windows)) {
    const drift = w.drift.length
      ? w.drift
          .map((d) => `${d.stat} PSI ${fmt(d.psi)}${d.ks ? ` p ${fmt(d.ks.p)}` : ''}${d.drifted ? ' DRIFT' : ''}`)
          .join(', ')
      : 'too few inputs to judge';
    const file = w.integrity.ok ? 'model intact' : `MODEL FILE: ${w.integrity.detail}`;
    lines.push(`  window ${w.index}: ${w.inputs} inputs, ${w.flagged} flagged; ${drift}; ${file}`);
  }
  for (const i of m.incidents) {
    const outcome =
      i.state === 'resolved'
        ? `resolved by ${i.decidedBy}: ` +
          (i.resolution?.action === 'rollback' ? `rollback to ${i.resolution.attestation}` : `retrain (${i.retrain})`)
        : i.state === 'dismissed'
          ? `dismissed by ${i.decidedBy}`
          : `${i.state.toUpperCase()}: secmlops incident ${m.pipelineId} ${i.id} ` +
            '--rollback <attestation> | --retrain | --dismiss';
    lines.push(`  incident ${i.id} (${i.kind}, window ${i.window}): ${i.detail} — ${outcome}`);
  }
  if (m.audit.length) lines.push('  monitor trail:', ...m.audit.map((a) => `    ${renderAudit(a)}`));
  return lines.join('\n');
}
