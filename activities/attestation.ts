// Release attestations: an in-toto Statement v1 inside a DSSE envelope, signed with Ed25519.
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { keyId, rawPublicKey } from './keys.js';

export const PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const PREDICATE_TYPE = 'https://secmlops.dev/attestation/release/v2';
/** Attestations signed before the trust boundary: no evidence, no audit chain; `verify` needs --allow-legacy. */
export const LEGACY_PREDICATE_TYPE = 'https://secmlops.dev/attestation/release/v1';

export interface Envelope {
  payloadType: string;
  payload: string;
  signatures: { keyid: string; sig: string }[];
}

export interface Statement {
  _type: 'https://in-toto.io/Statement/v1';
  subject: { name: string; digest: { sha256: string } }[];
  predicateType: string;
  predicate: Record<string, unknown>;
}

/** DSSE's pre-authentication encoding: what is actually signed, binding the payload type to the payload. */
export function pae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

export function signEnvelope(statement: Statement, key: KeyObject): Envelope {
  const payload = Buffer.from(JSON.stringify(statement), 'utf8');
  const sig = sign(null, pae(PAYLOAD_TYPE, payload), key).toString('base64');
  return {
    payloadType: PAYLOAD_TYPE,
    payload: payload.toString('base64'),
    signatures: [{ keyid: keyId(rawPublicKey(key)), sig }],
  };
}

export function publicKeyFromRaw(base64: string): KeyObject {
  const raw = Buffer.from(base64, 'base64');
  if (raw.length !== 32) throw new Error('expected an Ed25519 public key: base64 of 32 raw bytes');
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
}

/**
 * Checks the envelope against a key the caller trusts (never a key named inside the envelope) and returns the
 * statement. Throws with the reason on anything unexpected.
 */
export function openEnvelope(envelope: unknown, trustedKeyBase64: string): Statement {
  const e = envelope as Envelope;
  if (
    !e ||
    typeof e !== 'object' ||
    typeof e.payload !== 'string' ||
    typeof e.payloadType !== 'string' ||
    !Array.isArray(e.signatures)
  ) {
    throw new Error('not a DSSE envelope: expected payloadType, payload and signatures');
  }
  if (e.payloadType !== PAYLOAD_TYPE)
    throw new Error(`unexpected payloadType ${e.payloadType}; expected ${PAYLOAD_TYPE}`);
  const key = publicKeyFromRaw(trustedKeyBase64);
  const payload = Buffer.from(e.payload, 'base64');
  const ok = e.signatures.some(
    (s) => typeof s?.sig === 'string' && verify(null, pae(e.payloadType, payload), key, Buffer.from(s.sig, 'base64')),
  );
  if (!ok) throw new Error(`no signature in the envelope verifies with the trusted key ${keyId(trustedKeyBase64)}`);
  const statement = JSON.parse(payload.toString('utf8')) as Statement;
  if (statement._type !== 'https://in-toto.io/Statement/v1')
    throw new Error(`payload is not an in-toto Statement v1 (_type ${String(statement._type)})`);
  return statement;
}
