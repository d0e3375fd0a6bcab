// The change a pipeline is about, and the digest that binds decisions and evidence to it.
import { digestOf } from './canonical.js';

export interface Subject {
  repo: string;
  pr?: number;
  headSha: string;
  /** GitHub login (or person id) of the change's author; never allowed to approve it. */
  author: string;
  title?: string;
  /**
   * How the start was authenticated, set by the worker that checked it (never by the starter): 'github' for a
   * GitHub Actions OIDC token (the worker then reports the verdict to the PR), 'cli' for a start signed with a
   * CLI start key. Absent in runs recorded before starts were authenticated.
   */
  source?: 'github' | 'cli';
  /** Where the run can be seen (console or Temporal UI), for links. */
  url?: string;
}

/** What identifies the change: repository, pull request, head commit, author and how the start was proven. */
export function subjectDigest(s: Subject): string {
  return digestOf('secmlops-subject-v1', {
    repo: s.repo,
    pr: s.pr ?? null,
    headSha: s.headSha,
    author: s.author,
    source: s.source ?? null,
  });
}

export function describeSubject(s: Subject): string {
  return `${s.repo}${s.pr !== undefined ? ` #${s.pr}` : ''} @ ${s.headSha.slice(0, 12)} by ${s.author}`;
}
