// `secmlops verify`: re-checks a release attestation, or an exported audit trail, with the same module the release
// signer used before it signed (policy/release-check.ts): every evidence signature, every decision against the
// policy's channel keys, the audit chain, every stage's approval rule, and the statement's subjects against the
// evidence. Trusted inputs: the release public key (--key, or the policy's release key) and, optionally, the policy
// file, whose digest must be the attested one.
import { RegularFileError, readRegular } from '../engine/io/regular-file.js';
import { loadPublicKey } from '../activities/keys.js';
import type { LoadedPolicy } from '../activities/policy-source.js';
import { openArtifactStore } from '../activities/store.js';
import {
  LEGACY_PREDICATE_TYPE,
  PREDICATE_TYPE,
  checkAttestation,
  openEnvelope,
  type ReleasePredicate,
} from '../policy/attestation.js';
import { checkTrail, own, verifyDecision, type Channel } from '../policy/index.js';
import type { AuditEntry, PipelineStatus } from '../workflows/messages.js';

export interface VerifyReport {
  kind: 'attestation' | 'audit';
  pipeline: string;
  subjects: { name: string; sha256: string }[];
  /** Each decision in the trail, for display; `problems` says what failed. */
  decisions: { stage: string; person: string; decision: string; channel: string; valid?: boolean; reason?: string }[];
  problems: string[];
  /** For legacy documents accepted with --allow-legacy: what could not be checked. */
  notChecked: string[];
  ok: boolean;
}

export interface VerifyOptions {
  keyPath?: string;
  policy?: LoadedPolicy;
  artifactsDir: string;
  /** Accept attestations and trails from before the trust boundary, saying what could not be checked. */
  allowLegacy?: boolean;
}

/** An attestation carries its whole dossier, a few hundred kilobytes for a long run: 16 MiB is generous. */
export const MAX_ATTESTATION_BYTES = 16 * 1024 * 1024;

const LEGACY_GAPS = [
  'no evidence: the digests and metrics were not signed where they were measured',
  'no audit chain: removed, reordered or edited entries cannot be detected',
  'no approval rules: only the signatures of the decisions present',
  'decisions are not bound to the change (v1)',
];

