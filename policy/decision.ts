import { ed25519 } from '@noble/curves/ed25519.js';
import { decodeBase64 } from './base64.js';
import type { Channel } from './types.js';

/** What a channel signs: the workflow ID and stage bind a signature to one approval, so it cannot be replayed elsewhere. */
export interface Decision {
  workflowId: string;
  stage: string;
  person: string;
  channel: Channel;
  decision: 'approve' | 'reject';
  comment: string;
  /** ISO 8601, UTC. */
  issuedAt: string;
}

export interface SignedDecision extends Decision {
  /** Base64 Ed25519 signature over canonicalDecision(). */
  signature: string;
}

const DOMAIN = 'secmlops-decision-v1\n';

/** Deterministic bytes to sign: a domain tag and JSON with sorted keys, so every channel and verifier agree. */
export function canonicalDecision(d: Decision): Uint8Array {
  const fields: Decision = {
    channel: d.channel,
    comment: d.comment,
    decision: d.decision,
    issuedAt: d.issuedAt,
    person: d.person,
    stage: d.stage,
    workflowId: d.workflowId,
  };
  return new TextEncoder().encode(DOMAIN + JSON.stringify(fields));
}

/** True only for a well-formed signature that verifies against the given raw public key (base64). Fails closed. */
export function verifyDecision(d: SignedDecision, publicKeyBase64: string): boolean {
  const sig = typeof d.signature === 'string' ? decodeBase64(d.signature) : undefined;
  const key = decodeBase64(publicKeyBase64);
  if (!sig || sig.length !== 64 || !key || key.length !== 32) return false;
  try {
    return ed25519.verify(sig, canonicalDecision(d), key);
  } catch {
    return false;
  }
}
