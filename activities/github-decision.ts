// PR-comment decisions, decided on the worker: no long-lived key lives in GitHub. The approve action forwards only
// the comment's ID; this activity fetches the comment with the worker's own GitHub credentials, checks that it
// belongs to this PR, was written after the stage began, was never edited, and that its author may decide, then
// signs the decision with the github channel's key, which only workers hold. The workflow checks roles, the
// author rule and the rest as for every other channel.
import { ApplicationFailure } from '@temporalio/common';
import { GitHubApi, GitHubError, parseRepo } from '../github/api.js';
import { TRUSTED_ASSOCIATIONS, parseCommand } from '../github/commands.js';
import type { GitHubCredentials } from '../github/credentials.js';
import { Context } from '@temporalio/activity';
import { evidenceProblem, type Evidence, type SignedDecision } from '../policy/index.js';
import type { EvidenceSigner } from './evidence.js';
import { loadPrivateKey, signDecision } from './keys.js';

export interface CommentDecisionRequest {
  commentId: number;
  stage: string;
  /** Comments written before this time (ms; the stage's start) are about an earlier state of the PR: refused. */
  notBefore: number;
  /**
   * The pipeline's start evidence. The repository, PR, subject digest and people come from it once its signature
   * checks: this activity holds the github channel key, so it believes nothing else its caller says.
   */
  start: Evidence;
}

function refuse(message: string): never {
  throw ApplicationFailure.nonRetryable(message, 'CommentRefused');
}

export async function readGitHubDecision(
  credentials: GitHubCredentials | undefined,
  channelKeyPath: string,
  signer: () => Promise<EvidenceSigner>,
  req: CommentDecisionRequest,
): Promise<SignedDecision> {
  if (!credentials) refuse('this worker has no GitHub credentials, so it cannot read PR comments');
  const why = evidenceProblem(req?.start, (await signer()).publicKey, 'start');
  if (why) refuse(`no valid start evidence: ${why}`);
  const start = (req.start as Evidence<'start'>).body;
  const { subject, policy } = start.payload;
  if (subject.source !== 'github' || subject.pr === undefined)
    refuse(`pipeline ${start.pipelineId} was not started for a pull request through GitHub`);
  const stage = policy.stages.find((s) => s.name === req.stage);
  if (!stage?.approval) refuse(`stage ${String(req.stage)} of ${start.pipelineId} takes no decisions`);
  // Defence in depth: the stage workflow of this pipeline is the one that asks.
  const caller = Context.current().info.workflowExecution?.workflowId;
  if (caller !== `${start.pipelineId}/${stage.name}`)
    refuse(`only ${start.pipelineId}/${stage.name} may ask for its decisions (asked by ${String(caller)})`);
  const r = {
    repo: subject.repo,
    pr: subject.pr,
    commentId: req.commentId,
    pipelineId: start.pipelineId,
    stage: stage.name,
    subjectDigest: start.subjectDigest,
    // Never older than this run's start: a comment about an earlier commit does not count.
    notBefore: Math.max(Number(req.notBefore) || 0, Date.parse(start.issuedAt)),
    people: policy.people,
  };
  if (!Number.isInteger(r.commentId) || r.commentId <= 0) refuse('expected a comment ID');
  const repo = parseRepo(r.repo);
  let comment;
  try {
    comment = await new GitHubApi(await credentials.token(), credentials.apiUrl).getComment(repo, r.commentId);
  } catch (e) {
    if (e instanceof GitHubError && e.status >= 400 && e.status < 500 && e.status !== 429)
      refuse(`comment ${r.commentId} cannot be read: ${e.message}`);
    throw e;
  }
  const login = comment.user?.login ?? '';
  if (!comment.issue_url?.endsWith(`/repos/${r.repo}/issues/${r.pr}`))
    refuse(`comment ${r.commentId} does not belong to ${r.repo}#${r.pr}`);
  if (comment.user?.type === 'Bot' || login.endsWith('[bot]')) refuse('comments by bots are not decisions');
  if (!TRUSTED_ASSOCIATIONS.includes(comment.author_association ?? '')) {
    refuse(
      `only the repository's owners, members and collaborators may decide; ${login}'s association is ${comment.author_association ?? 'unknown'}`,
    );
  }
  const created = Date.parse(comment.created_at ?? '');
  if (Number.isNaN(created)) refuse(`comment ${r.commentId} has no creation time`);
  if (comment.updated_at !== comment.created_at)
    refuse(
      `comment ${r.commentId} was edited (${comment.updated_at}); edited comments are not decisions, post a new one`,
    );
  // GitHub's times have whole seconds: compare at that grain.
  if (created < Math.floor(r.notBefore / 1000) * 1000) {
    refuse(
      `comment ${r.commentId} was written at ${comment.created_at}, before stage ${r.stage} of this run began (${new Date(r.notBefore).toISOString()}): it may be about an earlier commit`,
    );
  }
  const command = parseCommand(comment.body ?? '');
  if (command === undefined || typeof command === 'string')
    refuse(`comment ${r.commentId} is not a SecMLOps decision${typeof command === 'string' ? `: ${command}` : ''}`);
  if (command.stage !== r.stage) refuse(`comment ${r.commentId} decides on stage ${command.stage}, not ${r.stage}`);
  const person = r.people.find((p) => p.github !== undefined && p.github.toLowerCase() === login.toLowerCase());
  if (!person) refuse(`GitHub user ${login} is not a person in the policy; ask for your login to be added to people`);
  const key = await loadPrivateKey(channelKeyPath).catch((e: Error) =>
    refuse(`github channel key: ${e.message} (SECMLOPS_GITHUB_CHANNEL_KEY)`),
  );
  return signDecision(
    {
      workflowId: r.pipelineId,
      stage: r.stage,
      person: person.id,
      channel: 'github',
      decision: command.decision,
      comment: command.comment,
      issuedAt: new Date(created).toISOString(),
      subjectDigest: r.subjectDigest,
    },
    key,
  );
}
