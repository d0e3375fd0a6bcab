// The guarded server follows its release's monitor: when the monitor says another release is to be served (an
// incident resolved by rollback), the server switches only if it can check that itself. The switch must carry a
// decision signed by a channel the policy pins, from a person holding the monitor stage's role, for an incident on
// the model served now, naming exactly that attestation; and the attestation must pass the same check as at start.
// Anyone who can reach the namespace can make a query answer anything; none of it is believed without these checks.
import type { Client } from '@temporalio/client';
import { checkIncidentDecision, type Policy } from '../policy/index.js';
import type { ArtifactStore } from '../engine/io/artifact-store.js';
import { monitorQuery, type Serving } from '../workflows/monitor-messages.js';
import { loadAttestedModel } from './attested-model.js';
import type { StatDrift } from '../engine/monitor/window.js';
import type { ServedModel } from './served-model.js';

export interface FollowOptions {
  client: Client;
  monitorId: string;
  served: ServedModel;
  store: ArtifactStore;
  policy: Policy;
  policyDigest: string;
  trustedKey: string;
  everyMs: number;
  /** What happened, for the operator's log. */
  log: (line: string) => void;
}

/** Why the switch the monitor asks for must not happen, or undefined when it may. */
export function switchRefusal(
  o: Pick<FollowOptions, 'policy' | 'monitorId'>,
  serving: Serving,
  current: string,
  now: number,
  acted: { chosenAt?: number; used?: Set<string> } = {},
) {
  const d = serving.decision;
  if (!d) return 'the monitor names another release without a decision choosing it';
  // A monitor reset to an earlier state (or a look-alike) would show a decision already acted on or superseded.
  if (acted.used?.has(String(d.signature))) return 'the decision was acted on already (a replay?)';
  if (acted.chosenAt !== undefined && !(Date.parse(d.issuedAt) > acted.chosenAt))
    return 'the decision is not newer than the one that chose the model served now (a replay?)';
  const m = /^incident-(\d+)$/.exec(String(d.stage));
  if (!m) return `the decision is for ${String(d.stage)}, not an incident`;
  const why = checkIncidentDecision(
    { policy: o.policy, workflowId: o.monitorId, incident: Number(m[1]), modelSha256: current, votes: [], now },
    d,
  );
  if (why) return `the decision does not check: ${why}`;
  if (
    d.decision !== 'approve' ||
    d.resolution?.action !== 'rollback' ||
    d.resolution.attestation !== serving.attestation
  )
    return `the decision does not choose a rollback to ${serving.attestation}`;
  return undefined;
}

/** Polls the monitor; returns a function that stops polling. */
export function followMonitor(o: FollowOptions): () => void {
  let busy = false;
  let lastRefusal = '';
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      const status = await o.client.workflow.getHandle(o.monitorId).query(monitorQuery);
      const serving = status.serving;
      // Shown in /metrics: only known statistics and finite numbers (the query's answer is not trusted).
      const judged = status.windows.filter((w) => w.drift?.length).at(-1);
      if (judged) o.served.lastWindow = { index: Number(judged.index), drift: judged.drift.filter(printable) };
      const now = o.served.now;
      if (serving.attestation === now.attestation) return;
      const why = switchRefusal(o, serving, now.attested.sha256, Date.now(), {
        chosenAt: o.served.chosenAt,
        used: o.served.usedDecisions,
      });
      if (why) {
        if (why !== lastRefusal) o.log(`not switching to ${serving.attestation}: ${why}`);
        lastRefusal = why;
        return;
      }
      const envelope: unknown = JSON.parse((await o.store.get(serving.attestation)).toString('utf8'));
      const attested = await loadAttestedModel({
        envelope,
        trustedKey: o.trustedKey,
        store: o.store,
        policy: { digest: o.policyDigest, modelSha256: o.policy.artifacts.model?.sha256 },
      });
      await o.served.switchTo(attested, serving.attestation);
      o.served.chosenAt = Date.parse(serving.decision!.issuedAt);
      o.served.usedDecisions.add(serving.decision!.signature);
      o.log(`switched to sha256:${attested.sha256} (${serving.attestation}), decided by ${serving.decision!.person}`);
    } catch (e) {
      const why = (e as Error).message;
      if (why !== lastRefusal) o.log(`monitor ${o.monitorId}: ${why}`);
      lastRefusal = why;
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void tick(), o.everyMs);
  timer.unref();
  void tick();
  return () => clearInterval(timer);
}

const STATS = ['mean', 'std', 'conf', 'class'];

function printable(d: { stat: unknown; psi: unknown; ks?: { p: unknown } }): d is StatDrift {
  const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  return STATS.includes(String(d.stat)) && finite(d.psi) && (d.ks === undefined || finite(d.ks.p));
}
