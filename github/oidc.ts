// Verifies GitHub Actions OIDC ID tokens, so a workflow run can prove to SecMLOps which repository (and ref, commit,
// run) it is without any shared secret. The token is the only thing standing between an attacker and the pipeline,
// so everything here fails closed: one accepted algorithm (RS256), keys only from the configured JWKS URL (never from
// the token's own jku/x5u/jwk headers), exact issuer and audience, a short lifetime, a repository allow-list and
// single use of every token ID. Each refusal is an OidcError whose message names what was wrong.
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import type { JtiStore } from '../client/once-store.js';

export type { JtiStore } from '../client/once-store.js';

export class OidcError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OidcError';
  }
}

export interface OidcClaims {
  iss: string;
  aud: string | string[];
  sub: string;
  exp: number;
  iat: number;
  nbf?: number;
  jti: string;
  repository: string;
  repository_owner?: string;
  ref?: string;
  sha?: string;
  event_name?: string;
  actor?: string;
  run_id?: string;
  [k: string]: unknown;
}

export interface OidcOptions {
  /** e.g. https://token.actions.githubusercontent.com */
  issuer: string;
  /** Where the issuer publishes its keys (tests serve one locally). */
  jwksUrl: string;
  /** The exact audience the token must carry. */
  audience: string;
  /** Allow-list of owner/name (compared case-insensitively). */
  repositories: string[];
  /** Single-use check (see client/once-store.ts). */
  jti: JtiStore;
  /** ms, for tests; also the clock for the JWKS cache so tests can age it. */
  now?: number;
  /** Default 10 s. */
  fetchTimeoutMs?: number;
}

const MAX_TOKEN_BYTES = 16 * 1024;
const MAX_JWKS_BYTES = 256 * 1024;
const JWKS_TTL_MS = 10 * 60_000;
/** An unknown kid may mean the issuer rotated keys; refetching at most this often stops kid spam hammering it. */
const JWKS_REFETCH_MIN_MS = 60_000;
const DEFAULT_FETCH_TIMEOUT_MS = 10_000;
const CLOCK_SKEW_S = 60;
const MAX_TOKEN_AGE_S = 3600;
const MIN_RSA_BITS = 2048;
/** Claims that OidcClaims types as optional strings: checked so the returned type does not lie. */
const OPTIONAL_STRING_CLAIMS = ['repository_owner', 'ref', 'sha', 'event_name', 'actor', 'run_id'] as const;

export async function verifyActionsToken(token: string, o: OidcOptions): Promise<OidcClaims> {
  checkOptions(o);
  const now = o.now ?? Date.now();
  if (typeof token !== 'string') throw new OidcError('token is not a string');
  // Bound the work an unauthenticated caller can cause before anything is decoded.
  const bytes = Buffer.byteLength(token, 'utf8');
  if (bytes > MAX_TOKEN_BYTES) throw new OidcError(`token is ${bytes} bytes, over the ${MAX_TOKEN_BYTES}-byte limit`);
  const parts = token.split('.');
  if (parts.length !== 3) {
    throw new OidcError(`token must be three base64url parts separated by dots, it has ${parts.length}`);
  }
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  const header = decodeJsonPart(headerPart, 'header');
  // Exactly RS256: "none" would skip the signature and HS256 would let the public key serve as an HMAC secret.
  if (header.alg !== 'RS256') throw new OidcError(`token alg ${show(header.alg)} is refused: only "RS256" is accepted`);
  if (typeof header.kid !== 'string' || header.kid === '') {
    throw new OidcError(`token header kid ${show(header.kid)} is not a non-empty string naming the signing key`);
  }
  // RFC 7515 4.1.11: a recipient must refuse critical extensions it does not understand, and we understand none.
  if (header.crit !== undefined) throw new OidcError(`token header crit ${show(header.crit)} is not supported`);
  // The header's jku, x5u, jwk and x5c are deliberately never read: a key the token names for itself proves nothing.
  const payload = decodeJsonPart(payloadPart, 'payload');
  if (!isBase64url(signaturePart)) throw new OidcError('token signature part is empty or not base64url');
  const signature = Buffer.from(signaturePart, 'base64url');

  const candidates = await signingKeys(o.jwksUrl, header.kid, now, o.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS);
  checkSignature(Buffer.from(`${headerPart}.${payloadPart}`), signature, header.kid, candidates);
  // Claims are judged only once the signature is known good, so nothing is reported about forged content.
  const claims = checkClaims(payload, o, now);

  let fresh: boolean;
  try {
    fresh = await o.jti.claim(claims.jti, claims.exp);
  } catch (e) {
    // Fail closed: if the use cannot be recorded, a replay could not be detected either.
    throw new OidcError(`could not record token ID ${show(claims.jti)} as used: ${errorMessage(e)}`);
  }
  if (!fresh) throw new OidcError(`token ID ${show(claims.jti)} was already used: ID tokens are single-use`);
  return claims;
}

