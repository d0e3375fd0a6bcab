import { execFileSync } from 'node:child_process';
import type { Subject } from '../workflows/messages.js';

export function localSubject(repo: string, author: string): Subject {
  let headSha = 'working-tree';
  try {
    headSha = execFileSync('git', ['rev-parse', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  } catch {
    // Not a git checkout: the subject is the working tree.
  }
  return { repo, headSha, author };
}

/** One pipeline per pull request (re-runs attach to it), or per commit outside a PR. */
export function pipelineId(policyName: string, s: Subject): string {
  const safe = (x: string) => x.replace(/[^A-Za-z0-9._-]+/g, '-');
  return s.pr !== undefined
    ? `secmlops-${safe(s.repo)}-pr${s.pr}`
    : `secmlops-${safe(policyName)}-${safe(s.headSha.slice(0, 12))}`;
}
