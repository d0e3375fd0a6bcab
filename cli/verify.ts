// `secmlops verify`: checks a release attestation against a trusted key, and every recorded decision's signature
// against the channel keys the policy pins (non-repudiation).
import { readFile } from 'node:fs/promises';
import { openEnvelope } from '../activities/attestation.js';
import { loadPublicKey } from '../activities/keys.js';
import { ArtifactStore } from '../activities/store.js';
import { verifyDecision, type Channel, type Policy } from '../policy/index.js';
import type { AuditEntry } from '../workflows/messages.js';

export interface VerifyReport {
  kind: 'attestation' | 'audit';
  pipeline: string;
  subjects: { name: string; sha256: string }[];
  /** valid is undefined when no policy was given to check decisions against. */
  decisions: { stage: string; person: string; decision: string; channel: string; valid?: boolean; reason?: string }[];
  ok: boolean;
}

export interface VerifyOptions {
  keyPath?: string;
  policy?: Policy;
  artifactsDir: string;
}

export async function verifyFile(target: string, opts: VerifyOptions): Promise<VerifyReport> {
  const bytes = target.startsWith('sha256:') ? await new ArtifactStore(opts.artifactsDir).get(target) : await readFile(target).catch((e: NodeJS.ErrnoException) => {
    throw new Error(`cannot read ${target} (${e.code ?? e.message})`);
  });
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new Error(`${target} is not JSON: expected a DSSE envelope or a pipeline status with an audit trail`);
  }
  if ('payloadType' in doc) {
    const trusted = opts.keyPath ? await loadPublicKey(opts.keyPath) : opts.policy?.release?.publicKey;
    if (!trusted) throw new Error('no trusted key: give --key PUB, or --policy F whose release.publicKey pins one (the envelope’s own key is never trusted)');
    const statement = openEnvelope(doc, trusted);
    const p = statement.predicate as { pipeline: string; audit?: AuditEntry[] };
    const decisions = checkDecisions(p.pipeline, p.audit ?? [], opts.policy);
    return {
      kind: 'attestation',
      pipeline: p.pipeline,
      subjects: statement.subject.map((s) => ({ name: s.name, sha256: s.digest.sha256 })),
      decisions,
      ok: decisions.every((d) => d.valid !== false),
    };
  }
  if (Array.isArray(doc.audit) && typeof doc.workflowId === 'string') {
    if (!opts.policy) throw new Error('an audit trail is checked against the channel keys a policy pins: give --policy F');
    const decisions = checkDecisions(doc.workflowId, doc.audit as AuditEntry[], opts.policy);
    return { kind: 'audit', pipeline: doc.workflowId, subjects: [], decisions, ok: decisions.every((d) => d.valid) };
  }
  throw new Error(`${target} is neither a DSSE envelope nor a pipeline status with an audit trail`);
}

function checkDecisions(pipeline: string, audit: AuditEntry[], policy: Policy | undefined): VerifyReport['decisions'] {
  return audit
    .filter((a) => a.kind === 'decision')
    .map((a) => {
      const row = { stage: a.stage, person: a.person ?? '?', decision: a.decision ?? '?', channel: a.channel ?? '?' };
      if (!policy) return { ...row, reason: 'not checked: give --policy to check decisions against the channel keys' };
      const key = policy.channels[a.channel as Channel]?.publicKey;
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
      return verifyDecision(signed, key) ? { ...row, valid: true } : { ...row, valid: false, reason: 'signature does not verify' };
    });
}
