// Final commit status and the one PR comment, written by the worker with its own GitHub credentials when a pipeline
// that a PR started ends (passed, failed or cancelled).
import { ApplicationFailure } from '@temporalio/activity';
import { GitHubApi, GitHubError, parseRepo, type StatusState } from '../github/api.js';
import type { GitHubCredentials } from '../github/credentials.js';
import { REPORT_MARKER, renderReport, type Verdict } from '../github/report.js';
import { checkRelease, evidenceProblem, type Evidence, type ReleaseDossier } from '../policy/index.js';
import type { PipelineStatus } from '../workflows/messages.js';
import type { EvidenceSigner } from './evidence.js';

export interface GitHubReport {
  status: PipelineStatus;
  /** 'running': the pending status when a PR's pipeline starts (set by the worker, so CI needs no statuses: write). */
  verdict: Verdict;
  runId: string;
  /** The start evidence: a verdict goes only to a PR whose start a worker authenticated through GitHub. */
  start?: Evidence;
  /**
   * For a pass: the pipeline's dossier (start evidence, every stage's evidence, the whole chained trail). A green
   * status is a claim like an attestation, so the worker checks it the same way before it sets one.
   */
  dossier?: Omit<ReleaseDossier, 'evidenceKey'>;
}

export interface GitHubReportResult {
  state: StatusState;
  commentId: number;
  created: boolean;
}

const STATE: Record<GitHubReport['verdict'], StatusState> = {
  passed: 'success',
  failed: 'failure',
  cancelled: 'error',
  running: 'pending',
};

export async function reportToGitHub(
  credentials: GitHubCredentials | undefined,
  signer: () => Promise<EvidenceSigner>,
  r: GitHubReport,
): Promise<GitHubReportResult> {
  const { subject } = r.status;
  // The commit status lands on whatever repository and SHA the subject names: only a subject a worker confirmed
  // through GitHub (start evidence it signed) may get one.
  const why = r.start
    ? evidenceProblem(r.start, (await signer()).publicKey, 'start')
    : 'the report carries no start evidence';
  const proven = !why ? (r.start as Evidence<'start'>).body : undefined;
  const claimed = proven?.payload.subject;
  if (
    !proven ||
    proven.pipelineId !== r.status.workflowId ||
    claimed?.source !== 'github' ||
    claimed.repo !== subject.repo ||
    claimed.pr !== subject.pr ||
    claimed.headSha !== subject.headSha
  ) {
    throw ApplicationFailure.nonRetryable(
      `not reporting to GitHub: ${why ?? 'the subject is not one a worker confirmed through GitHub for this pipeline'}`,
      'UnprovenSubject',
    );
  }
  if (r.verdict === 'passed') {
    // Failures and cancellations are safe to report as told; a pass is reported only once it checks out.
    const evidenceKey = (await signer()).publicKey;
    const dossier = r.dossier;
    const found = !dossier
      ? ['no dossier']
      : dossier.pipelineId !== proven.pipelineId || dossier.start?.signature !== r.start!.signature
        ? ['the dossier is for another pipeline or start']
        : checkRelease({ ...dossier, evidenceKey }, { upTo: 'passed' }).problems;
    if (found.length)
      throw ApplicationFailure.nonRetryable(
        `not reporting a pass to GitHub: ${found.slice(0, 10).join('; ')}`,
        'UnprovenVerdict',
      );
  }
  if (!credentials) {
    throw ApplicationFailure.nonRetryable(
      'this worker has no GitHub credentials: set SECMLOPS_GITHUB_APP_ID, SECMLOPS_GITHUB_APP_KEY and SECMLOPS_GITHUB_INSTALLATION_ID (a GitHub App), or SECMLOPS_GITHUB_TOKEN',
      'NoGitHubCredentials',
    );
  }
  if (subject.pr === undefined)
    throw ApplicationFailure.nonRetryable(
      `the subject of ${r.status.workflowId} names no pull request`,
      'NotAPullRequest',
    );
  const repo = parseRepo(subject.repo);
  try {
    const api = new GitHubApi(await credentials.token(), credentials.apiUrl);
    const state = STATE[r.verdict];
    if (r.verdict === 'running') {
      await api.setStatus(repo, subject.headSha, {
        state,
        description: `SecMLOps pipeline running: ${r.status.stages.map((s) => s.name).join(' → ')}`,
        targetUrl: subject.url,
      });
      return { state, commentId: 0, created: false };
    }
    const description =
      r.verdict === 'passed'
        ? 'SecMLOps pipeline passed'
        : `SecMLOps ${r.verdict}: ${r.status.reason ?? 'no reason recorded'}`;
    await api.setStatus(repo, subject.headSha, { state, description, targetUrl: subject.url });
    const body = renderReport(r.status, { verdict: r.verdict, url: subject.url, runId: r.runId });
    const comment = await api.upsertComment(repo, subject.pr, REPORT_MARKER, body);
    return { state, commentId: comment.id, created: comment.created };
  } catch (e) {
    // A refusal (bad token, no access, unknown repository) will not change on retry; an outage may.
    if (e instanceof GitHubError && e.status >= 400 && e.status < 500 && e.status !== 429)
      throw ApplicationFailure.nonRetryable(e.message, 'GitHubRefused');
    throw e;
  }
}
