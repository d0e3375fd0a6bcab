// The federation's policy as a worker's own policy source holds it: what the server side and every client believe,
// whatever the orchestration names. One reader, so both refuse the same things with the same words.
import { ApplicationFailure } from '@temporalio/activity';
import type { FederatedConfig, Policy, TrainConfig } from '../policy/index.js';
import { readPolicyFile } from './policy-source.js';

export function federatedPolicy(
  root: string,
  ref: string,
): { policy: Policy; train: TrainConfig; config: FederatedConfig } {
  let policy: Policy;
  try {
    policy = readPolicyFile(ref, { root }).policy;
  } catch (e) {
    throw ApplicationFailure.nonRetryable(`policy ${ref}: ${(e as Error).message}`, 'FederatedPolicy');
  }
  const train = policy.train;
  const config = train?.federated;
  if (!train || !config)
    throw ApplicationFailure.nonRetryable(`policy ${ref} has no train.federated block`, 'FederatedPolicy');
  return { policy, train, config };
}
