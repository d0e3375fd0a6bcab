// What a worker trusts, from its own environment (never from a workflow's input or a policy a client names): the
// evidence key it signs measurements with, the folder it reads policies from, the keys that may sign CLI starts,
// the GitHub Actions OIDC issuer and repositories that may start PR pipelines, and the github channel's key it
// signs PR-comment decisions with.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { MAX_KEY_FILE_BYTES } from '../activities/keys.js';
import { RegularFileError, readRegularSync } from '../engine/io/regular-file.js';
import { secmlopsHome } from './paths.js';

export interface OidcTrust {
  issuer: string;
  /** Where the issuer's signing keys are published (a JWKS document). */
  jwksUrl: string;
  /** owner/name of every repository whose workflows may start pipelines. */
  repositories: string[];
  /**
   * Where a repository's policy lives: this path on this branch (default: the repository's default branch), read
   * at the branch's current head. A PR that targets another branch is refused, since anyone who can push a branch
   * could otherwise open a PR against a branch holding a policy of their own.
   */
  policyPath: string;
  policyBranch?: string;
}

export interface TrustConfig {
  evidenceKeyPath: string;
  /** The local policy source: policy references resolve inside this folder only. */
  policyRoot: string;
  /** Base64 raw Ed25519 public keys that may sign CLI start requests. */
  startKeys: string[];
  oidc?: OidcTrust;
  /** The github channel's private key, held by workers only: it signs decisions read from PR comments. */
  githubChannelKeyPath: string;
  /**
   * Where workers record single-use OIDC token IDs: a SQLite file (workers of one host) or a postgres:// URL
   * (workers on several hosts must share one, or a token could be replayed against another worker).
   */
  stateStore: string;
}

export const GITHUB_OIDC_ISSUER = 'https://token.actions.githubusercontent.com';

/**
 * The trust configuration from the environment. A worker (`secmlops worker`) must be told its policy source and
 * start keys; only the embedded dev stack (`dev: true`) falls back to the working directory and the dev cli key, so a
 * misconfigured production worker refuses to start instead of trusting whatever lies in its folder.
 */
export function trustFromEnv(env: NodeJS.ProcessEnv = process.env, opts: { dev?: boolean } = {}): TrustConfig {
  const home = secmlopsHome(env);
  const keys = join(home, 'keys');
  const list = (v: string | undefined) =>
    (v ?? '')
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
  if (!opts.dev && !env.SECMLOPS_POLICY_ROOT) {
    throw new Error(
      'set SECMLOPS_POLICY_ROOT to the folder this worker reads policies from (nothing outside it is trusted)',
    );
  }
  const devKey = opts.dev ? [join(keys, 'cli.pub')].filter((f) => existsSync(f)) : [];
  const startKeyFiles = env.SECMLOPS_START_KEYS !== undefined ? list(env.SECMLOPS_START_KEYS) : devKey;
  const startKeys = startKeyFiles.map((f) => {
    try {
      return readRegularSync(f, MAX_KEY_FILE_BYTES).toString('utf8').trim();
    } catch (e) {
      throw e instanceof RegularFileError ? new Error(`SECMLOPS_START_KEYS: ${e.message}`) : e;
    }
  });
  const repositories = list(env.SECMLOPS_OIDC_REPOSITORIES);
  const issuer = env.SECMLOPS_OIDC_ISSUER ?? GITHUB_OIDC_ISSUER;
  return {
    evidenceKeyPath: env.SECMLOPS_EVIDENCE_KEY ?? join(keys, 'evidence.key'),
    policyRoot: resolve(env.SECMLOPS_POLICY_ROOT ?? '.'),
    startKeys,
    ...(repositories.length
      ? {
          oidc: {
            issuer,
            jwksUrl: env.SECMLOPS_OIDC_JWKS_URL ?? `${issuer}/.well-known/jwks`,
            repositories,
            policyPath: env.SECMLOPS_GITHUB_POLICY_PATH ?? 'secmlops.yaml',
            ...(env.SECMLOPS_GITHUB_POLICY_BRANCH ? { policyBranch: env.SECMLOPS_GITHUB_POLICY_BRANCH } : {}),
          },
        }
      : {}),
    githubChannelKeyPath: env.SECMLOPS_GITHUB_CHANNEL_KEY ?? join(keys, 'github.key'),
    stateStore: env.SECMLOPS_WORKER_STATE ?? join(home, 'state', 'worker.sqlite'),
  };
}
