// Slack messages for approvals: when a stage starts waiting, a Block Kit message with Approve and Reject buttons
// (pressed in Slack, they reach the console's /slack/interactivity); when an approval times out, the escalation.
import { ApplicationFailure } from '@temporalio/activity';
import { WebClient } from '@slack/web-api';
import type { Subject } from '../workflows/messages.js';

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
}

export async function notifySlack(creds: SlackCredentials | undefined, n: SlackNotice): Promise<{ ts?: string }> {
  if (!creds) throw ApplicationFailure.nonRetryable('this worker has no Slack token: set SLACK_BOT_TOKEN (and SLACK_API_URL for a non-default API)', 'NoSlackToken');
  const client = new WebClient(creds.token, { ...(creds.apiUrl ? { slackApiUrl: creds.apiUrl } : {}), retryConfig: { retries: 2 } });
  const change = `${n.subject.repo}${n.subject.pr !== undefined ? ` #${n.subject.pr}` : ''} @ ${n.subject.headSha.slice(0, 12)}`;
  // The buttons carry the digest of the change the message shows, so a press decides on that change only.
  const value = JSON.stringify({ workflowId: n.pipelineId, stage: n.stage, ...(n.subjectDigest ? { subjectDigest: n.subjectDigest } : {}) });
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
          { type: 'button', action_id: 'approve', style: 'primary', text: { type: 'plain_text', text: 'Approve' }, value },
          { type: 'button', action_id: 'reject', style: 'danger', text: { type: 'plain_text', text: 'Reject' }, value },
        ],
      },
    ],
  });
  return { ts: r.ts };
}
