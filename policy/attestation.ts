// Release attestations as the signer writes them (an in-toto Statement v1 in a DSSE envelope, Ed25519) and the one
// check every reader shares: `secmlops verify` and the guarded server (`secmlops serve`) open the envelope with a key
// they trust and re-check the attested facts against the dossier inside with checkRelease. Pure (no Node built-ins),
// like the rest of policy/, so any part may import it.
import { decodeBase64 } from './base64.js';
import { canonicalJson } from './canonical.js';
import { verifySignature } from './decision.js';
import { keyIdOf } from './evidence.js';
import { pointProblem } from './parse-keys.js';
import { checkRelease, datasetSubjects, type CheckedRelease, type ReleaseDossier } from './release-check.js';
import { subjectDigest } from './subject.js';

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

/** The predicate of a release attestation: the checked facts and the dossier they were checked from. */
export interface ReleasePredicate {
  pipeline: string;
  change: CheckedRelease['subject'];
  subjectDigest: string;
  policyName: string;
  policyDigest: string;
  /** The evidence public key the signer checked the evidence with (base64 raw Ed25519). */
  evidenceKey: string;
  /** Where the model digest came from: a stage's evidence, or the signer hashing the policy's model file. */
  modelMeasuredBy?: 'train' | 'evaluate' | 'signer';
  stages: CheckedRelease['stages'];
  /** The data stage's poisoning defense: the split's original digests, the sanitised copy, how much it removed. */
  sanitisation?: CheckedRelease['sanitised'];
  /** DP-SGD: (ε, δ) from the accountant and the mechanism's parameters. */
  privacy?: CheckedRelease['privacy'];
  dossier: Omit<ReleaseDossier, 'evidenceKey' | 'pipelineId'>;
}

const utf8 = (s: string) => new TextEncoder().encode(s);

/** DSSE's pre-authentication encoding: what is actually signed, binding the payload type to the payload. */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = utf8(payloadType);
  const parts = [utf8(`DSSEv1 ${type.length} `), type, utf8(` ${payload.length} `), payload];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
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
  const key = decodeBase64(trustedKeyBase64);
  if (!key || key.length !== 32) throw new Error('expected an Ed25519 public key: base64 of 32 raw bytes');
  // A small-order or non-canonical key would let anyone sign: never trust one, whoever handed it over.
  const weak = pointProblem(key);
  if (weak) throw new Error(`the trusted key is unusable: ${weak}`);
  const payload = decodeBase64(e.payload);
  if (!payload) throw new Error('the envelope’s payload is not base64');
  const signed = pae(e.payloadType, payload);
  if (!e.signatures.some((s) => typeof s?.sig === 'string' && verifySignature(s.sig, signed, trustedKeyBase64)))
    throw new Error(`no signature in the envelope verifies with the trusted key ${keyIdOf(trustedKeyBase64)}`);
  const statement = JSON.parse(new TextDecoder().decode(payload)) as Statement;
  if (statement?._type !== 'https://in-toto.io/Statement/v1')
    throw new Error(`payload is not an in-toto Statement v1 (_type ${String(statement?._type)})`);
  return statement;
}

export interface AttestationCheck {
  problems: string[];
  /** What could not be checked (a model digest only the signer measured, with no pin in the policy). */
  notChecked: string[];
  release?: CheckedRelease;
}

/**
 * Re-checks a release predicate: the dossier with checkRelease (evidence signatures, decisions, the chain, approval
 * rules), then every attested fact and subject against what that check established.
 */
