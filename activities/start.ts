// The first thing a pipeline does: ask a worker who started it and under which policy. The worker checks the start's
// proof against its own configuration (CLI start keys, or GitHub's OIDC issuer and its repository allow-list),
// confirms a GitHub subject through GitHub's API, reads the policy from the source it trusts, and signs all of it
// as start evidence. Whether a subject is a GitHub one follows from how the start was proven, never from a field.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import {
  START_MAX_AGE_MS,
  canonicalStart,
  checkIncidentDecision,
  evidenceProblem,
  retrainWorkflowId,
  type RetrainStart,
  keyIdOf,
  subjectDigest,
  verifySignature,
  type ClaimedSubject,
  type CliStart,
  type Evidence,
  type PipelineInput,
  type Policy,
  type StartAuthentication,
  type StartPayload,
  type Subject,
} from '../policy/index.js';
import type { TrustConfig } from '../worker/trust.js';
import type { EvidenceSigner } from './evidence.js';
import { readPolicyFile } from './policy-source.js';
import { PolicyError } from '../policy/index.js';

export interface ResolvedStart {
  subject: Subject;
  subjectDigest: string;
  policy: Policy;
  policyDigest: string;
  evidence: Evidence<'start'>;
}

/** How a GitHub start is confirmed; given by the worker so the OIDC and GitHub code stays in github/. */
export type GitHubStartResolver = (
  start: Extract<PipelineInput['start'], { kind: 'github-oidc' }>,
  pipelineId: string,
) => Promise<{
  subject: Subject;
  policy: StartPayload['policy'];
  digest: string;
  source: StartPayload['policySource'];
  auth: StartAuthentication;
}>;

const PIPELINE_WORKFLOW = 'secmlopsPipeline';

export function refuse(message: string): never {
  throw ApplicationFailure.nonRetryable(message, 'StartRefused');
}

export async function resolveStart(
  trust: TrustConfig,
  signer: () => Promise<EvidenceSigner>,
  github: GitHubStartResolver | undefined,
  input: PipelineInput,
): Promise<ResolvedStart> {
  const info = Context.current().info;
  const pipelineId = info.workflowExecution?.workflowId;
  if (!pipelineId) refuse('a start is resolved only for a pipeline workflow');
  if (info.workflowType !== PIPELINE_WORKFLOW)
    refuse(`starts are resolved for ${PIPELINE_WORKFLOW} only, not ${info.workflowType}`);
  const start = input?.start;
  let resolved: Awaited<ReturnType<GitHubStartResolver>>;
  if (start?.kind === 'cli') resolved = resolveCliStart(trust, start, pipelineId);
  else if (start?.kind === 'retrain')
    resolved = resolveRetrainStart(trust, (await signer()).publicKey, start, pipelineId);
  else if (start?.kind === 'github-oidc') {
    if (!github)
      refuse('this worker accepts no GitHub starts: set SECMLOPS_OIDC_REPOSITORIES and its GitHub credentials');
    resolved = await github(start, pipelineId);
  } else
    refuse(
      `unknown start kind ${JSON.stringify((start as { kind?: unknown } | undefined)?.kind)}; ` +
        'expected cli, github-oidc or retrain',
    );
  const digest = subjectDigest(resolved.subject);
  const evidence = (await signer()).sign(
    'start',
    { pipelineId, subjectDigest: digest, policyDigest: resolved.digest },
    {
      subject: resolved.subject,
      policy: resolved.policy,
      policyRef:
        start.kind === 'cli'
          ? start.request.policyRef
          : start.kind === 'retrain'
            ? start.original.body.payload.policyRef
            : start.policyRef,
      policySource: resolved.source,
      authenticatedBy: resolved.auth,
    },
  );
  return {
    subject: resolved.subject,
    subjectDigest: digest,
    policy: resolved.policy,
    policyDigest: resolved.digest,
    evidence,
  };
}

/**
 * A retrain start: the original start evidence must verify with this worker's evidence key, the pipeline must be
 * the one the incident may start, and the decision must be a retrain by the monitor stage's role under the policy
 * read again now from the local source (GitHub-sourced policies are retrained by a new run from the PR).
 */
