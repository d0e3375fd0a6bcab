// `secmlops federated`: starts FedAvg under a policy's train.federated block and follows it round by round.
import type { Client } from '@temporalio/client';
import { createHash } from 'node:crypto';
import { loadPrivateKey } from '../activities/keys.js';
import { federationStatus, renderRounds, startFederation } from '../client/federation.js';
import { loadPolicy } from './load-policy.js';
import { UsageError } from './usage-error.js';
import { PolicyError } from '../policy/index.js';

export interface FederatedOptions {
  policy: string;
  key: string;
  id?: string;
  wait?: boolean;
}

export async function federatedCommand(connect: () => Promise<Client>, o: FederatedOptions): Promise<void> {
  // A policy that cannot run is a usage error here (exit 2), named by its path, before anything connects.
  const policy = await loadPolicy(o.policy).catch((e: unknown) => {
    throw e instanceof PolicyError ? new UsageError(e.message) : e;
  });
  const f = policy.train?.federated;
  if (!f) throw new UsageError(`${policy.file}: the policy has no train.federated block`);
  const key = await loadPrivateKey(o.key);
  const id =
    o.id ?? `federated-${policy.name}-${createHash('sha256').update(`${Date.now()}`).digest('hex').slice(0, 8)}`;
  const client = await connect();
  const handle = await startFederation(client, { workflowId: id, policyRef: o.policy, key });
  console.log(
    `Federation ${id} started: ${f.rounds} rounds of ${f.localEpochs} local epoch(s) on ${f.clients.length} clients ` +
      `(${f.clients.map((c) => c.id).join(', ')}), quorum ${f.quorum}` +
      `${f.secureAggregation ? ', secure aggregation' : ''}. Each client runs \`secmlops worker --queues <id>\`.`,
  );
  if (!o.wait) return;
  let shown = 0;
  const done = handle.result();
  const poll = setInterval(() => {
    void federationStatus(handle)
      .then((s) => {
        const lines = renderRounds(s.state?.rounds ?? [], f.rounds);
        for (; shown < lines.length; shown++) console.log(lines[shown]);
      })
      .catch(() => undefined);
  }, 2000);
  try {
    const r = await done;
    const lines = renderRounds(r.rounds, f.rounds);
    for (; shown < lines.length; shown++) console.log(lines[shown]);
    for (const m of r.missing) console.log(`round ${m.round}: ${m.client} did not answer (${m.why})`);
    console.log(`Global model: ${r.modelRef}`);
  } finally {
    clearInterval(poll);
  }
}
