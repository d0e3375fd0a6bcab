// train.federated: the clients and their pinned keys, the rounds, the quorum, how the split is dealt, and whether
// updates are masked. Local training reuses the train block (arch, defense, batch, lr, optimizer, seed).
import type { ParseOptions } from './parse.js';
import { readKey } from './parse-keys.js';
import { Reader, join } from './reader.js';
import type { FederatedConfig, TrainConfig } from './types.js';

export const CLIENT_ID = /^[a-z][a-z0-9-]{0,39}$/;
/** Queues the pipeline's own workers poll: a client named like one would receive their tasks. */
const RESERVED = new Set(['cpu', 'gpu', 'secmlops', 'secmlops-gpu']);

export function readFederated(
  r: Reader,
  v: unknown,
  train: Pick<TrainConfig, 'defense' | 'earlyStop' | 'distill'>,
  opts: ParseOptions,
): FederatedConfig {
  const p = 'train.federated';
  const m = r.mapping(v, p, {
    required: ['clients', 'rounds'],
    optional: ['localEpochs', 'quorum', 'partition', 'secureAggregation', 'roundTimeout', 'roundsPerRun', 'dp'],
  });
  const list = r.list(m.clients, join(p, 'clients'), { nonEmpty: true });
  const clients = list.map((raw, i) => {
    const at = join(join(p, 'clients'), i);
    const c = r.mapping(raw, at, { required: ['id'], optional: ['publicKey', 'publicKeyFile'] });
    const id = r.string(c.id, join(at, 'id'), CLIENT_ID, 'a task queue name: lowercase letters, digits and -');
    if (RESERVED.has(id)) r.fail(join(at, 'id'), `"${id}" is a queue of the pipeline's own workers`);
    const publicKey = readKey(r, c, at, opts);
    if (!publicKey) r.fail(at, 'each client needs its publicKey or publicKeyFile: its updates are signed');
    return { id, publicKey };
  });
  if (clients.length < 2) r.fail(join(p, 'clients'), `a federation needs at least 2 clients, got ${clients.length}`);
  const ids = new Set<string>();
  const keys = new Set<string>();
  clients.forEach((c, i) => {
    if (ids.has(c.id)) r.fail(join(join(join(p, 'clients'), i), 'id'), `client "${c.id}" is listed twice`);
    if (keys.has(c.publicKey))
      r.fail(join(join(p, 'clients'), i), 'two clients share one key: each client signs with its own');
    ids.add(c.id);
    keys.add(c.publicKey);
  });
  const k = clients.length;
  const quorum = m.quorum === undefined ? k : r.integer(m.quorum, join(p, 'quorum'), 1);
  if (quorum > k) r.fail(join(p, 'quorum'), `a quorum of ${quorum} is more than the ${k} clients listed`);
  const secureAggregation =
    m.secureAggregation === undefined ? false : r.boolean(m.secureAggregation, join(p, 'secureAggregation'));
  if (secureAggregation && quorum < 2)
    r.fail(join(p, 'quorum'), 'with secure aggregation a round needs at least 2 clients, or one update is seen alone');
  let partition: FederatedConfig['partition'] = { kind: 'iid' };
  if (m.partition !== undefined) {
    const d = r.mapping(m.partition, join(p, 'partition'), { required: ['kind'], optional: ['alpha'] });
    const kind = r.oneOf(d.kind, join(p, 'partition.kind'), ['iid', 'dirichlet'] as const);
    if (kind === 'dirichlet') {
      const alpha = r.number(d.alpha, join(p, 'partition.alpha'), 0, 1e6);
      if (!(alpha > 0)) r.fail(join(p, 'partition.alpha'), `expected a Dirichlet α above 0, got ${alpha}`);
      partition = { kind, alpha };
    } else if (d.alpha !== undefined) r.fail(join(p, 'partition.alpha'), 'alpha applies to dirichlet only');
  }
  const kind = train.defense.kind;
  if (kind === 'dp-sgd')
    r.fail(p, 'federated training with dp-sgd is not built; train.federated.dp gives client-level privacy (DP-FedAvg)');
  if (kind === 'trades') r.fail(p, 'federated training with trades is not built yet; use none, fgsm-rs or pgd');
  if (train.earlyStop) r.fail(p, 'early stopping is not built for federated training: set train.earlyStop false');
  if (train.distill) r.fail(p, 'distillation is not built for federated training');
  const roundTimeoutMs =
    m.roundTimeout === undefined
      ? 600_000
      : r.duration(
          m.roundTimeout,
          join(p, 'roundTimeout'),
          'expected a duration of at least 10s such as "10m"',
          10_000,
        );
  return {
    ...(m.dp === undefined ? {} : { dp: readDp(r, m.dp, join(p, 'dp')) }),
    clients,
    rounds: r.integer(m.rounds, join(p, 'rounds'), 1, 1000),
    localEpochs: m.localEpochs === undefined ? 1 : r.integer(m.localEpochs, join(p, 'localEpochs'), 1, 100),
    quorum,
    partition,
    secureAggregation,
    roundTimeoutMs,
    roundsPerRun: m.roundsPerRun === undefined ? 10 : r.integer(m.roundsPerRun, join(p, 'roundsPerRun'), 1, 1000),
  };
}

/** DP-FedAvg: each change clipped to L2 norm `clip`, Gaussian noise σ·clip on the sum, δ to report ε at. */
function readDp(r: Reader, v: unknown, p: string): NonNullable<FederatedConfig['dp']> {
  const d = r.mapping(v, p, { required: ['clip', 'noiseMultiplier'], optional: ['delta'] });
  // Secure aggregation's fixed point holds values within ±1024: a clipped change stays far inside it.
  const clip = r.number(d.clip, join(p, 'clip'), 0, 100);
  if (!(clip > 0)) r.fail(join(p, 'clip'), `expected a clipping norm above 0, got ${clip}`);
  const noiseMultiplier = r.number(d.noiseMultiplier, join(p, 'noiseMultiplier'), 0, 1000);
  if (!(noiseMultiplier > 0))
    r.fail(join(p, 'noiseMultiplier'), `expected a noise multiplier above 0, got ${noiseMultiplier}`);
  const delta = d.delta === undefined ? 1e-5 : r.number(d.delta, join(p, 'delta'), 0, 1);
  if (!(delta > 0 && delta < 1)) r.fail(join(p, 'delta'), `expected δ in (0, 1), got ${delta}`);
  return { clip, noiseMultiplier, delta };
}
