// The verdict as Markdown: one renderer for the PR comment (written by the worker) and the gate action's job
// summary, so both show the same tables. Pure: no I/O.
import { formatMetric } from '../policy/index.js';
import { artifactDigests, type PipelineStatus } from '../workflows/messages.js';

/** Marks the one SecMLOps comment on a PR, so later runs update it in place. */
export const REPORT_MARKER = '<!-- secmlops:report -->';

export type Verdict = 'passed' | 'failed' | 'cancelled' | 'running';

const ICON: Record<Verdict, string> = { passed: '✅', failed: '❌', cancelled: '⛔', running: '⏳' };

/** Table cells may not break the table: pipes and newlines are escaped. */
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');

export interface ReportOptions {
  verdict: Verdict;
  /** Where the run can be seen (console or Temporal UI). */
  url?: string;
  runId?: string;
}

export function renderReport(s: PipelineStatus, o: ReportOptions): string {
  const lines: string[] = [];
  const reason = o.verdict === 'passed' || o.verdict === 'running' ? '' : s.reason ? `: ${s.reason}` : '';
  lines.push(`### SecMLOps ${ICON[o.verdict]} ${o.verdict}${reason}`);
  lines.push('');
  const link = o.url ? ` · [run](${o.url})` : '';
  lines.push(
    `Policy \`${s.policyName}\` · \`${s.subject.headSha.slice(0, 12)}\` · pipeline \`${s.workflowId}\`${o.runId ? ` (run \`${o.runId}\`)` : ''}${link}`,
  );
  lines.push('');
  lines.push('| stage | state | detail |', '| --- | --- | --- |');
  for (const st of s.stages) {
    const detail =
      st.error ??
      (st.state === 'waiting' && st.approval ? `waiting for ${st.approval.missingRoles.join(', ')}` : (st.task ?? ''));
    lines.push(`| ${st.name} | ${st.state} | ${cell(detail)} |`);
  }
  const gates = s.stages.flatMap((st) => st.gates.map((g) => ({ stage: st.name, ...g })));
  if (gates.length > 0) {
    lines.push(
      '',
      '**Gates**',
      '',
      '| gate | stage | metric | threshold | measured | result |',
      '| --- | --- | --- | --- | --- | --- |',
    );
    for (const g of gates) {
      const measured = g.measured === undefined ? 'not measured' : formatMetric(g.measured);
      lines.push(
        `| ${cell(g.id)} | ${g.stage} | \`${g.metric}\` | ${g.op} ${formatMetric(g.value)} | ${measured} | ${g.passed ? 'pass' : '**fail**'} |`,
      );
    }
  }
  const decisions = s.audit.filter((a) => a.kind === 'decision');
  if (decisions.length > 0) {
    lines.push(
      '',
      '**Approvals**',
      '',
      '| stage | decision | who | roles | channel | when | comment |',
      '| --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const d of decisions) {
      lines.push(
        `| ${d.stage} | ${d.decision ?? ''} | ${cell(d.person ?? '')} | ${d.roles.join(', ')} | ${d.channel ?? ''} | ${d.at} | ${cell(d.comment ?? '')} |`,
      );
    }
  }
  const artifacts = artifactDigests(s);
  if (artifacts.length > 0) {
    lines.push('', '**Artifacts**', '', '| stage | artifact | digest |', '| --- | --- | --- |');
    for (const a of artifacts) lines.push(`| ${a.stage} | ${cell(a.name)} | \`${cell(a.ref)}\` |`);
  }
  return lines.join('\n') + '\n';
}

/** The gates that failed, by id, for messages. */
export function failedGates(s: PipelineStatus): string[] {
  return s.stages.flatMap((st) => st.gates.filter((g) => !g.passed).map((g) => g.id));
}
