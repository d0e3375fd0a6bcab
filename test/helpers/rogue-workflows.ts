// Workflows a rogue worker runs on its own task queue: anyone who reaches the namespace can poll a queue of their
// choosing and schedule any activity the real workers register, with any input. The tests use them to check that
// the activities holding the workers' keys believe only what is signed.
import { proxyActivities } from '@temporalio/workflow';
import type { Activities, ClientActivities } from '../../activities/index.js';
import { GPU_TASK_QUEUE } from '../../workflows/messages.js';

const real = proxyActivities<Activities>({
  taskQueue: 'secmlops',
  startToCloseTimeout: '30s',
  retry: { maximumAttempts: 1 },
});

/** What the activity answered: 'ok' or the innermost error message. */
async function outcome(call: () => Promise<unknown>): Promise<string> {
  try {
    await call();
    return 'ok';
  } catch (e) {
    let err: unknown = e;
    while (err instanceof Error && err.cause instanceof Error) err = err.cause;
    return err instanceof Error ? err.message : String(err);
  }
}

export async function rogueCommentDecision(req: Parameters<Activities['readGitHubDecision']>[0]): Promise<string> {
  return outcome(() => real.readGitHubDecision(req));
}

export async function rogueReport(req: Parameters<Activities['reportToGitHub']>[0]): Promise<string> {
  return outcome(() => real.reportToGitHub(req));
}

/**
 * A federation's workflow code replaced by an attacker's (anyone polling its task queue can do this): round 1 is
 * trained, shared and masked by all three clients; then client-1 is asked to mask again for a smaller set (the
 * difference of the two sums would be its update); client-1 reveals for all three masked inputs and is then asked to
 * reveal again, at the same moment, as if client-3's had not arrived (its shares of client-3's mask key and self-mask
 * seed together would unmask client-3's input); the server is asked to average round 1 twice from different
 * statements, and to aggregate a round 2 that skips round 1's result.
 */
export async function rogueFederation(input: {
  policy: string;
  start: Parameters<Activities['beginFederation']>[0]['start'];
}): Promise<string[]> {
  const gpu = proxyActivities<Activities>({
    taskQueue: 'gpu',
    startToCloseTimeout: '2m',
    retry: { maximumAttempts: 1 },
  });
  const client = (id: string) =>
    proxyActivities<ClientActivities>({ taskQueue: id, startToCloseTimeout: '2m', retry: { maximumAttempts: 1 } });
  const plan = await gpu.beginFederation(input);
  const at = { policy: input.policy, start: input.start, round: 1, base: plan.base };
  const ids = ['client-1', 'client-2', 'client-3'];
  const trained = await Promise.all(ids.map((id) => client(id).clientTrain(at)));
  const shared = await Promise.all(ids.map((id) => client(id).clientShare({ ...at, trained })));
  const masked = await Promise.all(ids.map((id) => client(id).clientMask({ ...at, trained, shared })));
  const out: string[] = [];
  const all = { ...at, trained, shared };
  out.push(await outcome(() => client('client-1').clientMask({ ...all, shared: shared.slice(0, 2) })));
  out.push(await outcome(() => client('client-1').clientMask(all)));
  // Both reveals at once: checking the state first would let both pass.
  const both = await Promise.all([
    outcome(() => client('client-1').clientUnmask({ ...all, masked })),
    outcome(() => client('client-1').clientUnmask({ ...all, masked: masked.slice(0, 2) })),
  ]);
  out.push(...both.sort());
  const revealed = await Promise.all(['client-2', 'client-3'].map((id) => client(id).clientUnmask({ ...all, masked })));
  const round1 = { ...all, updates: masked, revealed };
  out.push(await outcome(() => gpu.aggregateRound(round1)));
  out.push(await outcome(() => gpu.aggregateRound({ ...round1, revealed: [...revealed].reverse() })));
  out.push(await outcome(() => gpu.aggregateRound({ ...at, round: 2, updates: masked, trained })));
  out.push(await outcome(() => client('client-2').clientTrain({ ...at, base: `sha256:${'e'.repeat(64)}` })));
  out.push(await outcome(() => client('client-2').clientTrain({ ...at, round: 99 })));
  return out;
}

const gpu = proxyActivities<Activities>({
  taskQueue: GPU_TASK_QUEUE,
  startToCloseTimeout: '2m',
  retry: { maximumAttempts: 1 },
});

type ShardRequest = Parameters<Activities['evaluateShard']>[0];
type Part = Awaited<ReturnType<Activities['evaluateShard']>>;

/**
 * Sharded evaluation driven by an attacker's workflow code: parts it had signed under another evaluate block, a
 * part given twice, and (with `foreign`) parts another workflow obtained, handed to the merge.
 */
export async function rogueShards(req: Omit<ShardRequest, 'shard'>, foreign?: Part[]): Promise<(string | Part[])[]> {
  const count = req.config.shards as number;
  const parts = await Promise.all(
    Array.from({ length: count }, (_v, index) => gpu.evaluateShard({ ...req, shard: { index, count } })),
  );
  const merge = (parts: Part[], config = req.config) => outcome(() => gpu.mergeEvaluation({ ...req, config, parts }));
  const weaker = { ...req.config, attacks: req.config.attacks.map((a) => ({ ...a, eps: 0.001 })) };
  const cheap = await gpu.evaluateShard({ ...req, config: weaker, shard: { index: 1, count } });
  return [
    await merge([parts[0], cheap]),
    await merge([parts[0], parts[0]]),
    await merge(parts.slice(0, 1)),
    ...(foreign ? [await merge(foreign)] : []),
    await merge(parts),
    parts,
  ];
}
