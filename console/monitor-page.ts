// The monitor view: what the guarded server serves, each window's drift scores, the incidents and the trail.
// Incident responders (the monitor stage's roles) get forms to roll back, retrain or dismiss. Everything escaped.
import type { AuditEntry } from '../policy/index.js';
import type { Incident, MonitorStatus } from '../workflows/monitor-messages.js';
import { esc, layout } from './pages.js';

const fmt = (v: number) => (Math.abs(v) >= 0.001 || v === 0 ? v.toFixed(3) : v.toExponential(1));

export function monitorPage(
  pipelineId: string,
  m: MonitorStatus,
  who: { person: string; roles: string[]; csrf: string; responderRoles: string[] },
  flash?: { ok: boolean; text: string },
): string {
  const responder = who.roles.some((r) => who.responderRoles.includes(r));
  const windows = [...m.windows]
    .reverse()
    .slice(0, 20)
    .map((w) => {
      const drift = w.drift.length
        ? w.drift
            .map(
              (d) =>
                `<span class="${d.drifted ? 'error' : ''}">${esc(d.stat)} PSI ${esc(fmt(d.psi))}${d.ks ? `, KS p ${esc(fmt(d.ks.p))}` : ''}</span>`,
            )
            .join('<br>')
        : 'too few inputs to judge';
      return `<tr data-window="${w.index}"><td>${w.index}</td><td>${esc(new Date(w.since).toISOString())}</td><td>${w.inputs}</td><td>${drift}</td><td>${w.flagged}</td><td>${w.integrity.ok ? 'intact' : `<strong>${esc(w.integrity.detail)}</strong>`}</td></tr>`;
    })
    .join('');
  const incidents = m.incidents.map((i) => incidentRow(pipelineId, i, responder, who.csrf)).join('');
  const body = `<h1>Monitor of ${esc(pipelineId)}</h1>
${flash ? `<p class="${flash.ok ? 'ok' : 'error'}" id="flash">${esc(flash.text)}</p>` : ''}
<p><a href="/pipelines/${encodeURIComponent(pipelineId)}">the pipeline</a> · window ${m.windowMs / 1000} s · ${m.windowCount} windows · run ${m.runs + 1}</p>
<p>Serving <code id="serving">sha256:${esc(m.serving.modelSha256)}</code> from release <code>${esc(m.serving.attestation)}</code> (pipeline ${esc(m.serving.pipeline)}) since ${esc(m.serving.since)}</p>
<h2>Incidents</h2>${incidents ? `<table id="incidents"><tr><th>#</th><th>kind</th><th>opened</th><th>what</th><th>state</th><th></th></tr>${incidents}</table>` : '<p id="incidents">None.</p>'}
<h2>Windows</h2><table id="windows"><tr><th>#</th><th>from</th><th>inputs</th><th>drift</th><th>flagged</th><th>model file</th></tr>${windows}</table>
<h2>Audit trail</h2>${trail(m.audit)}`;
  return layout(`monitor ${pipelineId}`, body, who);
}

function incidentRow(pipelineId: string, i: Incident, responder: boolean, csrf: string): string {
  const outcome =
    i.state === 'resolved'
      ? `resolved by ${esc(i.decidedBy)}: ${i.resolution?.action === 'rollback' ? `rollback to <code>${esc(i.resolution.attestation)}</code>` : `retrain: <a href="/pipelines/${encodeURIComponent(i.retrain ?? '')}">${esc(i.retrain)}</a>`}`
      : i.state === 'dismissed'
        ? `dismissed by ${esc(i.decidedBy)}`
        : esc(i.state);
  const form =
    responder && i.state === 'open'
      ? `<form method="post" action="/pipelines/${encodeURIComponent(pipelineId)}/monitor/incidents/${i.id}">
<input type="hidden" name="csrf" value="${esc(csrf)}"><input type="hidden" name="model" value="${esc(i.modelSha256)}">
<p><input type="text" name="attestation" placeholder="sha256:… of the earlier release to roll back to"></p>
<p><textarea name="comment" rows="2" placeholder="comment (required to dismiss)"></textarea></p>
<button class="approve" name="action" value="rollback">Roll back</button> <button name="action" value="retrain">Retrain</button> <button class="reject" name="action" value="dismiss">Dismiss</button></form>`
      : '';
  return `<tr data-incident="${i.id}"><td>${i.id}</td><td>${esc(i.kind)}</td><td>${esc(i.openedAt)} (window ${i.window})</td><td>${esc(i.detail)}</td><td>${outcome}</td><td>${form}</td></tr>`;
}

function trail(audit: AuditEntry[]): string {
  if (!audit.length) return '<p>No entries yet.</p>';
  const rows = audit
    .map(
      (a) =>
        `<tr><td>${esc(a.at)}</td><td>${esc(a.stage)}</td><td>${esc(a.kind)}</td><td>${esc(a.person)}</td><td>${esc(a.channel)}</td><td>${esc(a.decision)}</td><td>${esc(a.comment || a.reason)}</td></tr>`,
    )
    .join('');
  return `<table id="audit"><tr><th>when</th><th>incident</th><th>kind</th><th>who</th><th>channel</th><th>decision</th><th>what</th></tr>${rows}</table>`;
}
