// Starting and following a federated training run: the start is signed with a CLI start key the workers pin.
import type { Client, WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import type { KeyObject } from 'node:crypto';
import { signFederationStart } from '../activities/federated-start.js';
import { federatedTraining } from '../workflows/federated.js';
import { federatedStatusQuery, type FederatedStatus } from '../workflows/federated-messages.js';
import { TASK_QUEUE } from '../workflows/messages.js';
import type { RoundResult } from '../activities/federated-server.js';

export async function startFederation(
  client: Client,
  opts: { workflowId: string; policyRef: string; key: KeyObject },
): Promise<WorkflowHandleWithFirstExecutionRunId<typeof federatedTraining>> {
  const start = signFederationStart(opts.key, opts.workflowId, opts.policyRef);
  return client.workflow.start(federatedTraining, {
    taskQueue: TASK_QUEUE,
    workflowId: opts.workflowId,
    args: [{ policy: opts.policyRef, start }],
  });
}

export async function federationStatus(handle: WorkflowHandle<typeof federatedTraining>): Promise<FederatedStatus> {
  return handle.query(federatedStatusQuery);
}

/** One line per completed round: who counted, with how many images, and the global model's test accuracy. */
export function renderRounds(rounds: RoundResult[], total?: number): string[] {
  return rounds.map((r) => {
    const who = r.clients.map((c) => `${c.id} (${c.samples})`).join(', ');
    const acc = r.testAccuracy === undefined ? '' : `, test accuracy ${(100 * r.testAccuracy).toFixed(2)}%`;
    const dp = r.privacy ? `, DP-FedAvg ε ${r.privacy.epsilon.toFixed(2)} at δ ${r.privacy.delta} so far` : '';
    return `round ${r.round}/${total ?? '?'}: ${who}${acc}${dp}`;
  });
}
