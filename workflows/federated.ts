// Federated averaging (McMahan et al. 2017) as a durable workflow: each round every client trains on its own task
// queue, the round goes on with the clients that answered if they reach the quorum, and the gpu worker averages
// their signed updates. With secure aggregation a second phase has the clients that trained mask their updates for
// each other, once (a client that drops after training is left out; one that drops after the masks were agreed
// fails the round, since the masked sum cannot be completed without it). The workflow continues as
// new every roundsPerRun rounds; a crash of any worker resumes from the last completed activity.
import {
  ApplicationFailure,
  continueAsNew,
  proxyActivities,
  setHandler,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { ClientActivities } from '../activities/index.js';
import type { Activities } from '../activities/index.js';
import type { SignedStatement } from '../activities/federated-statement.js';
import { GPU_TASK_QUEUE } from './messages.js';
import {
  federatedStatusQuery,
  type FederatedInput,
  type FederatedResult,
  type FederatedState,
  type FederatedStatus,
} from './federated-messages.js';

const server = proxyActivities<Pick<Activities, 'beginFederation' | 'aggregateRound'>>({
  taskQueue: GPU_TASK_QUEUE,
  startToCloseTimeout: '30m',
  retry: { maximumAttempts: 3 },
});

/** One client's activities: a client that stays silent past the round's timeout is left out of that round. */
function client(id: string, roundTimeoutMs: number) {
  const options: ActivityOptions = {
    taskQueue: id,
    scheduleToCloseTimeout: roundTimeoutMs,
    // A crashed client worker's task goes back to its queue after a minute of silence.
    heartbeatTimeout: '60s',
    retry: {
      maximumAttempts: 3,
      nonRetryableErrorTypes: ['FederatedPolicy', 'FederatedStatement', 'FederatedState', 'FederationStartRefused'],
    },
  };
  return proxyActivities<ClientActivities>(options);
}

export async function federatedTraining(input: FederatedInput): Promise<FederatedResult> {
  const status: FederatedStatus = { phase: 'starting', round: 0 };
  setHandler(federatedStatusQuery, () => status);
  let state: FederatedState;
  if (input.carried) state = input.carried;
  else {
    const plan = await server.beginFederation({ policy: input.policy, start: input.start });
    state = { config: plan.config, arch: plan.arch, base: plan.base, rounds: [], missing: [], runs: 0 };
  }
  status.state = state;
  const c = state.config;
  status.rounds = c.rounds;
  const startedAt = state.rounds.length;
  try {
    while (state.rounds.length < c.rounds) {
      if (state.rounds.length - startedAt >= c.roundsPerRun) {
        await continueAsNew<typeof federatedTraining>({ ...input, carried: { ...state, runs: state.runs + 1 } });
      }
      const round = state.rounds.length + 1;
      status.round = round;
      status.phase = 'training';
      const at = { policy: input.policy, start: input.start, round, base: state.base };
      const answered = await gather(
        state,
        round,
        c.clients.map((k) => k.id),
        (id) => client(id, c.roundTimeoutMs).clientTrain(at),
      );
      need(answered.length, c.quorum, round, 'trained');
      let updates = answered;
      let trained: SignedStatement[] | undefined;
      if (c.secureAggregation) {
        status.phase = 'masking';
        trained = answered;
        updates = await gather(
          state,
          round,
          answered.map((t) => t.statement.client),
          (id) => client(id, c.roundTimeoutMs).clientMask({ ...at, trained: answered }),
        );
        // Each client masks once per round (twice, for two sets, would give its update away), and the sum needs
        // every participant's mask: a drop now fails the round. Bonawitz's secret-shared seeds are not built.
        if (updates.length < answered.length)
          throw ApplicationFailure.nonRetryable(
            `round ${round}: ${answered.length - updates.length} client(s) dropped after the masks were agreed; ` +
              'the masked sum cannot be completed without them',
            'FederatedDropped',
          );
      }
      status.phase = 'aggregating';
      const result = await server.aggregateRound({ ...at, updates, ...(trained ? { trained } : {}) });
      state.rounds.push(result);
      state.base = result.global;
    }
  } catch (e) {
    status.phase = 'failed';
    status.error = (e as Error).message;
    throw e;
  }
  status.phase = 'done';
  const last = state.rounds[state.rounds.length - 1];
  return { modelRef: last.modelRef, modelSha256: last.modelSha256, rounds: state.rounds, missing: state.missing };
}

/** Runs one activity per client at once and keeps what answered; the others are recorded as missing. */
async function gather(
  state: FederatedState,
  round: number,
  ids: string[],
  run: (id: string) => Promise<SignedStatement>,
): Promise<SignedStatement[]> {
  const settled = await Promise.allSettled(ids.map(run));
  const out: SignedStatement[] = [];
  settled.forEach((s, i) => {
    if (s.status === 'fulfilled') out.push(s.value);
    else state.missing.push({ round, client: ids[i], why: causeOf(s.reason) });
  });
  return out;
}

function need(have: number, quorum: number, round: number, what: string): void {
  if (have < quorum)
    throw ApplicationFailure.nonRetryable(
      `round ${round}: ${have} clients ${what}, fewer than the quorum of ${quorum} (${workflowInfo().workflowId})`,
      'FederatedQuorum',
    );
}

function causeOf(e: unknown): string {
  let err = e as { message?: string; cause?: unknown } | undefined;
  while (err?.cause) err = err.cause;
  return err?.message ?? String(e);
}
