import { decodeBase64 } from './base64.js';
import { canonicalJson, sha256Hex, utf8 } from './canonical.js';
import { verifyEd25519 } from './ed25519.js';
import type { Channel } from './types.js';

/**
 * What a channel signs. The workflow ID and stage bind a signature to one approval; subjectDigest (v2) binds it
 * to one change (repository, PR, head commit, author), so an approval read from an earlier run's history cannot
 * be replayed on a run for another commit. v1 decisions (no subjectDigest) are accepted only in runs recorded
 * before v2 existed.
 */
export interface Decision {
  workflowId: string;
  stage: string;
  person: string;
  channel: Channel;
  decision: 'approve' | 'reject';
  comment: string;
  /** ISO 8601, UTC. */
  issuedAt: string;
  /** subjectDigest() of the change the signer saw (v2); for an incident, incidentSubject() of the served model. */
  subjectDigest?: string;
  /** An incident's resolution (v3): what the responder chose, covered by the signature. */
  resolution?: IncidentResolution;
}

/** Roll back to an earlier release (its attestation in the artifact store), or retrain the change. */
export type IncidentResolution = { action: 'rollback'; attestation: string } | { action: 'retrain' };

export interface SignedDecision extends Decision {
  /** Base64 Ed25519 signature over canonicalDecision(). */
  signature: string;
}

const DOMAIN_V1 = 'secmlops-decision-v1\n';
const DOMAIN_V2 = 'secmlops-decision-v2\n';
const DOMAIN_V3 = 'secmlops-decision-v3\n';

/** Deterministic bytes to sign: a domain tag and JSON with sorted keys, so every channel and verifier agree. */
export function canonicalDecision(d: Decision): Uint8Array {
  return utf8(decisionText(d));
}

/** canonicalDecision() before UTF-8 encoding. */
function decisionText(d: Decision): string {
  const fields = {
    channel: d.channel,
    comment: d.comment,
    decision: d.decision,
    issuedAt: d.issuedAt,
    person: d.person,
    stage: d.stage,
    workflowId: d.workflowId,
  };
  // v1 bytes are kept exactly as they were (plain JSON.stringify of these keys in this order).
  if (d.subjectDigest === undefined) {
    if (d.resolution !== undefined) throw new Error('a decision with a resolution must name its subject digest');
    return DOMAIN_V1 + JSON.stringify(fields);
  }
  if (d.resolution === undefined) return DOMAIN_V2 + canonicalJson({ ...fields, subjectDigest: d.subjectDigest });
  return DOMAIN_V3 + canonicalJson({ ...fields, subjectDigest: d.subjectDigest, resolution: d.resolution });
}

/** True only for a well-formed signature that verifies against the given raw public key (base64). Fails closed. */
export function verifyDecision(d: SignedDecision, publicKeyBase64: string): boolean {
  let bytes: Uint8Array;
  try {
    bytes = canonicalDecision(d);
  } catch {
    return false;
  }
  return verifySignature(d.signature, bytes, publicKeyBase64);
}

/**
 * verifyDecision with a memory of what verified: an Update's validator and then its handler check the same decision,
 * and in workflow code each check is a pure-JavaScript Ed25519 verification. Only successes are remembered, keyed by
 * the exact key, signature and signed text, so a forged decision can neither enter nor evict an entry it did not
 * earn; the memory is bounded all the same.
 */
const CANONICAL_SIGNATURE = /^[A-Za-z0-9+/]{86}==$/;

export class DecisionVerifier {
  private readonly verified = new Set<string>();

  constructor(private readonly limit = 64) {}

  readonly verify = (d: SignedDecision, publicKeyBase64: string): boolean => {
    let text: string;
    try {
      text = decisionText(d);
    } catch {
      return false;
    }
    const bytes = utf8(text);
    // Remembered by digest, with the signature only in its canonical spelling: base64 decoding forgives whitespace,
    // so a replayed decision padded with megabytes of it would otherwise be a new, large entry each time.
    const canonical = typeof d.signature === 'string' && CANONICAL_SIGNATURE.test(d.signature);
    const key = canonical ? sha256Hex(`${publicKeyBase64}\n${d.signature}\n${sha256Hex(bytes)}`) : undefined;
    if (key !== undefined && this.verified.has(key)) return true;
    if (!verifySignature(d.signature, bytes, publicKeyBase64)) return false;
    if (key === undefined) return true;
    if (this.verified.size >= this.limit) this.verified.delete(this.verified.values().next().value as string);
    this.verified.add(key);
    return true;
  };
}

export type Ed25519Verifier = (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) => boolean;

let ed25519Verifier: Ed25519Verifier = verifyEd25519;

/**
 * Outside the workflow sandbox, workers and the CLI install OpenSSL's verification (engine/io/native-ed25519.ts),
 * which accepts a subset of what the pure-JavaScript one does. Workflow code never calls this and keeps verifyEd25519.
 */
export function useEd25519Verifier(verifier: Ed25519Verifier): void {
  ed25519Verifier = verifier;
}

/** Ed25519 check of a base64 signature over bytes with a base64 raw public key; false on anything malformed. */
export function verifySignature(signature: unknown, message: Uint8Array, publicKeyBase64: string): boolean {
  const sig = typeof signature === 'string' ? decodeBase64(signature) : undefined;
  const key = typeof publicKeyBase64 === 'string' ? decodeBase64(publicKeyBase64) : undefined;
  if (!sig || sig.length !== 64 || !key || key.length !== 32) return false;
  try {
    // Strict RFC 8032: no non-canonical R or key (noble's default is ZIP-215, which accepts more signatures for the
    // same key); noble's strict rules, with a base point that costs less in a fresh workflow context.
    return ed25519Verifier(sig, message, key);
  } catch {
    return false;
  }
}
