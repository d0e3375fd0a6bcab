import type { Approval, StageName } from './types.js';

/** Default roles from DESIGN.md; a policy may rename them or add its own. */
export const DEFAULT_ROLES: Record<string, string> = {
  R1: 'data steward',
  R2: 'ML engineer',
  R3: 'security engineer',
  R4: 'MLOps/platform engineer',
  R5: 'compliance officer',
  R6: 'privacy officer',
  R7: 'model owner',
  R8: 'incident responder',
};

/** The lifecycle order; a policy lists a subset of the built stages in this order. */
export const LIFECYCLE = ['plan', 'data', 'train', 'evaluate', 'release', 'monitor'] as const;

/** Who approves a stage when the policy does not say. */
export const DEFAULT_APPROVALS: Record<StageName, Approval> = {
  plan: { roles: ['R3'], quorum: 1, everyRole: true },
  data: { roles: ['R1'], quorum: 1, everyRole: true },
  train: { roles: ['R2'], quorum: 1, everyRole: true },
  evaluate: { roles: ['R3'], quorum: 1, everyRole: true },
  release: { roles: ['R7', 'R5'], quorum: 2, everyRole: true },
  /** The monitor stage's approval is an incident's resolution (rollback or retrain). */
  monitor: { roles: ['R8'], quorum: 1, everyRole: true },
};
