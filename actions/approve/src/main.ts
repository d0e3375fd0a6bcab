// SecMLOps approve: a PR comment `/secmlops approve <stage> [comment]` or `/secmlops reject <stage> <reason>` becomes
// a decision by the comment's author. The action answers obvious refusals from the event at once, then forwards the
// comment's ID; a worker fetches the comment with its own credentials, checks it and signs the decision with the
// github channel's key (held by workers only). The workflow still checks roles, the author rule and the rest.
import * as core from '@actions/core';
import { DecisionRefused, sendCommentDecision } from '../../../client/decisions.js';
import { pipelineId } from '../../../cli/subject.js';
import { GitHubApi, parseRepo } from '../../../github/api.js';

import { connectFromInputs, messageOf, readContext } from '../../shared/connect.js';
import { commentFromEvent } from '../../shared/events.js';
import { TRUSTED_ASSOCIATIONS as TRUSTED, parseCommand } from '../../../github/commands.js';

export { parseCommand };

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
    if (ev.action !== 'created')
      return await answer(false, `edited comments are not decisions (this one was ${ev.action}); post a new comment.`);
    if (ev.comment.userType === 'Bot' || ev.comment.login.endsWith('[bot]'))
      return await answer(false, 'comments by bots are not decisions.');
    if (!ev.isPullRequest) return await answer(false, 'SecMLOps decisions are taken on pull requests only.');
    if (!TRUSTED.includes(ev.comment.association)) {
      return await answer(
        false,
        `only the repository's owners, members and collaborators may decide; your association is ${ev.comment.association}.`,
      );
    }
    if (typeof command === 'string') return await answer(false, command);
    // Only the comment's ID goes to the pipeline: a worker reads the comment from GitHub itself, checks it and signs
    // the decision with the github channel's key, which never lives in GitHub.
    const { client } = await connectFromInputs();
    const workflowId = pipelineId('', { repo: ev.repo, pr: ev.issue, headSha: '', author: ev.issueAuthor });
    try {
      const r = await sendCommentDecision(client, {
        workflowId,
        stage: command.stage,
        comment: { repo: ev.repo, pr: ev.issue, commentId: ev.comment.id },
      });
      const more = r.missingRoles.length ? r.missingRoles.join(', ') : 'more approvals to reach its quorum';
      const settled = r.outcome
        ? `stage ${command.stage} is ${r.outcome}.`
        : `stage ${command.stage} still needs ${more}.`;
      await answer(
        true,
        `your ${command.decision === 'approve' ? 'approval' : 'rejection'} of ${command.stage} was accepted; ${settled}`,
      );
    } catch (e) {
      if (!(e instanceof DecisionRefused)) throw e;
      await answer(
        false,
        `the pipeline refused your ${command.decision === 'approve' ? 'approval' : 'rejection'}: ${e.message}`,
      );
    }
  } catch (e) {
    core.setFailed(messageOf(e));
  }
}
