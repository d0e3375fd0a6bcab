// Final commit status and the one PR comment, written by the worker with its own GitHub credentials when a pipeline
// that a PR started ends (passed, failed or cancelled).
import { ApplicationFailure } from '@temporalio/activity';
import { GitHubApi, GitHubError, parseRepo, type StatusState } from '../github/api.js';
import type { GitHubCredentials } from '../github/credentials.js';
import { REPORT_MARKER, renderReport, type Verdict } from '../github/report.js';
import type { PipelineStatus } from '../workflows/messages.js';

export interface GitHubReport {
  status: PipelineStatus;
  verdict: Exclude<Verdict, 'running'>;
  runId: string;
}

export interface GitHubReportResult {
  state: StatusState;
  commentId: number;
  created: boolean;
}

const STATE: Record<GitHubReport['verdict'], StatusState> = { passed: 'success', failed: 'failure', cancelled: 'error' };

export async function reportToGitHub(credentials: GitHubCredentials | undefined, r: GitHubReport): Promise<GitHubReportResult> {
  const { subject } = r.status;
  if (!credentials) {
    throw ApplicationFailure.nonRetryable('this worker has no GitHub credentials: set SECMLOPS_GITHUB_APP_ID, SECMLOPS_GITHUB_APP_KEY and SECMLOPS_GITHUB_INSTALLATION_ID (a GitHub App), or SECMLOPS_GITHUB_TOKEN', 'NoGitHubCredentials');
  }
  if (subject.pr === undefined) throw ApplicationFailure.nonRetryable(`the subject of ${r.status.workflowId} names no pull request`, 'NotAPullRequest');
  const repo = parseRepo(subject.repo);
  try {
    const api = new GitHubApi(await credentials.token(), credentials.apiUrl);
    const state = STATE[r.verdict];
    const description = r.verdict === 'passed' ? 'SecMLOps pipeline passed' : `SecMLOps ${r.verdict}: ${r.status.reason ?? 'no reason recorded'}`;
    await api.setStatus(repo, subject.headSha, { state, description, targetUrl: subject.url });
    const body = renderReport(r.status, { verdict: r.verdict, url: subject.url, runId: r.runId });
    const comment = await api.upsertComment(repo, subject.pr, REPORT_MARKER, body);
    return { state, commentId: comment.id, created: comment.created };
  } catch (e) {
    // A refusal (bad token, no access, unknown repository) will not change on retry; an outage may.
    if (e instanceof GitHubError && e.status >= 400 && e.status < 500 && e.status !== 429) throw ApplicationFailure.nonRetryable(e.message, 'GitHubRefused');
    throw e;
  }
}
