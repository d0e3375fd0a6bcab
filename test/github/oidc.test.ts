// Attacks on the GitHub Actions OIDC verifier, each performed for real against a local JWKS server with a real RSA
// key pair, and each asserting the specific refusal (not just "it threw"): a verifier that refuses for the wrong
// reason may accept the attack the day that other check changes.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createHmac, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openOnceStore } from '../../client/once-store.js';
import { OidcError, prFromRef, verifyActionsToken, type OidcOptions } from '../../github/oidc.js';

const ISSUER = 'https://token.actions.githubusercontent.com';
const AUDIENCE = 'https://secmlops.example/oidc';
const KID = 'legit-key-1';

const legit = generateKeyPairSync('rsa', { modulusLength: 2048 });
const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rotated = generateKeyPairSync('rsa', { modulusLength: 2048 });
const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });

function jwk(key: KeyObject, kid: string, extra: Record<string, string> = {}) {
  return { ...key.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig', ...extra };
}

interface Served {
  url: string;
  /** Requests per path (with query), to see what was fetched and how often. */
  hits: Map<string, number>;
  close: () => Promise<void>;
}

type Route = () => { status?: number; body: string; declareLength?: boolean } | 'hang';

async function serve(routes: Record<string, Route>): Promise<Served> {
  const hits = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const route = routes[path.split('?')[0]];
    if (!route) return void res.writeHead(404).end('{}');
    const r = route();
    if (r === 'hang') return; // never answers: for the timeout test
    const length = r.declareLength ? { 'content-length': Buffer.byteLength(r.body) } : {};
    res.writeHead(r.status ?? 200, { 'content-type': 'application/json', ...length }).end(r.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

const b64 = (x: unknown) => Buffer.from(JSON.stringify(x)).toString('base64url');
const nowS = () => Math.floor(Date.now() / 1000);

/** A token shaped like GitHub's for a pull_request run, RS256-signed with `key` (the legitimate key by default). */
function mint(claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}, key = legit.privateKey) {
  const now = nowS();
  const payload = {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: 'repo:octo-org/model:pull_request',
    repository: 'octo-org/model',
    repository_owner: 'octo-org',
    ref: 'refs/pull/12/merge',
    sha: 'a'.repeat(40),
    event_name: 'pull_request',
    actor: 'mona',
    run_id: '4242',
    jti: randomUUID(),
    nbf: now - 5,
    iat: now - 5,
    exp: now + 300,
    ...claims,
  };
  const unsigned = `${b64({ typ: 'JWT', alg: 'RS256', kid: KID, ...header })}.${b64(payload)}`;
  return `${unsigned}.${sign('RSA-SHA256', Buffer.from(unsigned), key).toString('base64url')}`;
}

let jwks: Served;
let evil: Served;
let dir: string;
let rotatingKeys: unknown[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'secmlops-oidc-'));
  jwks = await serve({
    // The real key plus keys the verifier must skip: one for encryption, one for another algorithm.
    '/jwks': () => ({
      body: JSON.stringify({
        keys: [
          jwk(legit.publicKey, KID),
          jwk(legit.publicKey, 'enc-key', { use: 'enc' }),
          jwk(legit.publicKey, 'rs512-key', { alg: 'RS512' }),
        ],
      }),
    }),
    '/rotating': () => ({ body: JSON.stringify({ keys: rotatingKeys }) }),
    '/weak': () => ({ body: JSON.stringify({ keys: [jwk(weak.publicKey, 'weak')] }) }),
    '/error': () => ({ status: 500, body: '{"message":"boom"}' }),
    '/huge': () => ({ body: JSON.stringify({ keys: [], pad: 'x'.repeat(300 * 1024) }) }),
    '/huge-declared': () => ({ body: JSON.stringify({ keys: [], pad: 'x'.repeat(300 * 1024) }), declareLength: true }),
    '/hang': () => 'hang',
  });
  // The attacker's own JWKS, publishing the attacker's key under the legitimate kid.
  evil = await serve({ '/jwks': () => ({ body: JSON.stringify({ keys: [jwk(attacker.publicKey, KID)] }) }) });
});

