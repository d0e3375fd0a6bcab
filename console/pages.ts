// Server-rendered pages: no client-side build, no scripts. Every value from a pipeline is escaped.
import { formatMetric } from '../policy/index.js';
import { artifactDigests, type AuditEntry, type PipelineStatus, type StageStatus } from '../workflows/messages.js';

export const esc = (s: string | number | undefined) =>
  String(s ?? '').replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

const STYLE = `body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f8fa}
header{background:#0d1117;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1rem;align-items:center}
header a{color:#fff;text-decoration:none}header form{margin-left:auto}main{padding:1rem 1.2rem;max-width:1100px}
table{border-collapse:collapse;margin:.5rem 0 1rem;background:#fff}td,th{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top}
.lanes{display:flex;gap:.6rem;flex-wrap:wrap}.lane{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:.6rem;min-width:190px;flex:1}
.passed{border-top:4px solid #1a7f37}.failed,.rejected{border-top:4px solid #cf222e}.waiting,.blocked{border-top:4px solid #bf8700}.running{border-top:4px solid #0969da}.pending{border-top:4px solid #8c959f}
.notice{background:#fff8c5;border:1px solid #d4a72c;padding:.6rem;border-radius:6px}.error{background:#ffebe9;border:1px solid #cf222e;padding:.6rem;border-radius:6px}.ok{background:#dafbe1;border:1px solid #1a7f37;padding:.6rem;border-radius:6px}
button{padding:.35rem .8rem;border-radius:6px;border:1px solid #1b1f24;background:#fff;cursor:pointer}button.approve{background:#1a7f37;color:#fff;border-color:#1a7f37}button.reject{background:#cf222e;color:#fff;border-color:#cf222e}
code{font-size:13px}textarea,input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.4rem;font:inherit}`;

export function layout(title: string, body: string, who?: { person: string; csrf: string }): string {
  const signOut = who
    ? `<span>${esc(who.person)}</span><form method="post" action="/signout"><input type="hidden" name="csrf" value="${esc(who.csrf)}"><button>Sign out</button></form>`
    : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)} · SecMLOps</title><meta name="viewport" content="width=device-width"><style>${STYLE}</style></head>
<body><header><a href="/"><strong>SecMLOps</strong></a>${signOut}</header><main>${body}</main></body></html>`;
}

export function signInPage(message?: string): string {
  return layout(
    'Sign in',
    `<h1>Sign in</h1>${message ? `<p class="error">${esc(message)}</p>` : ''}