function resolveRetrainStart(
  trust: TrustConfig,
  evidenceKey: string,
  start: RetrainStart,
  pipelineId: string,
): Awaited<ReturnType<GitHubStartResolver>> {
  const why = evidenceProblem(start.original, evidenceKey, 'start');
  if (why) refuse(`the retrain's original start does not check: ${why}`);
  const b = start.original.body;
  const d = start.decision;
  const m = /^incident-(\d+)$/.exec(String(d?.stage));
  if (!m) refuse('the retrain decision is not a decision on a monitor incident');
  const incident = Number(m[1]);
  if (pipelineId !== retrainWorkflowId(b.pipelineId, incident))
    refuse(
      `incident ${incident} of ${b.pipelineId} may start ${retrainWorkflowId(b.pipelineId, incident)}, ` +
        `not ${pipelineId}`,
    );
  if (b.payload.policySource.kind !== 'local')
    refuse('the original pipeline read its policy through GitHub: retrain with a new run from the pull request');
  let loaded;
  try {
    loaded = readPolicyFile(b.payload.policyRef, { root: trust.policyRoot, shownAs: b.payload.policyRef });
  } catch (e) {
    if (e instanceof PolicyError) refuse(`policy: ${e.message}`);
    throw e;
  }
  const model = /^model:sha256:([0-9a-f]{64})$/.exec(String(d.subjectDigest))?.[1];
  if (!model) refuse('the retrain decision is not bound to a served model');
  const problem = checkIncidentDecision(
    {
      policy: loaded.policy,
      workflowId: `${b.pipelineId}/monitor`,
      incident,
      modelSha256: model,
      votes: [],
      now: Date.now(),
      author: b.payload.subject.author,
    },
    d,
  );
  if (problem) refuse(`the retrain decision does not check: ${problem}`);
  if (d.decision !== 'approve' || d.resolution?.action !== 'retrain') refuse('the decision does not choose to retrain');
  return {
    subject: b.payload.subject,
    policy: loaded.policy,
    digest: loaded.digest,
    source: { kind: 'local', root: trust.policyRoot },
    auth: {
      channel: 'retrain',
      monitor: `${b.pipelineId}/monitor`,
      incident,
      decidedBy: d.person,
      decisionChannel: d.channel,
    },
  };
}

function resolveCliStart(
  trust: TrustConfig,
  start: CliStart,
  pipelineId: string,
): Awaited<ReturnType<GitHubStartResolver>> {
  const r = start.request;
  if (!r || typeof r !== 'object' || r.v !== 1) refuse('the start request is not a version 1 request');
  if (r.workflowId !== pipelineId)
    refuse(`the start request was signed for pipeline ${String(r.workflowId)}, not ${pipelineId}`);
  if (trust.startKeys.length === 0)
    refuse('this worker pins no CLI start keys (SECMLOPS_START_KEYS), so it accepts no CLI starts');
  let bytes: Uint8Array;
  try {
    bytes = canonicalStart(r);
  } catch (e) {
    refuse(`the start request is malformed: ${(e as Error).message}`);
  }
  const key = trust.startKeys.find((k) => verifySignature(start.signature, bytes, k));
  if (!key) refuse('the start request’s signature does not verify against any CLI start key this worker pins');
  const issued = Date.parse(r.issuedAt);
  const now = Date.now();
  if (Number.isNaN(issued)) refuse(`the start request's issuedAt "${String(r.issuedAt)}" is not a date`);
  if (issued > now + 5 * 60_000) refuse(`the start request's issuedAt ${r.issuedAt} is in the future`);
  if (issued < now - START_MAX_AGE_MS)
    refuse(
      `the start request was issued at ${r.issuedAt}, more than ${START_MAX_AGE_MS / 60_000} minutes ago; sign a new one`,
    );
  const subject = checkClaimedSubject(r.subject);
  if (typeof r.policyRef !== 'string' || r.policyRef.length === 0 || r.policyRef.length > 1024)
    refuse('the start request names no policy reference');
  let loaded;
  try {
    loaded = readPolicyFile(r.policyRef, { root: trust.policyRoot, shownAs: r.policyRef });
  } catch (e) {
    if (e instanceof PolicyError) refuse(`policy: ${e.message}`);
    throw e;
  }
  return {
    subject: { ...subject, source: 'cli' },
    policy: loaded.policy,
    digest: loaded.digest,
    source: { kind: 'local', root: trust.policyRoot },
    auth: { channel: 'cli', keyId: keyIdOf(key) },
  };
}

/** The starter's description of the change, bounded and well-formed; unknown fields are dropped. */
export function checkClaimedSubject(s: ClaimedSubject): ClaimedSubject {
  if (!s || typeof s !== 'object') refuse('the start names no subject');
  const text = (v: unknown, what: string, max: number) => {
    if (typeof v !== 'string' || v.length === 0 || v.length > max)
      refuse(`the subject's ${what} must be text of 1 to ${max} characters`);
    return v;
  };
  const subject: ClaimedSubject = {
    repo: text(s.repo, 'repo', 200),
    headSha: text(s.headSha, 'headSha', 100),
    author: text(s.author, 'author', 100),
  };
  if (s.pr !== undefined) {
    if (typeof s.pr !== 'number' || !Number.isInteger(s.pr) || s.pr <= 0)
      refuse('the subject’s pr must be a positive whole number');
    subject.pr = s.pr;
  }
  if (s.title !== undefined) subject.title = text(s.title, 'title', 500);
  return subject;
}
