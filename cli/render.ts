// Text rendering of a pipeline's status for `secmlops status` and `npm start`.
import type { Client } from '@temporalio/client';
import { describeGate } from '../policy/index.js';
import { decodePayloads } from '../worker/connection.js';
import type { TrainProgressMessage } from '../engine/jobs/protocol.js';
import type { AuditEntry, PipelineStatus, StageStatus } from '../workflows/messages.js';

const MARK: Record<StageStatus['state'], string> = {
  pending: '·',
  running: '▶',
  waiting: '⏸',
  blocked: '⛔',
  passed: '✔',
  failed: '✘',
  rejected: '✘',
};

export interface ActivityProgress {
  activity: string;
  attempt: number;
  details?: unknown;
}

/** Heartbeat progress of a running stage's activities, read from the server (workflows cannot see heartbeats). */
export async function stageProgress(client: Client, stageWorkflowId: string): Promise<ActivityProgress[]> {
  try {
    const d = await client.workflow.getHandle(stageWorkflowId).describe();
    const pending = d.raw.pendingActivities ?? [];
    return Promise.all(
      pending.map(async (a) => ({
        activity: a.activityType?.name ?? '?',
        attempt: a.attempt ?? 1,
        details: unsealed((await decodePayloads(a.heartbeatDetails?.payloads))[0]),
      })),
    );
  } catch {
    return [];
  }
}

/** Evidence-producing activities seal their heartbeats as { value, sig }: progress is the value. */
function unsealed(details: unknown): unknown {
  const d = details as { value?: unknown; sig?: unknown } | undefined;
  return d && typeof d === 'object' && typeof d.sig === 'string' && 'value' in d ? d.value : details;
}

export function progressBar(done: number, total: number, width = 24): string {
  const frac = total > 0 ? Math.min(1, done / total) : 0;
  const full = Math.round(frac * width);
  return `[${'█'.repeat(full)}${'░'.repeat(width - full)}] ${(frac * 100).toFixed(0).padStart(3)}%`;
}

export function renderProgress(p: ActivityProgress): string {
  const d = p.details as
    | {
        done?: unknown[] | number;
        totalFiles?: number;
        bytes?: number;
        task?: string;
        total?: number;
        progress?: TrainProgressMessage;
        checkpoint?: { epoch: number; step: number };
      }
    | undefined;
  const attempt = p.attempt > 1 ? ` (attempt ${p.attempt})` : '';
  if (d?.progress) {
    const t = d.progress;
    const ck = d.checkpoint ? `, checkpoint after epoch ${d.checkpoint.epoch} step ${d.checkpoint.step}` : '';
    return `${p.activity} epoch ${t.epoch}/${t.epochs} ${progressBar(t.step, t.steps)} loss ${t.loss.toFixed(4)} acc ${(t.accuracy * 100).toFixed(1)}% ${Math.round(t.imagesPerSecond)} img/s${ck}${attempt}`;
  }
  if (d && typeof d.done === 'number' && typeof d.total === 'number') {
    return `${p.activity} ${d.task ?? ''} ${progressBar(d.done, d.total)} ${d.done}/${d.total} images${attempt}`;
  }
  if (d && Array.isArray(d.done) && typeof d.totalFiles === 'number') {
    return `${p.activity} ${progressBar(d.done.length, d.totalFiles)} ${d.done.length}/${d.totalFiles} files, ${((d.bytes ?? 0) / 1e6).toFixed(1)} MB${attempt}`;
  }
  return `${p.activity} running${attempt}`;
}

export function renderStage(s: StageStatus): string[] {
  const lines = [`${MARK[s.state]} ${s.name.padEnd(8)} ${s.state}${s.task ? ` — ${s.task}` : ''}`];
  if (s.approval && (s.state === 'waiting' || s.state === 'blocked')) {
    lines.push(
      `    needs ${s.approval.missingRoles.join(' + ') || 'more approvers'} (quorum ${s.approval.quorum}); approved so far: ${s.approval.approvers.join(', ') || 'nobody'}`,
    );
  }
  for (const b of s.blockers) lines.push(`    blocker: ${b}`);
  if (s.evaluation) {
    const e = s.evaluation;
    lines.push(`    clean accuracy ${(e.cleanAccuracy * 100).toFixed(2)}% on ${e.images} images`);
    if (e.curve)
      lines.push(
        `    accuracy vs eps (${e.curve[0]?.attack}): ${e.curve.map((c) => `${c.eps}→${(c.robustAccuracy * 100).toFixed(1)}%`).join(', ')}`,
      );
    for (const a of e.attacks)
      lines.push(
        `    ${a.id} (${a.attack}${a.eps !== undefined ? ` eps ${a.eps}` : ''}): robust accuracy ${(a.robustAccuracy * 100).toFixed(2)}%, success rate ${(a.successRate * 100).toFixed(2)}%, ${a.seconds.toFixed(1)} s`,
      );
  }
  for (const g of s.gates) lines.push(`    gate ${describeGate(g)}`);
  if (s.error) lines.push(`    ${s.error}`);
  return lines;
}

export function renderAudit(a: AuditEntry): string {
  const who = a.person
    ? `${a.person}${a.roles.length ? ` (${a.roles.join(', ')})` : ''} via ${a.channel}`
    : a.roles.join(', ');
  const what = a.kind === 'decision' ? a.decision : a.kind;
  // Task, gate and end entries say what and how it went: "task manifest done", "gate test-size passed".
  const step = [a.name, a.state].filter(Boolean).join(' ');
  const head = `${a.at}  ${a.stage.padEnd(8)} ${what?.padEnd(9)} ${step ? `${step} ` : ''}${who}`.trimEnd();
  return `${head}${a.comment ? ` — "${a.comment}"` : ''}${a.reason ? ` — ${a.reason}` : ''}`;
}

/** The entries worth printing as they happen: decisions, refusals, escalations, stage ends; not every task step. */
export function notable(a: AuditEntry): boolean {
  return a.kind !== 'task' && a.kind !== 'gate';
}

export function renderStatus(s: PipelineStatus, progress: Map<string, ActivityProgress[]> = new Map()): string {
  const lines = [
    `${s.workflowId}  policy ${s.policyName}  ${s.subject.repo}${s.subject.pr ? `#${s.subject.pr}` : ''} @ ${s.subject.headSha.slice(0, 12)}  — ${s.state.toUpperCase()}`,
  ];
  for (const stage of s.stages) {
    lines.push(...renderStage(stage));
    for (const p of progress.get(stage.name) ?? []) lines.push(`    ${renderProgress(p)}`);
  }
  if (s.reason) lines.push(`verdict: ${s.reason}`);
  if (s.audit.length) lines.push('audit trail:', ...s.audit.map((a) => `  ${renderAudit(a)}`));
  return lines.join('\n');
}