/** The pull request number of a `refs/pull/N/merge` or `refs/pull/N/head` ref; undefined for any other ref. */
export function prFromRef(ref: string | undefined): number | undefined {
  const m = /^refs\/pull\/([1-9][0-9]{0,15})\/(?:merge|head)$/.exec(ref ?? '');
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : undefined;
}

function checkOptions(o: OidcOptions): void {
  // A blank issuer or audience would match a token that carries a blank one: refuse the configuration instead.
  if (!o.issuer) throw new OidcError('misconfigured: the expected issuer is empty');
  if (!o.audience) throw new OidcError('misconfigured: the expected audience is empty');
  let url: URL;
  try {
    url = new URL(o.jwksUrl);
  } catch {
    throw new OidcError(`misconfigured: jwksUrl ${show(o.jwksUrl)} is not a URL`);
  }
  // Keys fetched over plain HTTP could be swapped in transit; loopback is allowed for local stand-ins in tests.
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new OidcError(`misconfigured: jwksUrl ${o.jwksUrl} must be https (plain http only on loopback)`);
  }
}

function checkSignature(signed: Buffer, signature: Buffer, kid: string, candidates: Candidate[]): void {
  const usable: KeyObject[] = [];
  const problems: string[] = [];
  for (const c of candidates) {
    if ('error' in c) {
      problems.push(`could not be imported (${c.error})`);
      continue;
    }
    const bits = c.key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) problems.push(`is a ${bits}-bit RSA key; at least ${MIN_RSA_BITS} bits are required`);
    else usable.push(c.key);
  }
  if (usable.length === 0) throw new OidcError(`JWKS key ${show(kid)} ${problems.join('; ')}`);
  // Several keys may share a kid during a rotation; all came from the trusted JWKS, so any one verifying suffices.
  const ok = usable.some((key) => {
    try {
      return verify('RSA-SHA256', signed, key, signature);
    } catch {
      return false;
    }
  });
  if (!ok) throw new OidcError(`token signature does not verify with JWKS key ${show(kid)}`);
}

