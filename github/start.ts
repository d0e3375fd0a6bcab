// A pull request's pipeline, started by the GitHub start action and proven by a GitHub Actions OIDC ID token. The
// worker checks the token (issuer, audience naming this pipeline, expiry, single use, repository allow-list), then
// confirms through GitHub's API, with its own credentials, that the PR the token's ref names has the head commit the
// action claims, takes the author from GitHub, and reads the policy from the path and branch the worker is
// configured with (default: the repository's default branch), at that branch's current head. A PR that targets
// another branch is refused: a pull request can neither rewrite the roles that approve it nor pick a branch whose
// policy it wrote.
import { ApplicationFailure } from '@temporalio/common';
import { parse as parseYaml } from 'yaml';
import { checkClaimedSubject } from '../activities/start.js';
import type { GitHubStartResolver } from '../activities/start.js';
import { PolicyError, parsePolicyWithDigest, startAudience, type OidcStart } from '../policy/index.js';
import type { TrustConfig } from '../worker/trust.js';
import { GitHubApi, GitHubError, parseRepo, type Repo } from './api.js';
import type { GitHubCredentials } from './credentials.js';
import { openOnceStore } from '../client/once-store.js';
import { OidcError, prFromRef, verifyActionsToken } from './oidc.js';

function refuse(message: string): never {
  throw ApplicationFailure.nonRetryable(message, 'StartRefused');
}

export function githubStartResolver(
  trust: TrustConfig,
  credentials: GitHubCredentials | undefined,
): GitHubStartResolver | undefined {
  const oidc = trust.oidc;
  if (!oidc) return undefined;
  const jti = openOnceStore(trust.stateStore, 'SECMLOPS_WORKER_STATE');
  return async (start: OidcStart, pipelineId: string) => {
    if (!credentials) refuse('this worker has no GitHub credentials, so it cannot confirm a pull request');
    if (start.workflowId !== pipelineId)
      refuse(`the start names pipeline ${String(start.workflowId)}, not ${pipelineId}`);
    if (typeof start.token !== 'string') refuse('the start carries no OIDC token');
    let claims;
    try {
      claims = await verifyActionsToken(start.token, {
        issuer: oidc.issuer,
        jwksUrl: oidc.jwksUrl,
        audience: startAudience(pipelineId),
        repositories: oidc.repositories,
        jti,
      });
    } catch (e) {
      if (e instanceof OidcError) refuse(`the OIDC token was refused: ${e.message}`);
      throw e;
    }
    const claimed = checkClaimedSubject(start.subject);
    if (claimed.repo.toLowerCase() !== claims.repository.toLowerCase())
      refuse(`the token is for ${claims.repository}, not ${claimed.repo}`);
    // On pull_request events the token's ref is refs/pull/N/merge (and its sha the merge commit, not the head).
    const pr = prFromRef(claims.ref);
    if (pr === undefined)
      refuse(`the token's ref ${String(claims.ref)} names no pull request (event ${String(claims.event_name)})`);
    if (claimed.pr !== pr) refuse(`the start claims PR #${String(claimed.pr)}, but the token was issued for PR #${pr}`);
    const repo = parseRepo(claims.repository);
    const api = new GitHubApi(await credentials.token(), credentials.apiUrl);
    const pull = await github(() => api.getPull(repo, pr), `PR #${pr}`);
    if (pull.head?.sha !== claimed.headSha)
      refuse(
        `PR #${pr}'s head is ${String(pull.head?.sha)}, not ${claimed.headSha} (a newer push supersedes this start)`,
      );
    const author = pull.user?.login;
    if (typeof author !== 'string' || !author) refuse(`GitHub names no author for PR #${pr}`);
    if (start.policyRef !== undefined && start.policyRef !== oidc.policyPath) {
      refuse(
        `the start names policy ${String(start.policyRef)}, but the workers read ${oidc.policyPath} (SECMLOPS_GITHUB_POLICY_PATH)`,
      );
    }
    const branch = oidc.policyBranch ?? (await github(() => api.defaultBranch(repo), `${claims.repository}`));
    if (pull.base?.ref !== branch)
      refuse(
        `PR #${pr} targets ${String(pull.base?.ref)}, but policies are read from ${branch}: only PRs into ${branch} are checked`,
      );
    const base = await github(() => api.branchHead(repo, branch), `branch ${branch}`);
    if (typeof base !== 'string' || !/^[0-9a-f]{40}$/.test(base)) refuse(`GitHub names no head commit for ${branch}`);
    const { policy, digest } = await policyAt(api, repo, oidc.policyPath, base);
    return {
      subject: {
        repo: claims.repository,
        pr,
        headSha: pull.head.sha,
        author,
        ...(pull.title ? { title: pull.title.slice(0, 500) } : {}),
        source: 'github',
      },
      policy,
      digest,
      source: { kind: 'github', repo: claims.repository, ref: base },
      auth: {
        channel: 'github-oidc',
        repository: claims.repository,
        jti: claims.jti,
        ...(claims.run_id ? { runId: String(claims.run_id) } : {}),
        ...(claims.actor ? { actor: String(claims.actor) } : {}),
      },
    };
  };
}

