// SecMLOps approve: a PR comment `/secmlops approve <stage> [comment]` or `/secmlops reject <stage> <reason>` becomes
// an approval Update from the comment's author, signed with the github channel's key. The comment's author is the
// identity; the workflow still checks the person's roles, the author rule and everything else.
import * as core from '@actions/core';
import { createPrivateKey } from 'node:crypto';
import { DecisionRefused, sendDecision } from '../../../cli/decide.js';
import { loadPolicy } from '../../../cli/load-policy.js';
import { pipelineId } from '../../../cli/subject.js';
import { GitHubApi, parseRepo } from '../../../github/api.js';
import { STAGE_NAMES } from '../../../policy/index.js';
import { connectFromInputs, inWorkspace, messageOf, readContext } from '../../shared/connect.js';
import { commentFromEvent } from '../../shared/events.js';

const TRUSTED = ['OWNER', 'MEMBER', 'COLLABORATOR'];
const USAGE = 'usage: `/secmlops approve <stage> [comment]` or `/secmlops reject <stage> <reason>`';

export interface Command {
  decision: 'approve' | 'reject';
  stage: string;
  comment: string;
}

/** The command in a comment, undefined when the comment is not addressed to SecMLOps, or a string saying what is wrong. */
export function parseCommand(body: string): Command | string | undefined {
  const first = body.trim().split(/\r?\n/)[0];
  if (!/^\/secmlops(\s|$)/.test(first)) return undefined;
  const m = /^\/secmlops\s+(approve|reject)\s+(\S+)(?:\s+(.*))?$/.exec(first.trim());
  if (!m) return `I could not read that command; ${USAGE}`;
  const [, decision, stage, text = ''] = m;
  if (!(STAGE_NAMES as readonly string[]).includes(stage)) return `"${stage}" is not a stage (${STAGE_NAMES.join(', ')}); ${USAGE}`;
  if (decision === 'reject' && !text.trim()) return `a rejection needs a reason; ${USAGE}`;
  return { decision: decision as Command['decision'], stage, comment: text.trim() };
}

export async function run(): Promise<void> {
  try {
    const ctx = await readContext();
    const ev = commentFromEvent(ctx.eventName, ctx.event);
    const command = parseCommand(ev.comment.body);
    if (command === undefined) {
      core.info('the comment is not a SecMLOps command');
      core.setOutput('outcome', 'ignored');
      return;
    }
    const token = core.getInput('github-token', { required: true });
    core.setSecret(token);
    const api = new GitHubApi(token);
    const repo = parseRepo(ev.repo);
    const who = `@${ev.comment.login}`;
    const answer = async (accepted: boolean, text: string) => {
      await api.react(repo, ev.comment.id, accepted ? '+1' : '-1');
      await api.createComment(repo, ev.issue, `${who} ${text}`);
      core.setOutput('outcome', accepted ? 'accepted' : 'refused');
      core.setOutput('reason', text);
      if (accepted) core.info(text);
      else core.warning(text);
    };
    // Checks that need nothing but the event come first: they refuse before any key or connection is touched.
    if (ev.action !== 'created') return await answer(false, `edited comments are not decisions (this one was ${ev.action}); post a new comment.`);
    if (ev.comment.userType === 'Bot' || ev.comment.login.endsWith('[bot]')) return await answer(false, 'comments by bots are not decisions.');
    if (!ev.isPullRequest) return await answer(false, 'SecMLOps decisions are taken on pull requests only.');
    if (!TRUSTED.includes(ev.comment.association)) {
      return await answer(false, `only the repository's owners, members and collaborators may decide; your association is ${ev.comment.association}.`);
    }
    if (typeof command === 'string') return await answer(false, command);
    const keyText = core.getInput('github-key', { required: true });
    core.setSecret(keyText);
    const key = createPrivateKey(keyText.includes('BEGIN') ? keyText : Buffer.from(keyText, 'base64').toString('utf8'));
    const policy = await loadPolicy(inWorkspace(ctx, core.getInput('policy') || 'secmlops.yaml'));
    const person = policy.people.find((p) => p.github?.toLowerCase() === ev.comment.login.toLowerCase());
    if (!person) return await answer(false, `GitHub user ${ev.comment.login} is not a person in policy ${policy.name}; ask for your login to be added to people.`);
    const { client } = await connectFromInputs();
    const workflowId = pipelineId(policy.name, { repo: ev.repo, pr: ev.issue, headSha: '', author: ev.issueAuthor });
    try {
      const r = await sendDecision(client, { workflowId, stage: command.stage, person: person.id, decision: command.decision, comment: command.comment, key, keyPath: 'github-key input', channel: 'github' });
      const more = r.missingRoles.length ? r.missingRoles.join(', ') : 'more approvals to reach its quorum';
      const settled = r.outcome ? `stage ${command.stage} is ${r.outcome}.` : `stage ${command.stage} still needs ${more}.`;
      await answer(true, `your ${command.decision === 'approve' ? 'approval' : 'rejection'} of ${command.stage} was accepted as ${person.id}; ${settled}`);
    } catch (e) {
      if (!(e instanceof DecisionRefused)) throw e;
      await answer(false, `the pipeline refused your ${command.decision === 'approve' ? 'approval' : 'rejection'}: ${e.message}`);
    }
  } catch (e) {
    core.setFailed(messageOf(e));
  }
}