export function checkAttestation(p: ReleasePredicate, subjects: { name: string; sha256: string }[]): AttestationCheck {
  if (!p?.dossier || typeof p.evidenceKey !== 'string')
    throw new Error('the attestation carries no dossier: it cannot be re-checked');
  const { problems, release } = checkRelease({ pipelineId: p.pipeline, evidenceKey: p.evidenceKey, ...p.dossier });
  if (release) {
    if (release.subjectDigest !== p.subjectDigest || subjectDigest(p.change) !== p.subjectDigest)
      problems.push('the attested change is not the one the start evidence names');
    if (release.policyDigest !== p.policyDigest)
      problems.push('the attested policy digest is not the one the start evidence names');
    if (!sameJson(release.stages, p.stages))
      problems.push('the attested stages, metrics or gates differ from what the evidence shows');
    if (!sameJson(release.sanitised ?? null, p.sanitisation ?? null))
      problems.push('the attested sanitisation differs from what the data stage’s evidence shows');
    if (!sameJson(release.privacy ?? null, p.privacy ?? null))
      problems.push('the attested privacy guarantee differs from what the training evidence shows');
    const expected = new Map(datasetSubjects(release).map((f) => [f.name, f.sha256]));
    if (release.model) expected.set('model', release.model.sha256);
    else if (p.modelMeasuredBy === 'signer') {
      const pin = release.policy.artifacts.model?.sha256;
      const stated = subjects.find((s) => s.name === 'model')?.sha256;
      if (stated) expected.set('model', pin ?? stated);
    }
    const names = new Set(subjects.map((s) => s.name));
    if (names.size !== subjects.length) problems.push('the statement names a subject twice');
    for (const s of subjects) {
      const want = expected.get(s.name);
      if (want === undefined) problems.push(`the statement names subject ${s.name}, which no evidence supports`);
      else if (want !== s.sha256)
        problems.push(`the statement gives ${s.name} the digest ${s.sha256}, but the evidence measured ${want}`);
    }
    for (const name of expected.keys())
      if (!names.has(name)) problems.push(`the statement leaves out ${name}, which the evidence measured`);
  }
  const notChecked =
    p.modelMeasuredBy === 'signer' && !release?.policy.artifacts.model?.sha256
      ? ['the model digest was measured by the release signer alone (the policy pins none and no stage measured it)']
      : [];
  return { problems, notChecked, release };
}

function sameJson(a: unknown, b: unknown): boolean {
  try {
    return canonicalJson(a) === canonicalJson(b);
  } catch {
    return false;
  }
}

/** Why a release is not trusted to serve: one line, for the operator or the incident responder. */
export class NotAttested extends Error {
  constructor(reason: string) {
    super(`refusing to serve: ${reason}`);
    this.name = 'NotAttested';
  }
}

export interface AttestedRelease {
  /** The attested model's SHA-256 (hex). */
  sha256: string;
  predicate: ReleasePredicate;
}

/**
 * The one rule for serving a release, shared by the guarded server and the monitor's rollback check: the envelope
 * opens with the trusted key, its predicate re-checks with nothing left unchecked, it names a model, and (given the
 * operator's policy) it ran under exactly that policy and carries the model the policy pins. Throws NotAttested.
 */
export function attestedRelease(
  envelope: unknown,
  trustedKey: string,
  policy?: { digest: string; modelSha256?: string },
): AttestedRelease {
  let statement;
  try {
    statement = openEnvelope(envelope, trustedKey);
  } catch (e) {
    throw new NotAttested(`the attestation does not open: ${(e as Error).message}`);
  }
  if (statement.predicateType !== PREDICATE_TYPE)
    throw new NotAttested(`the attestation's predicate type ${statement.predicateType} is not ${PREDICATE_TYPE}`);
  if (!Array.isArray(statement.subject)) throw new NotAttested('the attestation names no subjects');
  const subjects = statement.subject.map((s) => ({ name: String(s?.name), sha256: String(s?.digest?.sha256) }));
  const predicate = statement.predicate as unknown as ReleasePredicate;
  let checked;
  try {
    checked = checkAttestation(predicate, subjects);
  } catch (e) {
    throw new NotAttested(`the attestation cannot be checked: ${(e as Error).message}`);
  }
  if (checked.problems.length)
    throw new NotAttested(
      `the attestation does not check: ${checked.problems[0]}` +
        (checked.problems.length > 1 ? ` (and ${checked.problems.length - 1} more)` : ''),
    );
  if (checked.notChecked.length)
    throw new NotAttested(`the attestation leaves something unchecked: ${checked.notChecked.join('; ')}`);
  const sha256 = subjects.find((s) => s.name === 'model')?.sha256;
  if (!sha256 || !/^[0-9a-f]{64}$/.test(sha256)) throw new NotAttested('the attestation names no model');
  if (policy && predicate.policyDigest !== policy.digest)
    throw new NotAttested(
      `the release ran under policy ${String(predicate.policyDigest).slice(0, 12)}…, not the given policy ` +
        `(${policy.digest.slice(0, 12)}…)`,
    );
  if (policy?.modelSha256 && policy.modelSha256 !== sha256)
    throw new NotAttested(`the attested model sha256:${sha256} is not the model the policy pins`);
  return { sha256, predicate };
}