function checkClaims(c: Record<string, unknown>, o: OidcOptions, nowMs: number): OidcClaims {
  const now = nowMs / 1000;
  if (c.iss !== o.issuer) throw new OidcError(`iss ${show(c.iss)} is not the expected issuer ${show(o.issuer)}`);
  const aud = c.aud;
  const auds = typeof aud === 'string' ? [aud] : isStringArray(aud) ? aud : undefined;
  if (!auds) throw new OidcError(`aud ${show(aud)} is not a string or an array of strings`);
  if (!auds.includes(o.audience)) {
    throw new OidcError(`aud ${show(aud)} does not include the expected audience ${show(o.audience)}`);
  }
  if (!isNumber(c.exp)) throw new OidcError(`exp ${show(c.exp)} is not a number`);
  if (c.exp <= now - CLOCK_SKEW_S) {
    throw new OidcError(`token expired at ${when(c.exp)} (now ${when(now)}, ${CLOCK_SKEW_S} s of clock skew allowed)`);
  }
  if (c.nbf !== undefined) {
    if (!isNumber(c.nbf)) throw new OidcError(`nbf ${show(c.nbf)} is not a number`);
    if (c.nbf > now + CLOCK_SKEW_S) throw new OidcError(`token is not valid before ${when(c.nbf)} (now ${when(now)})`);
  }
  if (!isNumber(c.iat)) throw new OidcError(`iat ${show(c.iat)} is not a number`);
  if (c.iat > now + CLOCK_SKEW_S) throw new OidcError(`iat ${when(c.iat)} is in the future (now ${when(now)})`);
  // GitHub's tokens live minutes; an old one that still claims a far exp is more likely stolen than slow.
  if (c.iat < now - MAX_TOKEN_AGE_S) {
    throw new OidcError(`token was issued at ${when(c.iat)}, more than ${MAX_TOKEN_AGE_S / 3600} hour ago`);
  }
  if (typeof c.jti !== 'string' || c.jti === '') throw new OidcError(`jti ${show(c.jti)} is not a non-empty string`);
  if (typeof c.sub !== 'string') throw new OidcError(`sub ${show(c.sub)} is not a string`);
  const repository = c.repository;
  if (typeof repository !== 'string' || repository === '') {
    throw new OidcError(`repository ${show(repository)} is not a non-empty string`);
  }
  // GitHub owner and repository names are case-insensitive ASCII, so the comparison is too.
  const wanted = repository.toLowerCase();
  if (!o.repositories.some((r) => r.toLowerCase() === wanted)) {
    throw new OidcError(`repository ${show(repository)} is not in the allow-list`);
  }
  for (const name of OPTIONAL_STRING_CLAIMS) {
    const v = c[name];
    if (v !== undefined && typeof v !== 'string') throw new OidcError(`${name} ${show(v)} is not a string`);
  }
  return c as OidcClaims;
}

// ---- JWKS: fetched only from the configured URL, cached per URL ----

type Candidate = { key: KeyObject } | { error: string };
interface KeySet {
  byKid: Map<string, Candidate[]>;
  fetchedAt: number;
}
interface CacheEntry {
  set?: KeySet;
  /** When the last fetch started, successful or not: the refetch rate limit counts attempts. */
  lastFetch: number;
  /** Concurrent verifications share one fetch. */
  pending?: Promise<KeySet>;
}
const jwksCache = new Map<string, CacheEntry>();

function loadJwks(url: string, now: number, timeoutMs: number): Promise<KeySet> {
  let entry = jwksCache.get(url);
  if (!entry) jwksCache.set(url, (entry = { lastFetch: -Infinity }));
  if (entry.pending) return entry.pending;
  const e = entry;
  e.lastFetch = now;
  e.pending = fetchJwks(url, timeoutMs)
    .then((byKid) => (e.set = { byKid, fetchedAt: now }))
    .finally(() => {
      e.pending = undefined;
    });
  return e.pending;
}

async function signingKeys(url: string, kid: string, now: number, timeoutMs: number): Promise<Candidate[]> {
  const cached = jwksCache.get(url)?.set;
  let set = cached && now - cached.fetchedAt < JWKS_TTL_MS ? cached : await loadJwks(url, now, timeoutMs);
  let found = set.byKid.get(kid);
  if (!found && now - (jwksCache.get(url)?.lastFetch ?? -Infinity) >= JWKS_REFETCH_MIN_MS) {
    set = await loadJwks(url, now, timeoutMs);
    found = set.byKid.get(kid);
  }
  if (!found) throw new OidcError(`unknown kid ${show(kid)}: no RS256 signing key with that ID in the JWKS at ${url}`);
  return found;
}

