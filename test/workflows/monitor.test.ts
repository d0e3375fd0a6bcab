// The monitor stage on a real Temporal server with the guarded server answering real traffic: drift injected into
// the served inputs and tampering with the served model file each open an incident; only the incident responder
// (R8) resolves one, and a rollback switches the server to the earlier release without dropping a request.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { loadPublicKey } from '../../activities/keys.js';
import { DecisionRefused } from '../../client/decisions.js';
import { monitorStatus, sendIncidentDecision } from '../../client/incidents.js';
import { loadSplit, type ImageSet } from '../../engine/data/fashion.js';
import { LocalArtifactStore } from '../../engine/io/artifact-store.js';
import { TelemetryWriter } from '../../engine/monitor/telemetry.js';
import { Rng } from '../../engine/runtime/rng.js';
import { loadAttestedModel } from '../../serve/attested-model.js';
import { followMonitor } from '../../serve/follow-monitor.js';
import { createServer, type Server } from '../../serve/server.js';
import { TASK_QUEUE, stageWorkflowId } from '../../workflows/messages.js';
import { renderMonitor } from '../../cli/render-monitor.js';
import { secmlopsPipeline } from '../../workflows/pipeline.js';
import { loadPrivateKey, signDecision } from '../../activities/keys.js';
import {
  incidentSubject,
  retrainWorkflowId,
  type Decision,
  type Evidence,
  type RetrainStart,
} from '../../policy/index.js';
import type { MonitorStatus } from '../../workflows/monitor-messages.js';
import { FASHION, loadWrittenPolicy, makeFixture, type Fixture } from '../helpers/fixture.js';
import { exampleModel, monitoredReleases, type MonitoredReleases } from '../helpers/monitored.js';
import { result, startPipeline, startStack, type Stack } from '../helpers/temporal.js';
import { waitUntil } from '../helpers/processes.js';

const until = (what: string, pred: () => boolean | Promise<boolean>, ms: number) =>
  waitUntil(what, async () => ((await pred()) ? true : undefined), ms);

let fx: Fixture;
let stack: Stack;
let server: Server | undefined;
let unfollow: (() => void) | undefined;
let data: ImageSet;
const monitors: string[] = [];

beforeAll(async () => {
  fx = await makeFixture();
  stack = await startStack(fx);
  data = await loadSplit(FASHION, 'test', { limit: 2000 });
});
afterAll(async () => {
  unfollow?.();
  await server?.close();
  for (const id of monitors)
    await stack.client.workflow
      .getHandle(id)
      .terminate('test over')
      .catch(() => undefined);
  await stack?.stop();
});