<p>Paste the token your operator issued with <code>npx secmlops token issue --person &lt;you&gt;</code>.</p>
<form method="post" action="/signin"><p><input type="password" name="token" id="token" autocomplete="off" required></p><p><button type="submit">Sign in</button></p></form>`,
  );
}

export interface PendingItem {
  workflowId: string;
  policyName: string;
  subject: string;
  stage: StageStatus;
}

export function pendingPage(
  who: { person: string; roles: string[]; csrf: string },
  items: PendingItem[],
  problem?: string,
  others = 0,
): string {
  const rows = items
    .map(
      (i) =>
        `<tr><td><a href="/pipelines/${encodeURIComponent(i.workflowId)}">${esc(i.workflowId)}</a></td><td>${esc(i.subject)}</td><td>${esc(i.stage.name)}</td><td>${esc(i.stage.approval?.missingRoles.join(', ') || 'quorum')}</td></tr>`,
    )
    .join('');
  const table = items.length
    ? `<table><tr><th>pipeline</th><th>change</th><th>stage</th><th>needs</th></tr>${rows}</table>`
    : '<p>Nothing is waiting for your roles.</p>';
  const hidden = others
    ? `<p>${others} other approval${others === 1 ? '' : 's'} wait for roles you do not hold.</p>`
    : '';
  return layout(
    'Pending approvals',
    `<h1>Pending approvals</h1>${problem ? `<p class="notice">${esc(problem)}</p>` : ''}<p>Your roles: ${esc(who.roles.join(', ') || 'none')}</p>${table}${hidden}`,
    who,
  );
}

/** Accuracy versus epsilon as an inline SVG line chart. */
export function curveChart(curve: { attack: string; eps: number; robustAccuracy: number }[]): string {
  if (curve.length < 2) return '';
  const w = 420;
  const h = 220;
  const pad = 36;
  const maxEps = Math.max(...curve.map((c) => c.eps)) || 1;
  const x = (e: number) => pad + (e / maxEps) * (w - 2 * pad);
  const y = (a: number) => h - pad - a * (h - 2 * pad);
  const byAttack = new Map<string, typeof curve>();
  for (const c of curve) byAttack.set(c.attack, [...(byAttack.get(c.attack) ?? []), c]);
  const colors = ['#0969da', '#cf222e', '#1a7f37', '#8250df'];
  const lines = [...byAttack].map(([attack, pts], k) => {
    const d = pts
      .sort((a, b) => a.eps - b.eps)
      .map((p, i) => `${i ? 'L' : 'M'}${x(p.eps).toFixed(1)},${y(p.robustAccuracy).toFixed(1)}`)
      .join(' ');
    return `<path d="${d}" fill="none" stroke="${colors[k % colors.length]}" stroke-width="2"/><text x="${w - pad}" y="${pad + 14 * k}" text-anchor="end" fill="${colors[k % colors.length]}">${esc(attack)}</text>`;
  });
  const ticks = [0, 0.5, 1]
    .map((a) => `<text x="${pad - 6}" y="${y(a) + 4}" text-anchor="end">${a * 100}%</text>`)
    .join('');
  return `<svg role="img" aria-label="accuracy versus epsilon" width="${w}" height="${h}" font-size="11" style="background:#fff;border:1px solid #d0d7de">
<line x1="${pad}" y1="${h - pad}" x2="${w - pad}" y2="${h - pad}" stroke="#8c959f"/><line x1="${pad}" y1="${pad}" x2="${pad}" y2="${h - pad}" stroke="#8c959f"/>${ticks}
<text x="${w / 2}" y="${h - 8}" text-anchor="middle">ε (0 to ${maxEps})</text>${lines.join('')}</svg>`;
}

export function pipelinePage(
  s: PipelineStatus,
  who: { person: string; roles: string[]; csrf: string },
  flash?: { ok: boolean; text: string },
): string {
  const lanes = s.stages
    .map((st) => {
      const tasks = st.tasks.map((t) => `<li>${esc(t.name)}: ${esc(t.state)}</li>`).join('');
      const canDecide =
        st.state === 'waiting' &&
        !!st.approval &&
        st.approval.roles.some((r) => who.roles.includes(r)) &&
        !st.approval.approvers.includes(who.person);
      const form = canDecide
        ? `<form method="post" action="/pipelines/${encodeURIComponent(s.workflowId)}/stages/${esc(st.name)}/decision">
<input type="hidden" name="csrf" value="${esc(who.csrf)}"><input type="hidden" name="subject" value="${esc(s.subjectDigest ?? '')}"><p><textarea name="comment" rows="2" placeholder="comment (required to reject)"></textarea></p>
<button class="approve" name="decision" value="approve">Approve ${esc(st.name)}</button> <button class="reject" name="decision" value="reject">Reject</button></form>`
        : '';
      const approval = st.approval
        ? `<p>Approval: ${esc(st.approval.roles.join(' + '))}${st.approval.approvers.length ? `; approved by ${esc(st.approval.approvers.join(', '))}` : ''}${st.state === 'waiting' ? `; needs ${esc(st.approval.missingRoles.join(', ') || 'quorum')}` : ''}</p>`
        : '';
      const watch =
        st.name === 'monitor' && st.state === 'running'
          ? `<p><a href="/pipelines/${encodeURIComponent(s.workflowId)}/monitor">windows and incidents</a></p>`
          : '';
      return `<section class="lane ${esc(st.state)}" data-stage="${esc(st.name)}"><h3>${esc(st.name)}</h3>${watch}<p><strong>${esc(st.state)}</strong>${st.task ? ` — ${esc(st.task)}` : ''}</p>
