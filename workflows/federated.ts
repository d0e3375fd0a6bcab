// Federated averaging (McMahan et al. 2017) as a durable workflow: each round every client trains on its own task
// queue, the round goes on with the clients that answered if they reach the quorum, and the gpu worker averages
// their signed updates. With secure aggregation three more phases follow training (Bonawitz et al. 2017): the
// clients deal sealed shares of their round secrets, mask their updates for those that shared, and the survivors
// reveal the shares that let the server remove the masks — so a client that drops after masking no longer fails the
// round. The workflow continues as new every roundsPerRun rounds; a crash of any worker resumes from the last
// completed activity.
import {
  ApplicationFailure,
  continueAsNew,
  proxyActivities,
  setHandler,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { ClientActivities, GpuActivities } from '../activities/index.js';
import type { SignedStatement } from '../activities/federated-statement.js';
import { shareThreshold } from '../policy/federated-threshold.js';
import { GPU_TASK_QUEUE } from './messages.js';
import {
  federatedStatusQuery,
  type FederatedInput,
  type FederatedResult,
  type FederatedState,
  type FederatedStatus,
} from './federated-messages.js';

const server = proxyActivities<GpuActivities>({
  taskQueue: GPU_TASK_QUEUE,
  startToCloseTimeout: '30m',
  retry: { maximumAttempts: 3 },
});

type Run = (client: ClientActivities) => Promise<SignedStatement>;

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
      let phases: { trained?: SignedStatement[]; shared?: SignedStatement[]; revealed?: SignedStatement[] } = {};
      let updates = answered;
      if (c.secureAggregation) {
        // Shares go to every client that trained; finishing after a drop needs a majority of them to reveal.
        const t = shareThreshold(answered.length);
        const needed = Math.max(c.quorum, t);
        const trained = answered;
        const phase = (name: FederatedStatus['phase'], from: SignedStatement[], run: Run) => {
          status.phase = name;
          const ids = from.map((s) => s.statement.client);
          return gather(state, round, ids, (id) => run(client(id, c.roundTimeoutMs)));
        };
        const shared = await phase('sharing', trained, (a) => a.clientShare({ ...at, trained }));
        need(shared.length, needed, round, 'shared their keys');
        const masked = await phase('masking', shared, (a) => a.clientMask({ ...at, trained, shared }));
        need(masked.length, needed, round, 'masked their updates');
        const revealed = await phase('unmasking', masked, (a) => a.clientUnmask({ ...at, trained, shared, masked }));
        need(revealed.length, t, round, 'revealed their shares');
        updates = masked;
        phases = { trained, shared, revealed };
      }
      status.phase = 'aggregating';
      const result = await server.aggregateRound({ ...at, updates, ...phases });
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
