// Attestations for `verify` cases. The fuzzer holds its own release and evidence keys (fixed seeds, so cases
// reproduce byte for byte) and re-signs what it mutates: a mutated statement then passes the envelope signature
// and reaches the checks behind it, which an attacker holding no key could not reach but a bug there still matters.
import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { PREDICATE_TYPE, signEnvelope, type Statement } from '../activities/attestation.js';
import { keyId, rawPublicKey } from '../activities/keys.js';
import {
  appendEntry,
  canonicalEvidence,
  genesisDigest,
  parsePolicy,
  subjectDigest,
  type AuditEntry,
  type EvidenceBody,
} from '../policy/index.js';
import { mutateBytes } from './bytes.js';
import { mutateJson, type Json } from './policy-mutators.js';
import type { FuzzRng } from './rng.js';

/** An Ed25519 private key from a 32-byte seed (PKCS#8 DER: a fixed prefix, then the seed). */
function seededKey(fill: number): KeyObject {
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.alloc(32, fill)]);
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
}

export const RELEASE_KEY = seededKey(1);
const EVIDENCE_KEY = seededKey(2);
export const RELEASE_PUB = rawPublicKey(RELEASE_KEY);

function signEvidence(body: unknown): Json {
  const signature = sign(null, canonicalEvidence(body as EvidenceBody), EVIDENCE_KEY).toString('base64');
  return { body: body as Json, keyId: keyId(rawPublicKey(EVIDENCE_KEY)), signature };
}

/** The smallest policy a release can be attested under: one person, a release stage that needs no approval. */
const POLICY = 'version: 1\nname: att\npeople: { omar: {} }\nstages: [{ name: release, approval: false }]\n';

/** A release statement `verify` accepts: a pipeline of one release stage, its start evidence signed. */
export function seedStatement(): { [k: string]: Json } {
  const policy = parsePolicy(POLICY, { file: 'secmlops.yaml' });
  const subject = { repo: 'local/repo', headSha: '0'.repeat(40), author: 'mia', source: 'cli' as const };
  const digest = subjectDigest(subject);
  const policyDigest = 'c'.repeat(64);
  const start = signEvidence({
    v: 1,
    kind: 'start',
    pipelineId: 'p1',
    workflowId: 'p1',
    subjectDigest: digest,
    policyDigest,
    issuedAt: '2026-01-01T00:00:00.000Z',
    payload: {
      subject,
      policy: JSON.parse(JSON.stringify(policy)) as Json,
      policyRef: 'secmlops.yaml',
      policySource: { kind: 'local', root: '/policies' },
      authenticatedBy: { channel: 'cli', keyId: 'x' },
    },
  });
  const audit: AuditEntry[] = [];
  const at = '2026-01-01T00:00:01.000Z';
  appendEntry(audit, genesisDigest('p1'), {
    at,
    stage: 'pipeline',
    kind: 'start',
    roles: [],
    subjectDigest: digest,
    subject,
  });
  const predicate = {
    pipeline: 'p1',
    change: subject,
    subjectDigest: digest,
    policyName: policy.name,
    policyDigest,
    evidenceKey: rawPublicKey(EVIDENCE_KEY),
    modelMeasuredBy: 'signer',
    stages: [],
    dossier: { start, stages: [], audit: audit as unknown as Json },
  };
  return {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: 'model', digest: { sha256: 'a'.repeat(64) } }],
    predicateType: PREDICATE_TYPE,
    predicate,
  };
}

export const envelopeText = (statement: Json) =>
  JSON.stringify(signEnvelope(statement as unknown as Statement, RELEASE_KEY), null, 2);

const isObject = (v: Json | undefined): v is { [k: string]: Json } => !!v && typeof v === 'object' && !Array.isArray(v);

/** One mutated attestation file: the envelope's bytes, the envelope's fields, or the statement re-signed. */
export function attestationCase(rng: FuzzRng): { kind: string; applied: string[]; input: Uint8Array } {
  const statement = seedStatement();
  const r = rng.int(100);
  if (r < 15) {
    const input = mutateBytes(rng, new TextEncoder().encode(envelopeText(statement)));
    return { kind: 'bytes', applied: ['bytes'], input };
  }
  if (r < 35) {
    const envelope = JSON.parse(envelopeText(statement)) as Json;
    const { value, applied } = mutateJson(rng, envelope);
    return { kind: 'envelope', applied, input: new TextEncoder().encode(JSON.stringify(value)) };
  }
  const applied: string[] = [];
  // Half the time the start evidence is mutated and signed again, so checkRelease believes it and reads on.
  const dossier = (statement.predicate as { [k: string]: Json }).dossier;
  const start = isObject(dossier) ? dossier.start : undefined;
  if (rng.chance(0.5) && isObject(dossier) && isObject(start)) {
    const body = mutateJson(rng, start.body);
    applied.push(...body.applied.map((a) => `start.${a}`));
    try {
      dossier.start = signEvidence(body.value);
    } catch {
      applied.push('start-unsignable'); // no canonical form: left as it was, with the old signature
    }
  }
  const m = mutateJson(rng, statement);
  applied.push(...m.applied);
  return { kind: 'statement', applied, input: new TextEncoder().encode(envelopeText(m.value)) };
}
