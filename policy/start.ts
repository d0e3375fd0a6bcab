// How a pipeline is started: never with a policy body, always with a reference the worker resolves from the policy
// source it is configured to trust, and with proof of who asked. The CLI signs a start request with a start key
// the workers pin in their own configuration; the GitHub start action presents a GitHub Actions OIDC ID token.
import { canonicalJson, utf8 } from './canonical.js';
import type { SignedDecision } from './decision.js';
import type { Evidence } from './evidence.js';

/** The change as the starter describes it; the worker confirms what it can (for GitHub, through GitHub's API). */
export interface ClaimedSubject {
  repo: string;
  pr?: number;
  headSha: string;
  author: string;
  title?: string;
}

export interface StartRequest {
  v: 1;
  /** The pipeline's workflow ID: a signed request starts that pipeline and no other. */
  workflowId: string;
  subject: ClaimedSubject;
  /** Path of the policy file inside the worker's policy source. */
  policyRef: string;
  /** ISO 8601; a request older than START_MAX_AGE_MS is refused. */
  issuedAt: string;
}

export interface CliStart {
  kind: 'cli';
  request: StartRequest;
  /** Base64 Ed25519 signature over canonicalStart(request) by a start key the workers pin. */
  signature: string;
}

export interface OidcStart {
  kind: 'github-oidc';
  /** A GitHub Actions OIDC ID token requested with the audience startAudience(workflowId). */
  token: string;
  workflowId: string;
  subject: ClaimedSubject;
  policyRef: string;
}

/**
 * A retrain an incident responder chose: proven by the original pipeline's start evidence (signed by the workers'
 * evidence key) and the responder's channel-signed decision on that pipeline's monitor incident.
 */
export interface RetrainStart {
  kind: 'retrain';
  original: Evidence<'start'>;
  decision: SignedDecision;
}

export type PipelineStart = CliStart | OidcStart | RetrainStart;

/** The one pipeline an incident's retrain decision may start. */
export function retrainWorkflowId(pipelineId: string, incident: number): string {
  return `${pipelineId}-retrain-${incident}`;
}

/** The pipeline's one argument. */
export interface PipelineInput {
  start: PipelineStart;
  /** Where the run can be seen, for links (display only). */
  url?: string;
}

export const START_MAX_AGE_MS = 10 * 60_000;

export function canonicalStart(r: StartRequest): Uint8Array {
  return utf8(`secmlops-start-v1\n${canonicalJson(r)}`);
}

/** The audience the start action requests its OIDC token for: it names the one pipeline the token may start. */
export function startAudience(workflowId: string): string {
  return `secmlops:${workflowId}`;
}