async function fetchJwks(url: string, timeoutMs: number): Promise<Map<string, Candidate[]>> {
  const fail = (why: string) => new OidcError(`could not fetch the JWKS from ${url}: ${why}`);
  let res: Response;
  try {
    // No redirects: the keys must come from the configured URL itself, not wherever it points.
    res = await fetch(url, {
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'manual',
      headers: { accept: 'application/json' },
    });
  } catch (e) {
    throw fail(describeFetchError(e, timeoutMs));
  }
  if (res.status !== 200) {
    await res.body?.cancel().catch(() => undefined);
    throw fail(`HTTP ${res.status}, expected 200`);
  }
  const declared = Number(res.headers.get('content-length') ?? '');
  if (declared > MAX_JWKS_BYTES) {
    await res.body?.cancel().catch(() => undefined);
    throw fail(`the body is ${declared} bytes, over the ${MAX_JWKS_BYTES}-byte limit`);
  }
  let text: string;
  try {
    text = await readCapped(res, MAX_JWKS_BYTES);
  } catch (e) {
    throw e instanceof OidcError ? fail(e.message) : fail(describeFetchError(e, timeoutMs));
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw fail('the body is not JSON');
  }
  if (!isObject(doc) || !Array.isArray(doc.keys)) throw fail('the body is not a JWKS ({"keys": [...]})');
  const byKid = new Map<string, Candidate[]>();
  for (const k of doc.keys as unknown[]) {
    // Keys for encryption or other algorithms are skipped, never "adapted": a key is used only as published.
    if (!isObject(k) || k.kty !== 'RSA' || typeof k.kid !== 'string') continue;
    if (k.use !== undefined && k.use !== 'sig') continue;
    if (k.alg !== undefined && k.alg !== 'RS256') continue;
    let c: Candidate;
    if (typeof k.n !== 'string' || typeof k.e !== 'string') c = { error: 'n or e is missing' };
    else {
      try {
        // Only the public components are passed on: nothing else in the JWK should influence the key.
        c = { key: createPublicKey({ key: { kty: 'RSA', n: k.n, e: k.e }, format: 'jwk' }) };
      } catch (e) {
        c = { error: errorMessage(e) };
      }
    }
    byKid.set(k.kid, [...(byKid.get(k.kid) ?? []), c]);
  }
  return byKid;
}

/** The body as UTF-8, refusing it as soon as it passes `limit` bytes (a missing or lying content-length included). */
async function readCapped(res: Response, limit: number): Promise<string> {
  const reader = res.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => undefined);
      throw new OidcError(`the body is over the ${limit}-byte limit`);
    }
    chunks.push(value);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new OidcError('the body is not UTF-8');
  }
}

// ---- small helpers ----

function decodeJsonPart(part: string, what: 'header' | 'payload'): Record<string, unknown> {
  if (!isBase64url(part)) throw new OidcError(`token ${what} is empty or not base64url`);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(part, 'base64url')));
  } catch {
    throw new OidcError(`token ${what} is not UTF-8 JSON`);
  }
  if (!isObject(value)) throw new OidcError(`token ${what} is not a JSON object`);
  return value;
}

/** Unpadded base64url; a length of 1 mod 4 cannot come from any byte string. */
function isBase64url(s: string): boolean {
  return /^[A-Za-z0-9_-]+$/.test(s) && s.length % 4 !== 1;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/** A value from the token, quoted and escaped (no log injection through newlines) and kept short. */
function show(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

/** Seconds since the epoch as ISO time; a value out of Date's range is shown as the number. */
function when(seconds: number): string {
  const d = new Date(seconds * 1000);
  return Number.isNaN(d.getTime()) ? String(seconds) : d.toISOString();
}

function errorMessage(e: unknown): string {
  return typeof e === 'object' && e !== null && 'message' in e ? String(e.message) : String(e);
}

/** fetch's own message is just "fetch failed"; the reason (ECONNREFUSED, ENOTFOUND, a timeout) is in the cause. */
function describeFetchError(e: unknown, timeoutMs: number): string {
  // Duck-typed, not instanceof: fetch's errors may come from another realm (jest's vm modules, for one).
  if (typeof e !== 'object' || e === null) return String(e);
  const err = e as { name?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } };
  if (err.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  const code = err.cause?.code ?? err.cause?.message;
  const cause = typeof code === 'string' || typeof code === 'number' ? ` (${code})` : '';
  return `${typeof err.message === 'string' ? err.message : 'unknown error'}${cause}`;
}
