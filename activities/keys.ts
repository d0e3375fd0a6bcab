// Ed25519 keys on disk: private keys as PKCS#8 PEM (mode 0600), public keys as base64 of the raw 32 bytes,
// which is the form the policy pins and the workflow's pure-JS verifier reads.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RegularFileError, readRegular } from '../engine/io/regular-file.js';
import { canonicalDecision, type Decision, type SignedDecision } from '../policy/index.js';

// One key per approval channel (cli also signs starts), one that signs releases, the workers' evidence key, and the
// operator's key for console sign-in tokens.
export const DEV_KEY_NAMES = ['cli', 'console', 'slack', 'github', 'release', 'evidence', 'token'] as const;

/** An Ed25519 key file holds about a hundred bytes: anything much larger is not a key, and is not read whole. */
export const MAX_KEY_FILE_BYTES = 4096;

export function rawPublicKey(key: KeyObject): string {
  const der = (key.type === 'public' ? key : createPublicKey(key)).export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - 32).toString('base64');
}

export function keyId(publicKeyBase64: string): string {
  return createHash('sha256').update(Buffer.from(publicKeyBase64, 'base64')).digest('hex').slice(0, 16);
}

export async function loadPrivateKey(path: string): Promise<KeyObject> {
  const pem = await readKeyFile(path, 'private key');
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw new Error(`${path} is not a PEM private key`);
  }
  if (key.asymmetricKeyType !== 'ed25519')
    throw new Error(`${path} holds a ${key.asymmetricKeyType} key; an Ed25519 key is required`);
  return key;
}

/** Public key as base64 raw bytes, from a file holding either that form or a PEM public key. */
export async function loadPublicKey(path: string): Promise<string> {
  const text = (await readKeyFile(path, 'public key')).trim();
  if (text.startsWith('-----BEGIN')) return rawPublicKey(createPublicKey(text));
  return text;
}

/** A key file's text: only a regular file of at most MAX_KEY_FILE_BYTES (no FIFO, no /dev/zero). */
async function readKeyFile(path: string, what: string): Promise<string> {
  try {
    return (await readRegular(path, MAX_KEY_FILE_BYTES)).toString('utf8');
  } catch (e) {
    throw e instanceof RegularFileError ? new Error(`${what} ${e.message}`) : e;
  }
}

/** Creates any missing development key pair under dir: NAME.key (private) and NAME.pub. Returns the names created. */
export async function ensureDevKeys(dir: string, names: readonly string[] = DEV_KEY_NAMES): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const created: string[] = [];
  for (const name of names) {
    const priv = join(dir, `${name}.key`);
    if (existsSync(priv)) continue;
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    await writeFile(priv, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    await chmod(priv, 0o600);
    await writeFile(join(dir, `${name}.pub`), rawPublicKey(publicKey) + '\n');
    created.push(name);
  }
  return created;
}

export function signDecision(d: Decision, key: KeyObject): SignedDecision {
  return { ...d, signature: sign(null, canonicalDecision(d), key).toString('base64') };
}
