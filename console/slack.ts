// Slack's request signing (https://api.slack.com/authentication/verifying-requests-from-slack): v0=HMAC-SHA256 of
// "v0:<timestamp>:<raw body>" with the app's signing secret, compared in constant time, within five minutes of now.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const MAX_SKEW_SECONDS = 5 * 60;

export function slackSignature(secret: string, timestamp: string, rawBody: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${rawBody}`).digest('hex')}`;
}

/** Why the request is not Slack's, or undefined when it is. */
export function checkSlackRequest(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  rawBody: string,
  nowMs = Date.now(),
): string | undefined {
  const ts = headers['x-slack-request-timestamp'];
  const sig = headers['x-slack-signature'];
  if (typeof ts !== 'string' || typeof sig !== 'string')
    return 'missing X-Slack-Request-Timestamp or X-Slack-Signature';
  if (!/^\d{1,12}$/.test(ts)) return 'the timestamp is not a number of seconds';
  if (Math.abs(nowMs / 1000 - Number(ts)) > MAX_SKEW_SECONDS)
    return 'the timestamp is more than five minutes from now (a replay?)';
  const expected = Buffer.from(slackSignature(secret, ts, rawBody));
  const given = Buffer.from(sig);
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return 'the signature does not match the body';
  return undefined;
}

export interface SlackAction {
  userId: string;
  decision: 'approve' | 'reject';
  workflowId: string;
  stage: string;
  responseUrl?: string;
  channel?: string;
  messageTs?: string;
  /** The change the message showed (its subject digest), which the decision is signed for. */
  subjectDigest?: string;
}

/** The button press in a block_actions payload; buttons carry {"workflowId","stage"} as their value. */
export function parseSlackAction(rawBody: string): SlackAction {
  const payload = new URLSearchParams(rawBody).get('payload');
  if (!payload) throw new Error('the request has no payload field');
  const p = JSON.parse(payload) as {
    type?: string;
    user?: { id?: string };
    actions?: { action_id?: string; value?: string }[];
    response_url?: string;
    channel?: { id?: string };
    container?: { message_ts?: string };
  };
  if (p.type !== 'block_actions') throw new Error(`unsupported interaction type ${p.type ?? '(none)'}`);
  const action = p.actions?.[0];
  if (!p.user?.id || !action || (action.action_id !== 'approve' && action.action_id !== 'reject'))
    throw new Error('the payload has no approve or reject action from a user');
  const value = JSON.parse(action.value ?? '{}') as { workflowId?: unknown; stage?: unknown; subjectDigest?: unknown };
  if (typeof value.workflowId !== 'string' || typeof value.stage !== 'string' || !value.workflowId || !value.stage)
    throw new Error('the button names no pipeline and stage');
  const digest = typeof value.subjectDigest === 'string' ? { subjectDigest: value.subjectDigest } : {};
  return {
    userId: p.user.id,
    decision: action.action_id,
    workflowId: value.workflowId,
    stage: value.stage,
    responseUrl: p.response_url,
    channel: p.channel?.id,
    messageTs: p.container?.message_ts,
    ...digest,
  };
}