afterAll(async () => {
  await jwks.close();
  await evil.close();
  await rm(dir, { recursive: true, force: true });
});

function opts(over: Partial<OidcOptions> = {}): OidcOptions {
  return {
    issuer: ISSUER,
    jwksUrl: `${jwks.url}/jwks`,
    audience: AUDIENCE,
    repositories: ['Octo-Org/Model', 'octo-org/other'],
    jti: openOnceStore(join(dir, 'jti.sqlite'), 'TEST_STATE'),
    ...over,
  };
}

describe('verifyActionsToken accepts', () => {
  test('a valid token, returning its claims (allow-list compared case-insensitively)', async () => {
    const jti = randomUUID();
    const claims = await verifyActionsToken(mint({ jti }), opts());
    expect(claims).toMatchObject({
      iss: ISSUER,
      aud: AUDIENCE,
      repository: 'octo-org/model',
      ref: 'refs/pull/12/merge',
      sha: 'a'.repeat(40),
      run_id: '4242',
      jti,
    });
    expect(prFromRef(claims.ref)).toBe(12);
  });

  test('an audience array containing the audience, and an exp within the 60 s clock skew', async () => {
    const token = mint({ aud: ['other', AUDIENCE], exp: nowS() - 30 });
    await expect(verifyActionsToken(token, opts())).resolves.toMatchObject({ aud: ['other', AUDIENCE] });
  });
});

