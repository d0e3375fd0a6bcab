// The monitor view: what the guarded server serves, each window's drift scores, the incidents and the trail.
// Incident responders (the monitor stage's roles) get forms to roll back, retrain or dismiss. Everything escaped.
import type { AuditEntry } from '../policy/index.js';
import type { Incident, MonitorStatus, WindowReport } from '../workflows/monitor-messages.js';
import { esc, layout } from './pages.js';

const fmt = (v: number) => (Math.abs(v) >= 0.001 || v === 0 ? v.toFixed(3) : v.toExponential(1));
/** A table row of already-escaped cells; `attrs` are the row's own attributes. */
const row = (cells: (string | number)[], attrs = '') =>
  `<tr${attrs}>${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`;
const table = (id: string, heads: string[], rows: string) =>
  `<table id="${id}"><tr>${heads.map((h) => `<th>${h}</th>`).join('')}</tr>${rows}</table>`;

export function monitorPage(
  pipelineId: string,
  m: MonitorStatus,
  who: { person: string; roles: string[]; csrf: string; responderRoles: string[] },
  flash?: { ok: boolean; text: string },
): string {
  const responder = who.roles.some((r) => who.responderRoles.includes(r));
  const windows = [...m.windows].reverse().slice(0, 20).map(windowRow).join('');
  const incidents = m.incidents.map((i) => incidentRow(pipelineId, i, responder, who.csrf)).join('');
  const s = m.serving;
  const body = [
    `<h1>Monitor of ${esc(pipelineId)}</h1>`,
    flash ? `<p class="${flash.ok ? 'ok' : 'error'}" id="flash">${esc(flash.text)}</p>` : '',
    `<p><a href="/pipelines/${encodeURIComponent(pipelineId)}">the pipeline</a> · window ${m.windowMs / 1000} s · ` +
      `${m.windowCount} windows · run ${m.runs + 1}</p>`,
    `<p>Serving <code id="serving">sha256:${esc(s.modelSha256)}</code> ` +
      `from release <code>${esc(s.attestation)}</code> (pipeline ${esc(s.pipeline)}) since ${esc(s.since)}</p>`,
    '<h2>Incidents</h2>',
    incidents
      ? table('incidents', ['#', 'kind', 'opened', 'what', 'state', ''], incidents)
      : '<p id="incidents">None.</p>',
    '<h2>Windows</h2>',
    table('windows', ['#', 'from', 'inputs', 'drift', 'flagged', 'model file'], windows),
    `<h2>Audit trail</h2>${trail(m.audit)}`,
  ].join('\n');
  return layout(`monitor ${pipelineId}`, body, who);
}

function windowRow(w: WindowReport): string {
  const drift = w.drift.length
    ? w.drift
        .map((d) => {
          const ks = d.ks ? `, KS p ${esc(fmt(d.ks.p))}` : '';
          return `<span class="${d.drifted ? 'error' : ''}">${esc(d.stat)} PSI ${esc(fmt(d.psi))}${ks}</span>`;
        })
        .join('<br>')
    : esc(w.error ? `not measured: ${w.error}` : 'too few inputs to judge');
  const file = w.integrity.ok ? 'intact' : `<strong>${esc(w.integrity.detail)}</strong>`;
  const since = esc(new Date(w.since).toISOString());
  return row([w.index, since, w.inputs, drift, w.flagged, file], ` data-window="${w.index}"`);
}

function incidentRow(pipelineId: string, i: Incident, responder: boolean, csrf: string): string {
  const resolution =
    i.resolution?.action === 'rollback'
      ? `rollback to <code>${esc(i.resolution.attestation)}</code>`
      : `retrain: <a href="/pipelines/${encodeURIComponent(i.retrain ?? '')}">${esc(i.retrain)}</a>`;
  const outcome =
    i.state === 'resolved'
      ? `resolved by ${esc(i.decidedBy)}: ${resolution}`
      : i.state === 'dismissed'
        ? `dismissed by ${esc(i.decidedBy)}`
        : esc(i.state);
  const action = (value: string, label: string, cls = '') =>
    `<button${cls ? ` class="${cls}"` : ''} name="action" value="${value}">${label}</button>`;
  const form =
    responder && i.state === 'open'
      ? [
          `<form method="post" action="/pipelines/${encodeURIComponent(pipelineId)}/monitor/incidents/${i.id}">`,
          `<input type="hidden" name="csrf" value="${esc(csrf)}">`,
          `<input type="hidden" name="model" value="${esc(i.modelSha256)}">`,
          '<p><input type="text" name="attestation" placeholder="sha256:… of the earlier release to roll back to"></p>',
          '<p><textarea name="comment" rows="2" placeholder="comment (required to dismiss)"></textarea></p>',
          [
            action('rollback', 'Roll back', 'approve'),
            action('retrain', 'Retrain'),
            action('dismiss', 'Dismiss', 'reject'),
          ],
          '</form>',
        ]
          .flat()
          .join('\n')
      : '';
  const opened = `${esc(i.openedAt)} (window ${i.window})`;
  return row([i.id, esc(i.kind), opened, esc(i.detail), outcome, form], ` data-incident="${i.id}"`);
}

function trail(audit: AuditEntry[]): string {
  if (!audit.length) return '<p>No entries yet.</p>';
  const rows = audit
    .map((a) => row([a.at, a.stage, a.kind, a.person, a.channel, a.decision, a.comment || a.reason].map((v) => esc(v))))
    .join('');
  return table('audit', ['when', 'incident', 'kind', 'who', 'channel', 'decision', 'what'], rows);
}
