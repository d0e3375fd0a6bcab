// Slack messages for approvals: when a stage starts waiting, a Block Kit message with Approve and Reject buttons
// (pressed in Slack, they reach the console's /slack/interactivity); when an approval times out, the escalation.
import { ApplicationFailure } from '@temporalio/activity';
import { WebClient } from '@slack/web-api';
import { evidenceProblem, monitorApproval, type Evidence, type EvidenceBody } from '../policy/index.js';
import type { Subject } from '../workflows/messages.js';
import type { EvidenceSigner } from './evidence.js';

export interface SlackCredentials {
  token: string;
  /** Web API base URL (default https://slack.com/api/); a stand-in in tests. */
  apiUrl?: string;
}

export function slackFromEnv(env: NodeJS.ProcessEnv = process.env): SlackCredentials | undefined {
  return env.SLACK_BOT_TOKEN ? { token: env.SLACK_BOT_TOKEN, apiUrl: env.SLACK_API_URL } : undefined;
}

export interface SlackNotice {
  kind: 'waiting' | 'escalated';
  channel: string;
  pipelineId: string;
  stage: string;
  roles: string[];
  subject: Subject;
  /** The change's digest (runs since decisions are bound to it). */
  subjectDigest?: string;
  reason?: string;
  /**
   * The pipeline's start evidence (runs since the trust boundary). Where it is given, the channel, pipeline, change
   * and digest come from it, not from the caller: the bot token posts only what a worker confirmed.
   */
  start?: Evidence;
}

export async function notifySlack(
  creds: SlackCredentials | undefined,
  signer: () => Promise<EvidenceSigner>,
  notice: SlackNotice,
): Promise<{ ts?: string }> {
  const client = slackClient(creds);
  let n = notice;
  if (notice.start) {
    const b = await provenStart(notice.start, signer);
    const channel = b.payload.policy.notifications?.slack?.channel;
    const stage = b.payload.policy.stages.find((s) => s.name === notice.stage);
    if (!channel || !stage)
      throw ApplicationFailure.nonRetryable(
        `not posting to Slack: the policy names no Slack channel or no stage ${notice.stage}`,
        'UnprovenNotice',
      );
    n = {
      ...notice,
      channel,
      pipelineId: b.pipelineId,
      subject: b.payload.subject,
      subjectDigest: b.subjectDigest,
      roles: notice.roles.filter((r) => typeof r === 'string').slice(0, 10),
    };
  }
  const change = `${n.subject.repo}${n.subject.pr !== undefined ? ` #${n.subject.pr}` : ''} @ ${n.subject.headSha.slice(0, 12)}`;
  // The buttons carry the digest of the change the message shows, so a press decides on that change only.
  const value = JSON.stringify({
    workflowId: n.pipelineId,
    stage: n.stage,
    ...(n.subjectDigest ? { subjectDigest: n.subjectDigest } : {}),
  });
  const text =
    n.kind === 'waiting'
      ? `SecMLOps: stage *${n.stage}* of ${n.pipelineId} (${change}) waits for approval by ${n.roles.join(' + ')}`
      : `SecMLOps escalation: stage *${n.stage}* of ${n.pipelineId} (${change}): ${n.reason ?? 'no decision yet'}`;
  const r = await client.chat.postMessage({
    channel: n.channel,
    text,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text } },
      {
        type: 'actions',
        block_id: 'secmlops-decision',
        elements: [
          {
            type: 'button',
            action_id: 'approve',
            style: 'primary',
            text: { type: 'plain_text', text: 'Approve' },
            value,
          },
          { type: 'button', action_id: 'reject', style: 'danger', text: { type: 'plain_text', text: 'Reject' }, value },
        ],
      },
    ],
  });
  return { ts: r.ts };
}

export interface IncidentNotice {
  /** The pipeline's start evidence: the channel comes from the policy it proves, never from the caller. */
  start: Evidence;
  monitorId: string;
  incident: number;
  kind: string;
  detail: string;
  modelSha256: string;
  /** Ignored: the responders' roles come from the policy the start evidence proves. */
  roles?: string[];
}

/** Tells the incident responders an incident opened; they resolve it from the CLI or the console. */
export async function notifyIncident(
  creds: SlackCredentials | undefined,
  signer: () => Promise<EvidenceSigner>,
  n: IncidentNotice,
): Promise<{ ts?: string }> {
  const client = slackClient(creds);
  const b = await provenStart(n.start, signer);
  const channel = b.payload.policy.notifications?.slack?.channel;
  if (!channel)
    throw ApplicationFailure.nonRetryable('not posting to Slack: the policy names no channel', 'UnprovenNotice');
  if (n.monitorId !== `${b.pipelineId}/monitor`)
    throw ApplicationFailure.nonRetryable(
      `not posting to Slack: ${n.monitorId} is not ${b.pipelineId}'s monitor`,
      'UnprovenNotice',
    );
  const kind = ['drift', 'integrity', 'detector', 'monitoring', 'quiet'].includes(n.kind) ? n.kind : 'unknown';
  // The responders come from the proven policy, and every caller-given text is escaped: Slack reads <…> and &
  // as mentions and links, so an unescaped detail could ping a channel or plant a link.
  const roles = monitorApproval(b.payload.policy).roles;
  const model = /^[0-9a-f]{64}$/.test(String(n.modelSha256)) ? n.modelSha256.slice(0, 12) : 'unknown';
  const text =
    `SecMLOps incident ${Number(n.incident)} (${kind}) on the model sha256:${model}… ` +
    `served from ${slackEscape(b.pipelineId)}: ${slackEscape(String(n.detail).slice(0, 300))}. ` +
    `${roles.join(' or ')}: roll back or retrain with ` +
    `\`secmlops incident ${slackEscape(b.pipelineId)} ${Number(n.incident)}\`.`;
  const r = await client.chat.postMessage({ channel, text, mrkdwn: false });
  return { ts: r.ts };
}

/** Slack's three control characters, escaped as its API asks. */
function slackEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The worker's Slack client; without a token every notice fails, named. */
function slackClient(creds: SlackCredentials | undefined): WebClient {
  if (!creds)
    throw ApplicationFailure.nonRetryable(
      'this worker has no Slack token: set SLACK_BOT_TOKEN (and SLACK_API_URL for a non-default API)',
      'NoSlackToken',
    );
  return new WebClient(creds.token, {
    ...(creds.apiUrl ? { slackApiUrl: creds.apiUrl } : {}),
    retryConfig: { retries: 2 },
  });
}

/** The body of start evidence whose signature checks with the workers' key: what a notice may name. */
async function provenStart(start: Evidence, signer: () => Promise<EvidenceSigner>): Promise<EvidenceBody<'start'>> {
  const why = evidenceProblem(start, (await signer()).publicKey, 'start');
  if (why) throw ApplicationFailure.nonRetryable(`not posting to Slack: ${why}`, 'UnprovenNotice');
  return (start as Evidence<'start'>).body;
}