/** Sends batches of 10 test images (shifted or not) every 100 ms until stopped; counts the answers by status. */
function traffic(srv: Server, shift: () => boolean) {
  const statuses = new Map<number, number>();
  const models = new Set<string>();
  const rng = new Rng(3);
  let stopped = false;
  let i = 0;
  const loop = (async () => {
    while (!stopped) {
      const inputs = [];
      for (let k = 0; k < 10; k++, i = (i + 1) % data.count) {
        const x = Array.from(data.images.subarray(i * 784, (i + 1) * 784));
        inputs.push(shift() ? x.map((v) => Math.min(1, Math.max(0, v + 0.15 + 0.1 * rng.normal()))) : x);
      }
      const res = await srv.app.inject({ method: 'POST', url: '/v1/predict', payload: { inputs } });
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      if (res.statusCode === 200) models.add(res.json<{ model: string }>().model);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    statuses,
    models,
    reset: () => {
      statuses.clear();
      models.clear();
    },
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

let releases: MonitoredReleases | undefined;
async function monitoredReleasesOnce(): Promise<MonitoredReleases> {
  if (!releases) {
    releases = await monitoredReleases(stack, fx);
    monitors.push(...releases.monitors);
  }
  return releases;
}

describe('the monitor stage', () => {
  test('drift and tampering open incidents; only R8 resolves them; a rollback switches without dropping requests', async () => {
    // The earlier release (model A), then the one the server starts with (model B).
    const r = await monitoredReleasesOnce();
    const [a, b, idB] = [r.a.result, r.b.result, r.b.id];
    const loaded = () => loadWrittenPolicy(r.policy, idB);
    expect(b.stages.map((s) => [s.name, s.state])).toEqual([
      ['evaluate', 'passed'],
      ['release', 'passed'],
      ['monitor', 'running'],
    ]);
    // The pipeline has its verdict; its monitor runs on.
    expect((await stack.client.workflow.getHandle(stageWorkflowId(idB, 'monitor')).describe()).status.name).toBe(
      'RUNNING',
    );
    const attA = a.stages[1].artifacts.attestation;
    const attB = b.stages[1].artifacts.attestation;
    const store = new LocalArtifactStore(fx.artifacts);
    const trustedKey = await loadPublicKey(join(fx.keys, 'release.pub'));
    const { digest } = loaded();
    const attested = await loadAttestedModel({
      envelope: JSON.parse((await store.get(attB)).toString()),
      trustedKey,
      store,
      policy: { digest },
    });
    const shaB = attested.sha256;
    server = await createServer({
      attested,
      attestation: attB,
      telemetry: {
        writer: new TelemetryWriter(join(dirname(fx.artifacts), 'telemetry'), 'serve-test', {
          maxFileBytes: 1 << 20,
          files: 3,
        }),
        rawInputs: false,
      },
      integrity: { store, everyMs: 500 },
    });
    const log: string[] = [];
    unfollow = followMonitor({
      client: stack.client,
      monitorId: stageWorkflowId(idB, 'monitor'),
      served: server.served,
      store,
      policy: loaded().policy,
      policyDigest: digest,
      trustedKey,
      everyMs: 300,
      log: (l) => log.push(l),
    });
    const monitor = () => monitorStatus(stack.client, idB);
    let shifted = false;
    const t = traffic(server, () => shifted);

    // Clean traffic: windows are judged and nothing opens.
    await until(
      'two judged windows',
      async () => (await monitor()).windows.filter((w) => w.drift.length > 0).length >= 2,
      30_000,
    );
    expect((await monitor()).incidents).toEqual([]);

    // Brightness and noise on the inputs: a drift incident within two windows.
    const shiftFrom = (await monitor()).windowCount;
    shifted = true;
    let s: MonitorStatus = await monitor();
    await until('a drift incident', async () => (s = await monitor()).incidents.length > 0, 30_000);
    expect(s.incidents[0]).toMatchObject({ id: 1, kind: 'drift', state: 'open', modelSha256: shaB });
    expect(s.incidents[0].window - shiftFrom).toBeLessThanOrEqual(1);
    expect(s.audit.map((e) => [e.kind, e.stage, e.state])).toContainEqual(['task', 'incident-1', 'open']);
    shifted = false;

    // Only the monitor stage's role (R8) decides, and only for a release the server could serve.
    const decide = (person: string, attestation: string, incident = 1) =>
      sendIncidentDecision(stack.client, {
        pipelineId: idB,
        incident,
        person,
        decision: 'approve',
        resolution: { action: 'rollback', attestation },
        keyPath: fx.key('cli'),
      });
    await expect(decide('alice', attA)).rejects.toThrow(
      new DecisionRefused('alice holds none of the roles this stage needs (R8)'),
    );
    const notAnAttestation = (await store.put(new TextEncoder().encode('{"not":"an attestation"}'))).ref;
    await expect(decide('ivan', notAnAttestation)).rejects.toThrow(
      /cannot roll back to sha256:[0-9a-f]{64}: refusing to serve/,
    );
    await expect(decide('ivan', attB)).rejects.toThrow(/it attests the model served now/);
    expect(server.served.now.attested.sha256).toBe(shaB);

    // The responder rolls back to release A: the server switches while requests keep coming, none dropped.
    t.reset();
    const accepted = await decide('ivan', attA);
    expect(accepted).toMatchObject({ incident: 1, outcome: 'resolved', serving: { attestation: attA } });
    const shaA = accepted.serving.modelSha256;
    await until('the switch to A', async () => server!.served.now.attested.sha256 === shaA, 10_000);
    await new Promise((r) => setTimeout(r, 1000));
    expect([...t.statuses.keys()]).toEqual([200]);
    // Every request around the switch was answered (by B before it, by A after it).
    expect(t.models.has(`sha256:${shaA}`)).toBe(true);
    expect(log).toContainEqual(expect.stringMatching(/^switched to sha256:[0-9a-f]{64} .*decided by ivan$/));

    // Tampering with the served model's file: the server stops serving it, and the monitor opens an incident.
    const tamperedAt = (await monitor()).windowCount;
    await writeFile(store.pathOf(shaA), await exampleModel(0.5));
    await until('the halt', async () => server!.served.halted !== undefined, 5_000);
    const refused = await server.app.inject({
      method: 'POST',
      url: '/v1/predict',
      payload: { inputs: [new Array(784).fill(0)] },
    });
    expect(refused.statusCode).toBe(503);
    expect((await server.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(503);
    await until('an integrity incident', async () => (s = await monitor()).incidents.length > 1, 20_000);
    expect(s.incidents[1]).toMatchObject({ id: 2, kind: 'integrity', modelSha256: shaA });
    expect(s.incidents[1].window - tamperedAt).toBeLessThanOrEqual(1);

    // A decision for incident 1 cannot be replayed on incident 2, and incident 1 takes no more decisions.
    await expect(decide('ivan', attB, 1)).rejects.toThrow(/incident 1 is resolved/);
    const back = await decide('ivan', attB, 2);
    expect(back.serving.modelSha256).toBe(shaB);
    await until('the switch back to B', async () => server!.served.now.attested.sha256 === shaB, 10_000);
    expect(server.served.halted).toBeUndefined();
    // The monitor's latest drift scores show in the server's metrics.
    const metrics = (await server.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/^secmlops_serve_drift_psi\{stat="mean"\} \d/m);
    expect(metrics).toMatch(/^secmlops_serve_model_switches_total 2$/m);

    // Drift again, and this time the responder retrains: a new pipeline for the same change starts and passes.
    shifted = true;
    await until('a third incident', async () => (s = await monitor()).incidents.length > 2, 30_000);
    shifted = false;
    await t.stop();
    expect(s.incidents[2]).toMatchObject({ id: 3, kind: 'drift', modelSha256: shaB });
    const retrained = await sendIncidentDecision(stack.client, {
      pipelineId: idB,
      incident: 3,
      person: 'ivan',
      decision: 'approve',
      resolution: { action: 'retrain' },
      keyPath: fx.key('cli'),
    });
    expect(retrained.outcome).toBe('resolved');
    const retrainId = retrainWorkflowId(idB, 3);
    expect((await monitor()).incidents[2].retrain).toBe(retrainId);
    monitors.push(stageWorkflowId(retrainId, 'monitor'));
    const again = await stack.client.workflow.getHandle<typeof secmlopsPipeline>(retrainId).result();
    expect(again.state).toBe('passed');
    expect(again.subject).toEqual(b.subject);
    expect(again.audit[0].reason).toMatch(/^started through retrain;/);

    // The monitor continued as new (4 windows per run) and kept its windows, incidents and trail.
    s = await monitor();
    expect(s.runs).toBeGreaterThanOrEqual(1);
    expect(s.windowCount).toBeGreaterThanOrEqual(4);
    expect(s.audit.filter((e) => e.kind === 'decision').map((e) => [e.stage, e.person])).toEqual([
      ['incident-1', 'ivan'],
      ['incident-2', 'ivan'],
      ['incident-3', 'ivan'],
    ]);
    // What `secmlops status` prints for it.
    const text = renderMonitor(s);
    expect(text).toMatch(
      /^monitor \S+\/monitor: \d+ windows of 3 s \(run \d+\)\n {2}serving sha256:[0-9a-f]{64} from sha256:/,
    );
    expect(text).toContain(`incident 1 (drift, window ${s.incidents[0].window}): drift in mean`);
    expect(text).toContain(`resolved by ivan: rollback to ${attA}`);
    expect(text).toContain(`retrain (${retrainId})`);
  }, 300_000);

  test('a monitor watching no traffic says so, and a second run cannot take over a running monitor', async () => {
    const r = await monitoredReleasesOnce();
    // Release A's monitor has seen no traffic of its model (the server served B, then A briefly, then B).
    let m = await monitorStatus(stack.client, r.a.id);
    await until(
      'a quiet incident',
      async () => (m = await monitorStatus(stack.client, r.a.id)).incidents.some((i) => i.kind === 'quiet'),
      40_000,
    );
    expect(m.incidents.find((i) => i.kind === 'quiet')!.detail).toMatch(
      /^6 windows in a row had fewer than 50 inputs from the served model/,
    );
    // The same pipeline ID again, its earlier monitor still running: the new run says why it cannot monitor.
    const again = await result(await startPipeline(stack.client, r.policy, r.a.id));
    expect(again.state).toBe('failed');
    expect(again.reason).toMatch(
      /^stage monitor failed: the monitor \S+\/monitor could not start .*terminate the earlier monitor/,
    );
    expect(again.stages.find((s) => s.name === 'release')!.state).toBe('passed');
  }, 120_000);

  test('a retrain start is refused unless an R8 decision on that incident proves it', async () => {
    const r = await monitoredReleasesOnce();
    const envelope = JSON.parse((await new LocalArtifactStore(fx.artifacts).get(r.b.attestation)).toString()) as {
      payload: string;
    };
    const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString()) as {
      predicate: { dossier: { start: Evidence<'start'> } };
    };
    const original = statement.predicate.dossier.start;
    const key = await loadPrivateKey(fx.key('cli'));
    const decision = (over: Partial<Decision> = {}) =>
      signDecision(
        {
          workflowId: stageWorkflowId(r.b.id, 'monitor'),
          stage: 'incident-7',
          person: 'ivan',
          channel: 'cli',
          decision: 'approve',
          comment: '',
          issuedAt: new Date().toISOString(),
          subjectDigest: incidentSubject('a'.repeat(64)),
          resolution: { action: 'retrain' },
          ...over,
        },
        key,
      );
    const attempt = async (workflowId: string, start: RetrainStart) =>
      (
        await stack.client.workflow.execute(secmlopsPipeline, {
          workflowId,
          taskQueue: TASK_QUEUE,
          args: [{ start }],
        })
      ).reason;
    const id = retrainWorkflowId(r.b.id, 7);
    expect(await attempt(id, { kind: 'retrain', original, decision: decision({ person: 'alice' }) })).toMatch(
      /^the start was refused: the retrain decision does not check: alice holds none of the roles/,
    );
    expect(await attempt(`${id}x`, { kind: 'retrain', original, decision: decision() })).toMatch(
      /^the start was refused: incident 7 of .* may start .*-retrain-7, not .*-retrain-7x$/,
    );
    expect(
      await attempt(retrainWorkflowId(r.b.id, 8), {
        kind: 'retrain',
        original,
        decision: decision({ stage: 'incident-8', resolution: { action: 'rollback', attestation: r.a.attestation } }),
      }),
    ).toMatch(/the decision does not choose to retrain$/);
    const forged = {
      ...original,
      body: {
        ...original.body,
        payload: { ...original.body.payload, subject: { ...original.body.payload.subject, author: 'mallory' } },
      },
    };
    expect(
      await attempt(retrainWorkflowId(r.b.id, 9), {
        kind: 'retrain',
        original: forged,
        decision: decision({ stage: 'incident-9' }),
      }),
    ).toMatch(
      /^the start was refused: the retrain's original start does not check: the start evidence's signature does not verify/,
    );
  }, 120_000);
});
