// What a federated client keeps of a round on its own disk, one file per federation and round, written atomically:
// the statements it made (so a retried activity answers the same), and with secure aggregation its round keys, its
// own shares and its unmasked update until they are no longer needed.
import { ApplicationFailure } from '@temporalio/activity';
import { createHash, randomBytes } from 'node:crypto';
import { link, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgreementKey } from '../engine/federated/secure-sum.js';
import type { FederatedConfig } from '../policy/index.js';
import type { SignedStatement } from './federated-statement.js';

export interface RoundState {
  base: string;
  trained: SignedStatement;
  /** The round's pairwise-mask key (its private half is deleted once the client has masked). */
  agreement?: AgreementKey;
  /** The round's channel key, which opens the shares the others sealed for this client. */
  channel?: AgreementKey;
  /** The sharing statement, the digest of the trained set it dealt to, its self-mask seed and its own share. */
  shared?: SignedStatement;
  sharedFor?: string;
  selfSeed?: string;
  ownShare?: string;
  /** The masked statement and the digest of the sharing set it masked for. */
  masked?: SignedStatement;
  participants?: string;
  /** The reveal, and the digest of the masked set it revealed for: once per round. */
  revealed?: SignedStatement;
  revealedFor?: string;
}

/** The file a round's private state lives in: one per federation and round, named by their hash. */
export function statePath(stateDir: string, client: string, federationId: string, round: number): string {
  const name = createHash('sha256').update(`${federationId}\n${round}`).digest('hex').slice(0, 32);
  return join(stateDir, client, name);
}

export async function readState(path: string): Promise<RoundState | undefined> {
  const text = await readFile(`${path}.json`, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as RoundState);
}

export async function writeState(path: string, state: RoundState): Promise<void> {
  await writeAtomic(`${path}.json`, JSON.stringify(state));
}

/** Written beside under a unique name, then renamed: a crash leaves the old file or the new one, never half. */
export async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(tmp, data, { mode: 0o600 });
  await rename(tmp, path);
}

/**
 * Creates `path` holding `data` unless it exists, atomically (written beside, then hard-linked: the link fails if
 * the name is taken), and returns what the file holds: `data`, or what an earlier call put there.
 */
export async function createOnce(path: string, data: Buffer): Promise<Buffer> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(tmp, data, { mode: 0o600 });
  try {
    await link(tmp, path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    await rm(tmp, { force: true });
  }
  return readFile(path);
}

/**
 * Claims one phase of a round for one input, across processes, before anything is computed: true for the first
 * claim and for the same input again (a retry), false for any other input. Checking the state file instead would
 * let two concurrent calls both pass (and a client answer one phase for two sets, which gives its secrets away).
 */
export async function claim(path: string, phase: string, digest: string): Promise<boolean> {
  const held = await createOnce(`${path}.${phase}.claim`, Buffer.from(digest));
  return held.toString('utf8') === digest;
}

const running = new Map<string, Promise<unknown>>();

/** Runs `fn` after every earlier call for the same key in this process has settled: one at a time per round. */
export async function serialized<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const next = (running.get(key) ?? Promise.resolve()).catch(() => undefined).then(fn);
  running.set(key, next);
  try {
    return await next;
  } finally {
    if (running.get(key) === next) running.delete(key);
  }
}

export function checkRound(round: unknown, c: FederatedConfig): void {
  if (!(Number.isInteger(round) && (round as number) >= 1 && (round as number) <= c.rounds))
    throw ApplicationFailure.nonRetryable(`round ${String(round)} is not one of 1..${c.rounds}`, 'FederatedPolicy');
}

export const digestOf = (ref: string) => ref.replace(/^sha256:/, '');
