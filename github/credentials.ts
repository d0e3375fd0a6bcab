// The worker's own GitHub credentials for final statuses and PR comments: a GitHub App installation token (preferred)
// or a fine-grained token. Never a token from workflow inputs: the job's GITHUB_TOKEN dies with the job, and a
// pipeline may wait days for an approval.
import { createSign } from 'node:crypto';
import { RegularFileError, readRegular } from '../engine/io/regular-file.js';
import { apiBase } from './api.js';

// An App's key is RSA: a 4096-bit PEM is about 3.3 KB, and exports may add bag attributes.
const MAX_APP_KEY_BYTES = 16 * 1024;

export interface GitHubCredentials {
  /** A token valid now (an installation token is fetched and renewed as needed). */
  token(): Promise<string>;
  describe: string;
  /** The REST API's base URL (GITHUB_API_URL, for GitHub Enterprise; api.github.com otherwise). */
  apiUrl: string;
}

export function credentialsFromEnv(env: NodeJS.ProcessEnv = process.env): GitHubCredentials | undefined {
  const {
    SECMLOPS_GITHUB_TOKEN: token,
    SECMLOPS_GITHUB_APP_ID: appId,
    SECMLOPS_GITHUB_APP_KEY: keyPath,
    SECMLOPS_GITHUB_INSTALLATION_ID: installation,
  } = env;
  const app = [appId, keyPath, installation];
  if (app.some(Boolean)) {
    if (!app.every(Boolean))
      throw new Error(
        'a GitHub App needs all of SECMLOPS_GITHUB_APP_ID, SECMLOPS_GITHUB_APP_KEY (the private key PEM file) and SECMLOPS_GITHUB_INSTALLATION_ID',
      );
    return appCredentials(appId!, keyPath!, installation!, apiBase(env));
  }
  if (token) return tokenCredentials(token, apiBase(env));
  return undefined;
}

export function tokenCredentials(token: string, apiUrl: string): GitHubCredentials {
  return { token: async () => token, describe: 'a token (SECMLOPS_GITHUB_TOKEN)', apiUrl };
}

/** RS256 JWT for the App, valid 9 minutes (GitHub allows 10), backdated a minute for clock drift. */
export function appJwt(appId: string, privateKeyPem: string, now = Date.now()): string {
  const b64 = (x: object) => Buffer.from(JSON.stringify(x)).toString('base64url');
  const iat = Math.floor(now / 1000) - 60;
  const unsigned = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ iat, exp: iat + 600, iss: appId })}`;
  return `${unsigned}.${createSign('RSA-SHA256').update(unsigned).sign(privateKeyPem).toString('base64url')}`;
}

export function appCredentials(appId: string, keyPath: string, installation: string, base: string): GitHubCredentials {
  let cached: { token: string; expires: number } | undefined;
  return {
    describe: `GitHub App ${appId}, installation ${installation}`,
    apiUrl: base,
    token: async () => {
      if (cached && cached.expires - Date.now() > 5 * 60_000) return cached.token;
      const pem = await readRegular(keyPath, MAX_APP_KEY_BYTES).then(
        (b) => b.toString('utf8'),
        (e: unknown) => {
          if (!(e instanceof RegularFileError)) throw e;
          throw new Error(`cannot read the GitHub App key ${keyPath} (SECMLOPS_GITHUB_APP_KEY): ${e.why}`);
        },
      );
      const res = await fetch(`${base}/app/installations/${installation}/access_tokens`, {
        method: 'POST',
        headers: {
          accept: 'application/vnd.github+json',
          authorization: `Bearer ${appJwt(appId, pem)}`,
          'user-agent': 'secmlops',
          'x-github-api-version': '2022-11-28',
        },
        signal: AbortSignal.timeout(30_000),
      });
      if (!res.ok)
        throw new Error(
          `GitHub refused an installation token for App ${appId}, installation ${installation}: ${res.status} ${(await res.text()).slice(0, 200)}`,
        );
      const body = (await res.json()) as { token: string; expires_at: string };
      cached = { token: body.token, expires: Date.parse(body.expires_at) };
      return body.token;
    },
  };
}