/** The policy file and the key files it names, read at one commit; nothing outside the repository. */
async function policyAt(api: GitHubApi, repo: Repo, ref: unknown, commit: string) {
  if (typeof ref !== 'string' || !ref || ref.length > 1024) refuse('the start names no policy path');
  const path = inRepo(ref, '', 'the policy path');
  const text = await github(() => api.getFileText(repo, path, commit), `${path} at ${commit.slice(0, 12)}`);
  // The parser reads key files synchronously: fetch every publicKeyFile the YAML names first.
  const keys = new Map<string, string>();
  for (const file of keyFiles(text)) {
    const at = inRepo(file, path, `key file ${file}`);
    keys.set(file, await github(() => api.getFileText(repo, at, commit), `${at} at ${commit.slice(0, 12)}`));
  }
  const shown = `${repo.owner}/${repo.repo}@${commit.slice(0, 12)}:${path}`;
  let parsed;
  try {
    parsed = parsePolicyWithDigest(text, {
      file: shown,
      readKeyFile: (p) => keys.get(p) ?? refuse(`${shown}: key file ${p} was not fetched`),
    });
  } catch (e) {
    if (e instanceof PolicyError) refuse(`policy: ${e.message}`);
    throw e;
  }
  // A worker cannot resolve paths relative to a repository it has not checked out.
  const { dataset, model } = parsed.policy.artifacts;
  if (dataset && !dataset.root.startsWith('/'))
    refuse(`${shown}: artifacts.dataset.root must be an absolute path on the workers for a policy read from GitHub`);
  if (model && !model.path.startsWith('/'))
    refuse(`${shown}: artifacts.model.path must be an absolute path on the workers for a policy read from GitHub`);
  return parsed;
}

function keyFiles(text: string): string[] {
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 100 });
  } catch {
    return []; // The parser reports the YAML error itself, with its position.
  }
  const d = doc as { channels?: Record<string, { publicKeyFile?: unknown }>; release?: { publicKeyFile?: unknown } };
  const files = [...Object.values(d?.channels ?? {}).map((c) => c?.publicKeyFile), d?.release?.publicKeyFile];
  return [...new Set(files.filter((f): f is string => typeof f === 'string'))].slice(0, 16);
}

/** A repository path, relative to the policy's folder, that stays inside the repository. */
function inRepo(path: string, policyPath: string, what: string): string {
  const dir = policyPath.includes('/') ? policyPath.slice(0, policyPath.lastIndexOf('/')) : '';
  const parts: string[] = [];
  for (const part of `${dir}/${path}`.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (!parts.pop()) refuse(`${what} (${path}) leaves the repository`);
    } else parts.push(part);
  }
  if (path.startsWith('/') || parts.length === 0) refuse(`${what} (${path}) must be a path inside the repository`);
  return parts.join('/');
}

async function github<T>(call: () => Promise<T>, what: string): Promise<T> {
  try {
    return await call();
  } catch (e) {
    // A refusal (no such PR or file, no access) will not change on retry; an outage may.
    if (e instanceof GitHubError && e.status >= 400 && e.status < 500 && e.status !== 429)
      refuse(`GitHub refused ${what}: ${e.message}`);
    throw e;
  }
}