export async function verifyFile(target: string, opts: VerifyOptions): Promise<VerifyReport> {
  const bytes = target.startsWith('sha256:')
    ? await openArtifactStore({ location: process.env.SECMLOPS_ARTIFACTS, localDir: opts.artifactsDir }).get(target)
    : await readRegular(target, MAX_ATTESTATION_BYTES).catch((e: unknown) => {
        throw e instanceof RegularFileError ? new Error(`cannot verify ${e.message}`) : e;
      });
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new Error(`${target} is not JSON: expected a DSSE envelope or a pipeline status with an audit trail`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new Error(
      `${target} is not a JSON object: expected a DSSE envelope or a pipeline status with an audit trail`,
    );
  // Past the shape checks below, a field of the wrong type would surface as a JavaScript TypeError: say instead
  // that the document is malformed, and where the check was.
  try {
    return await verifyDoc(target, doc, opts);
  } catch (e) {
    if (e instanceof TypeError) throw new Error(`${target} is malformed: ${e.message}`);
    throw e;
  }
}

async function verifyDoc(target: string, doc: Record<string, unknown>, opts: VerifyOptions): Promise<VerifyReport> {
  if ('payloadType' in doc) {
    const trusted = opts.keyPath ? await loadPublicKey(opts.keyPath) : opts.policy?.policy.release?.publicKey;
    if (!trusted)
      throw new Error(
        'no trusted key: give --key PUB, or --policy F whose release.publicKey pins one (the envelope’s own key is never trusted)',
      );
    const statement = openEnvelope(doc, trusted);
    if (!Array.isArray(statement.subject) || typeof statement.predicate !== 'object' || statement.predicate === null)
      throw new Error(`${target}: the signed statement has no subject list or no predicate`);
    const subjects = statement.subject.map((s) => ({ name: s.name, sha256: s.digest.sha256 }));
    if (statement.predicateType === LEGACY_PREDICATE_TYPE) {
      const p = statement.predicate as { pipeline: string; audit?: AuditEntry[] };
      return legacy('attestation', p.pipeline, subjects, p.audit ?? [], opts);
    }
    if (statement.predicateType !== PREDICATE_TYPE)
      throw new Error(`unknown predicate type ${statement.predicateType}`);
    return attestationReport(statement.predicate as unknown as ReleasePredicate, subjects, opts);
  }
  if (Array.isArray(doc.audit) && typeof doc.workflowId === 'string') {
    if (!opts.policy)
      throw new Error(
        'an audit trail is checked against the channel keys and approval rules of a policy: give --policy F',
      );
    const status = doc as unknown as PipelineStatus;
    if (!status.audit.some((e) => typeof e?.prev === 'string'))
      return legacy('audit', status.workflowId, [], status.audit, opts);
    const problems = policyProblems(opts.policy, status.policyDigest);
    problems.push(
      ...checkTrail({
        pipelineId: status.workflowId,
        policy: opts.policy.policy,
        subject: status.subject,
        audit: status.audit,
        upTo: 'complete',
        state: status.state,
      }),
    );
    return report('audit', status.workflowId, [], status.audit, problems, []);
  }
  throw new Error(`${target} is neither a DSSE envelope nor a pipeline status with an audit trail`);
}

function attestationReport(p: ReleasePredicate, subjects: VerifyReport['subjects'], opts: VerifyOptions): VerifyReport {
  const problems = opts.policy ? policyProblems(opts.policy, p.policyDigest) : [];
  const checked = checkAttestation(p, subjects);
  problems.push(...checked.problems);
  return report('attestation', p.pipeline, subjects, p.dossier.audit, problems, checked.notChecked);
}

/** Documents from before the trust boundary: refused unless --allow-legacy, then only their decision signatures. */
function legacy(
  kind: VerifyReport['kind'],
  pipeline: string,
  subjects: VerifyReport['subjects'],
  audit: AuditEntry[],
  opts: VerifyOptions,
): VerifyReport {
  if (!opts.allowLegacy) {
    throw new Error(
      `this ${kind === 'audit' ? 'audit trail' : 'attestation'} predates signed evidence and the audit chain, so it cannot be fully checked; give --allow-legacy to check what it has (${LEGACY_GAPS.join('; ')})`,
    );
  }
  const policy = opts.policy?.policy;
  const decisions: VerifyReport['decisions'] = audit
    .filter((a) => a.kind === 'decision')
    .map((a) => {
      const row = { stage: a.stage, person: a.person ?? '?', decision: a.decision ?? '?', channel: a.channel ?? '?' };
      if (!policy) return { ...row, reason: 'not checked: give --policy to check decisions against the channel keys' };
      const key = own(policy.channels, a.channel)?.publicKey;
      if (!key) return { ...row, valid: false, reason: `the policy pins no key for channel ${a.channel}` };
      const signed = {
        workflowId: pipeline,
        stage: a.stage,
        person: a.person ?? '',
        channel: a.channel as Channel,
        decision: a.decision ?? 'approve',
        comment: a.comment ?? '',
        issuedAt: a.issuedAt ?? '',
        signature: a.signature ?? '',
      };
      return verifyDecision(signed, key)
        ? { ...row, valid: true }
        : { ...row, valid: false, reason: 'signature does not verify' };
    });
  const problems = decisions
    .filter((d) => d.valid === false)
    .map((d) => `the decision by ${d.person} on ${d.stage}: ${d.reason}`);
  if (kind === 'audit' && decisions.some((d) => d.valid === undefined)) problems.push('an audit trail needs --policy');
  return { kind, pipeline, subjects, decisions, problems, notChecked: LEGACY_GAPS, ok: problems.length === 0 };
}

function report(
  kind: VerifyReport['kind'],
  pipeline: string,
  subjects: VerifyReport['subjects'],
  audit: AuditEntry[],
  problems: string[],
  notChecked: string[],
): VerifyReport {
  const decisions = (Array.isArray(audit) ? audit : [])
    .filter((a) => a?.kind === 'decision')
    .map((a) => {
      const mine = problems.filter(
        (p) => p.includes(`the decision by ${String(a.person)}`) && p.startsWith(`stage ${a.stage}`),
      );
      return {
        stage: a.stage,
        person: a.person ?? '?',
        decision: a.decision ?? '?',
        channel: a.channel ?? '?',
        valid: mine.length === 0,
        ...(mine.length ? { reason: mine.join('; ') } : {}),
      };
    });
  return { kind, pipeline, subjects, decisions, problems, notChecked, ok: problems.length === 0 };
}

function policyProblems(loaded: LoadedPolicy, attested: string | undefined): string[] {
  if (attested === undefined)
    return ['the document names no policy digest, so the given policy cannot be matched to it'];
  return loaded.digest === attested
    ? []
    : [
        `the policy given has digest ${loaded.digest}, but the attested one has ${attested}: it is not the policy this ran under`,
      ];
}
