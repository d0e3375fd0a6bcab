// The federated training workflow's input, state and progress query, shared by the workflow, the CLI and tests.
import { defineQuery } from '@temporalio/workflow';
import type { RoundResult } from '../activities/federated-server.js';
import type { FederatedConfig } from '../policy/index.js';
import type { SignedFederationStart } from '../activities/federated-start.js';

export interface FederatedInput {
  /** The policy's path inside the workers' policy source: the server and every client read it there. */
  policy: string;
  /** The starter's signature over the workflow ID and the policy, checked by the server and every client. */
  start: SignedFederationStart;
  /** State carried across continue-as-new. */
  carried?: FederatedState;
}

export interface FederatedState {
  config: FederatedConfig;
  arch: string;
  /** The global parameters the next round starts from. */
  base: string;
  /** Rounds completed, each with the clients that counted. */
  rounds: RoundResult[];
  /** Clients that did not answer, per round. */
  missing: { round: number; client: string; why: string }[];
  runs: number;
}

export interface FederatedStatus {
  phase: 'starting' | 'training' | 'sharing' | 'masking' | 'unmasking' | 'aggregating' | 'done' | 'failed';
  round: number;
  rounds?: number;
  state?: FederatedState;
  error?: string;
}

export interface FederatedResult {
  modelRef: string;
  modelSha256: string;
  rounds: RoundResult[];
  missing: FederatedState['missing'];
}

export const federatedStatusQuery = defineQuery<FederatedStatus>('federatedStatus');