describe('verifyActionsToken refuses', () => {
  const now = nowS();
  const claimCases: [string, Record<string, unknown>, RegExp][] = [
    ['an expired token', { iat: now - 900, nbf: now - 900, exp: now - 120 }, /^token expired at .*60 s of clock skew/],
    ['a wrong audience', { aud: 'https://elsewhere.example' }, /^aud "https:\/\/elsewhere\.example" does not include/],
    ['a wrong audience array', { aud: ['a', 'b'] }, /^aud \["a","b"\] does not include the expected audience/],
    ['a wrong issuer', { iss: 'https://evil.example' }, /^iss "https:\/\/evil\.example" is not the expected issuer/],
    ['a repository not in the allow-list', { repository: 'mallory/model' }, /^repository "mallory\/model" is not in/],
    ['a token issued over an hour ago', { iat: now - 7200, exp: now + 300 }, /^token was issued at .*more than 1 hour/],
    ['a token not valid yet', { nbf: now + 600 }, /^token is not valid before/],
    ['an iat in the future', { iat: now + 600, nbf: undefined }, /^iat .* is in the future/],
    ['a missing jti', { jti: undefined }, /^jti undefined is not a non-empty string/],
    ['an empty jti', { jti: '' }, /^jti "" is not a non-empty string/],
    ['a non-numeric exp', { exp: '9999999999' }, /^exp "9999999999" is not a number/],
  ];
  test.each(claimCases)('%s', async (_name, claims, message) => {
    const p = verifyActionsToken(mint(claims), opts());
    await expect(p).rejects.toThrow(OidcError);
    await expect(p).rejects.toThrow(message);
  });

  test('alg "none" with an empty signature part', async () => {
    const token = `${b64({ alg: 'none', typ: 'JWT', kid: KID })}.${mint().split('.')[1]}.`;
    await expect(verifyActionsToken(token, opts())).rejects.toThrow(/^token alg "none" is refused: only "RS256"/);
  });

  test('HS256 signed with the RSA public key as the HMAC secret (key confusion)', async () => {
    const pem = legit.publicKey.export({ type: 'spki', format: 'pem' });
    const unsigned = `${b64({ alg: 'HS256', typ: 'JWT', kid: KID })}.${mint().split('.')[1]}`;
    const token = `${unsigned}.${createHmac('sha256', pem).update(unsigned).digest('base64url')}`;
    await expect(verifyActionsToken(token, opts())).rejects.toThrow(/^token alg "HS256" is refused/);
  });

  test.each(['RS512', 'PS256', 'ES256', 'rs256'])('any other alg, named in the message: %s', async (alg) => {
    await expect(verifyActionsToken(mint({}, { alg }), opts())).rejects.toThrow(`token alg "${alg}" is refused`);
  });

  test('an unknown kid', async () => {
    await expect(verifyActionsToken(mint({}, { kid: 'not-a-key' }), opts())).rejects.toThrow(
      /^unknown kid "not-a-key": no RS256 signing key with that ID in the JWKS at http:\/\/127\.0\.0\.1:\d+\/jwks$/,
    );
  });

  test('a token with no kid', async () => {
    const token = mint({}, { kid: undefined });
    await expect(verifyActionsToken(token, opts())).rejects.toThrow(/^token header kid undefined is not a non-empty/);
  });

  test('a kid whose JWKS key is for encryption or another algorithm (those keys are skipped)', async () => {
    for (const kid of ['enc-key', 'rs512-key']) {
      await expect(verifyActionsToken(mint({}, { kid }), opts())).rejects.toThrow(new RegExp(`^unknown kid "${kid}"`));
    }
  });

  test('a tampered payload (the signature no longer verifies)', async () => {
    const [h, p, s] = mint({ ref: 'refs/pull/12/merge' }).split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${h}.${b64({ ...claims, ref: 'refs/heads/main' })}.${s}`;
    await expect(verifyActionsToken(forged, opts())).rejects.toThrow(
      /^token signature does not verify with JWKS key "legit-key-1"$/,
    );
  });

  test('a reused jti (the second verification of the same token)', async () => {
    const jti = randomUUID();
    const token = mint({ jti });
    await expect(verifyActionsToken(token, opts())).resolves.toMatchObject({ jti });
    await expect(verifyActionsToken(token, opts())).rejects.toThrow(
      new RegExp(`^token ID "${jti}" was already used: ID tokens are single-use$`),
    );
    // Also through a fresh store instance on the same file, as another worker would be.
    await expect(
      verifyActionsToken(token, opts({ jti: openOnceStore(join(dir, 'jti.sqlite'), 'TEST_STATE') })),
    ).rejects.toThrow(/was already used/);
  });

  test('a header jku/x5u/jwk pointing at the attacker key: keys come only from the configured URL', async () => {
    const attackerJwk = jwk(attacker.publicKey, KID);
    const header = { jku: `${evil.url}/jwks`, x5u: `${evil.url}/jwks`, jwk: attackerJwk };
    // Under the legitimate kid, the configured JWKS's key is used, and the attacker's signature fails against it.
    await expect(verifyActionsToken(mint({}, header, attacker.privateKey), opts())).rejects.toThrow(
      /^token signature does not verify with JWKS key "legit-key-1"$/,
    );
    // Under a kid of the attacker's own, the kid is simply unknown.
    await expect(
      verifyActionsToken(mint({}, { ...header, kid: 'attacker' }, attacker.privateKey), opts()),
    ).rejects.toThrow(/^unknown kid "attacker"/);
    expect(evil.hits.size).toBe(0);
  });

  test('a JWKS server that is down, naming the fetch failure', async () => {
    const down = await serve({});
    await down.close();
    await expect(verifyActionsToken(mint(), opts({ jwksUrl: `${down.url}/jwks` }))).rejects.toThrow(
      /^could not fetch the JWKS from http:\/\/127\.0\.0\.1:\d+\/jwks: fetch failed \(ECONNREFUSED\)$/,
    );
  });

  test('a JWKS server that does not answer in time', async () => {
    const p = verifyActionsToken(mint(), opts({ jwksUrl: `${jwks.url}/hang`, fetchTimeoutMs: 200 }));
    await expect(p).rejects.toThrow(/^could not fetch the JWKS from .*\/hang: no answer within 200 ms$/);
  });

  test('a JWKS answer that is not 200, or over 256 KiB', async () => {
    await expect(verifyActionsToken(mint(), opts({ jwksUrl: `${jwks.url}/error` }))).rejects.toThrow(
      /^could not fetch the JWKS from .*\/error: HTTP 500, expected 200$/,
    );
    // Refused on the declared content-length before reading, and while streaming when no length is declared.
    await expect(verifyActionsToken(mint(), opts({ jwksUrl: `${jwks.url}/huge-declared` }))).rejects.toThrow(
      /^could not fetch the JWKS from .*\/huge-declared: the body is \d+ bytes, over the 262144-byte limit$/,
    );
    await expect(verifyActionsToken(mint(), opts({ jwksUrl: `${jwks.url}/huge` }))).rejects.toThrow(
      /^could not fetch the JWKS from .*\/huge: the body is over the 262144-byte limit$/,
    );
  });

  test('a JWKS key shorter than 2048 bits', async () => {
    const token = mint({}, { kid: 'weak' }, weak.privateKey);
    await expect(verifyActionsToken(token, opts({ jwksUrl: `${jwks.url}/weak` }))).rejects.toThrow(
      /^JWKS key "weak" is a 1024-bit RSA key; at least 2048 bits are required$/,
    );
  });

  test('an oversized token', async () => {
    const token = mint({ padding: 'x'.repeat(16 * 1024) });
    await expect(verifyActionsToken(token, opts())).rejects.toThrow(/^token is \d+ bytes, over the 16384-byte limit$/);
  });

  test('malformed tokens', async () => {
    await expect(verifyActionsToken('a.b', opts())).rejects.toThrow(/^token must be three base64url parts.*it has 2$/);
    await expect(verifyActionsToken('!!.e30.e30', opts())).rejects.toThrow(/^token header is empty or not base64url/);
    const noSig = mint().split('.').slice(0, 2).join('.') + '.';
    await expect(verifyActionsToken(noSig, opts())).rejects.toThrow(/^token signature part is empty or not base64/);
  });

  test('a plain-http JWKS URL that is not loopback (misconfiguration)', async () => {
    await expect(verifyActionsToken(mint(), opts({ jwksUrl: 'http://keys.example/jwks' }))).rejects.toThrow(
      /^misconfigured: jwksUrl http:\/\/keys\.example\/jwks must be https/,
    );
  });
});

describe('JWKS caching', () => {
  test('an unknown kid refetches the JWKS at most once a minute; known kids are served from the cache', async () => {
    const url = `${jwks.url}/rotating?case=${randomUUID()}`;
    const path = url.slice(jwks.url.length);
    const t0 = Date.now();
    rotatingKeys = [jwk(legit.publicKey, KID)];
    await verifyActionsToken(mint(), opts({ jwksUrl: url, now: t0 }));
    expect(jwks.hits.get(path)).toBe(1);
    // The issuer rotates in a new key; a token signed with it arrives 5 s after the last fetch: no refetch yet.
    rotatingKeys = [jwk(legit.publicKey, KID), jwk(rotated.publicKey, 'rotated')];
    const next = () => mint({}, { kid: 'rotated' }, rotated.privateKey);
    await expect(verifyActionsToken(next(), opts({ jwksUrl: url, now: t0 + 5_000 }))).rejects.toThrow(
      /^unknown kid "rotated"/,
    );
    expect(jwks.hits.get(path)).toBe(1);
    // A minute on, the unknown kid triggers one refetch, which finds it.
    await expect(verifyActionsToken(next(), opts({ jwksUrl: url, now: t0 + 61_000 }))).resolves.toBeDefined();
    expect(jwks.hits.get(path)).toBe(2);
    // Known kids within the 10-minute cache lifetime need no fetch at all.
    await verifyActionsToken(next(), opts({ jwksUrl: url, now: t0 + 120_000 }));
    await verifyActionsToken(mint(), opts({ jwksUrl: url, now: t0 + 120_000 }));
    expect(jwks.hits.get(path)).toBe(2);
    // Over 10 minutes after the last fetch (at t0 + 61 s), the JWKS is fetched again.
    await verifyActionsToken(mint({ exp: nowS() + 3000 }), opts({ jwksUrl: url, now: t0 + 12 * 60_000 }));
    expect(jwks.hits.get(path)).toBe(3);
  });
});

describe('prFromRef', () => {
  test.each([
    ['refs/pull/12/merge', 12],
    ['refs/pull/7/head', 7],
    ['refs/heads/main', undefined],
    ['refs/tags/v1', undefined],
    ['refs/pull/0/merge', undefined],
    ['refs/pull/12/merge/extra', undefined],
    [undefined, undefined],
  ])('%s → %s', (ref, pr) => {
    expect(prFromRef(ref)).toBe(pr);
  });
});