<ul>${tasks}</ul>${st.error ? `<p class="error">${esc(st.error)}</p>` : ''}${st.blockers.map((b) => `<p class="notice">${esc(b)}</p>`).join('')}${approval}${form}</section>`;
    })
    .join('');
  const gates = s.stages.flatMap((st) =>
    st.gates.map(
      (g) =>
        `<tr><td>${esc(g.id)}</td><td>${esc(st.name)}</td><td><code>${esc(g.metric)}</code></td><td>${esc(g.op)} ${esc(formatMetric(g.value))}</td><td>${g.measured === undefined ? 'not measured' : esc(formatMetric(g.measured))}</td><td>${g.passed ? 'pass' : '<strong>fail</strong>'}</td></tr>`,
    ),
  );
  const metrics = s.stages.flatMap((st) =>
    Object.entries(st.metrics).map(
      ([k, v]) => `<tr><td><code>${esc(k)}</code></td><td>${esc(formatMetric(v))}</td></tr>`,
    ),
  );
  // The policy's accuracy-versus-ε curve when it asked for one; otherwise each attack from clean (ε = 0) to its ε.
  const ev = s.stages.find((st) => st.evaluation)?.evaluation;
  const curve =
    ev?.curve ??
    ev?.attacks.flatMap((a) =>
      a.eps === undefined
        ? []
        : [
            { attack: a.id, eps: 0, robustAccuracy: ev.cleanAccuracy },
            { attack: a.id, eps: a.eps, robustAccuracy: a.robustAccuracy },
          ],
    );
  const artifacts = artifactDigests(s).map((a) => [a.stage, a.name, a.ref]);
  const body = `<h1>${esc(s.workflowId)}</h1>
${flash ? `<p class="${flash.ok ? 'ok' : 'error'}" id="flash">${esc(flash.text)}</p>` : ''}
<p>Policy <code>${esc(s.policyName)}</code> · ${esc(s.subject.repo)}${s.subject.pr !== undefined ? ` #${s.subject.pr}` : ''} · <code>${esc(s.subject.headSha.slice(0, 12))}</code> by ${esc(s.subject.author)} · <strong id="state">${esc(s.state)}</strong>${s.reason ? ` — ${esc(s.reason)}` : ''}</p>
<div class="lanes">${lanes}</div>
${gates.length ? `<h2>Gates</h2><table><tr><th>gate</th><th>stage</th><th>metric</th><th>threshold</th><th>measured</th><th>result</th></tr>${gates.join('')}</table>` : ''}
${metrics.length ? `<h2>Metrics</h2><table>${metrics.join('')}</table>` : ''}
${curve?.length ? `<h2>Accuracy versus ε</h2>${curveChart(curve)}` : ''}
<h2>Audit trail</h2>${auditTable(s.audit)}
${artifacts.length ? `<h2>Artifacts</h2><table><tr><th>stage</th><th>artifact</th><th>digest</th></tr>${artifacts.map((a) => `<tr><td>${esc(a[0])}</td><td>${esc(a[1])}</td><td><code>${esc(a[2])}</code></td></tr>`).join('')}</table>` : ''}`;
  return layout(s.workflowId, body, who);
}

function auditTable(audit: AuditEntry[]): string {
  if (!audit.length) return '<p>No entries yet.</p>';
  const rows = audit
    .map(
      (a) =>
        `<tr><td>${esc(a.at)}</td><td>${esc(a.stage)}</td><td>${esc(a.kind)}</td><td>${esc(a.person)}</td><td>${esc(a.roles.join(', '))}</td><td>${esc(a.channel)}</td><td>${esc(a.decision)}</td><td>${esc(a.comment ?? a.reason)}</td></tr>`,
    )
    .join('');
  return `<table id="audit"><tr><th>when</th><th>stage</th><th>kind</th><th>who</th><th>roles</th><th>channel</th><th>decision</th><th>comment</th></tr>${rows}</table>`;
}
