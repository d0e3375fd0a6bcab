// The trust boundary, attacked as someone who can reach the Temporal namespace (start workflows, send Signals and
// Updates, read histories) but holds no key. Each test performs the attack and asserts the specific refusal.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { LoadedPolicy } from '../../activities/policy-source.js';
import { openEnvelope, signEnvelope, type Envelope } from '../../activities/attestation.js';
import { loadPrivateKey, loadPublicKey, signDecision } from '../../activities/keys.js';
import type { ReleasePredicate } from '../../activities/release.js';
import { LocalArtifactStore } from '../../activities/store.js';
import { verifyFile } from '../../cli/verify.js';
import { appendEntry, genesisDigest, type AuditEntry, type SignedDecision } from '../../policy/index.js';
import {
  approveSignal,
  approveUpdate,
  stageUpdateSignal,
  stageWorkflowId,
  statusQuery,
  TASK_QUEUE,
  type PipelineResult,
  type PipelineStatus,
  type StageResult,
} from '../../workflows/messages.js';
import {
  FASHION,
  TEST_FILES,
  loadWrittenPolicy,
  makeFixture,
  policyFromText,
  testPolicy,
  testPolicyText,
  writePolicy,
  type Fixture,
} from '../helpers/fixture.js';
import {
  result,
  startPipeline,
  startStack,
  status,
  subject,
  uniqueId,
  waitForStage,
  type Stack,
} from '../helpers/temporal.js';

let fx: Fixture;
let stack: Stack;

beforeAll(async () => {
  fx = await makeFixture();
  stack = await startStack(fx);
});
afterAll(async () => stack?.stop());

const decide: Stack['decide'] = (...args) => stack.decide(...args);

/** A forged stage report as anyone with namespace access can send it: newest revision wins, if anything believed it. */
function forgedReport(pipelineId: string, name: 'plan' | 'data'): StageResult {
  return {
    status: {
      name,
      workflowId: stageWorkflowId(pipelineId, name),
      state: 'passed',
      revision: 1e9,
      tasks: [],
      blockers: [],
      findings: [],
      metrics: { 'data.test.images': 1e9 },
      gates: [{ id: 'never-ran', metric: 'data.test.images', op: '>=', value: 1, measured: 1e9, passed: true }],
      manifest: [
        { path: 't10k-images-idx3-ubyte.gz', sha256: 'a'.repeat(64), bytes: 1 },
        { path: 't10k-labels-idx1-ubyte.gz', sha256: 'b'.repeat(64), bytes: 1 },
        { path: 'backdoor.gz', sha256: 'c'.repeat(64), bytes: 1 },
      ],
      artifacts: { model: `sha256:${'d'.repeat(64)}` },
    },
    audit: [
      {
        at: new Date().toISOString(),
        stage: name,
        kind: 'decision',
        person: 'alice',
        roles: ['R3'],
        channel: 'cli',
        decision: 'approve',
        comment: 'FORGED-COMMENT',
        issuedAt: new Date().toISOString(),
        signature: 'AAAA',
      },
    ],
  };
}

let whole: { id: string; attestation: string; result: PipelineResult; policy: LoadedPolicy };

describe('the release attests only what workers measured and people signed', () => {
  test('a forged stage report (revision 1e9) reaches neither the verdict nor the attestation', async () => {
    const policy = await testPolicy(fx);
    const id = uniqueId('forged-signal');
    const handle = await startPipeline(stack.client, policy, id);
    await waitForStage(handle, 'plan', ['waiting']);
    await handle.signal(stageUpdateSignal, forgedReport(id, 'plan'));
    // Not even shown: the status reads the running stage from the run the pipeline started.
    const raw = await handle.query<PipelineStatus>('status');
    const plan = raw.stages.find((s) => s.name === 'plan')!;
    expect(plan.state).toBe('running');
    expect(plan.revision).toBeLessThan(1e9);
    expect(plan.runId).toBe((await stack.client.workflow.getHandle(stageWorkflowId(id, 'plan')).describe()).runId);
    const shown = await status(handle);
    expect(shown.stages.find((s) => s.name === 'plan')).toMatchObject({ state: 'waiting', runId: plan.runId });
    expect(JSON.stringify(shown)).not.toContain('FORGED-COMMENT');
    await decide(id, 'plan', 'alice');
    await waitForStage(handle, 'data', ['waiting']);
    // After plan finished, a forged plan report changes nothing; a forged data report is display only.
    await handle.signal(stageUpdateSignal, forgedReport(id, 'plan'));
    await handle.signal(stageUpdateSignal, forgedReport(id, 'data'));
    await decide(id, 'data', 'dana');
    await waitForStage(handle, 'release', ['waiting']);
    await decide(id, 'release', 'omar');
    await decide(id, 'release', 'carol');
    const r = await result(handle);
    expect(r.state).toBe('passed');
    const data = r.stages.find((s) => s.name === 'data')!;
    expect(data.manifest?.map((m) => m.sha256)).toEqual(policy.artifacts.dataset!.files.map((f) => f.sha256));
    expect(data.gates.map((g) => g.id)).toEqual([]);
    const attestation = r.stages.find((s) => s.name === 'release')!.artifacts.attestation;
    const envelope = JSON.parse((await new LocalArtifactStore(fx.artifacts).get(attestation)).toString()) as Envelope;
    const text = Buffer.from(envelope.payload, 'base64').toString();
    for (const forged of [
      'a'.repeat(64),
      'b'.repeat(64),
      'c'.repeat(64),
      'd'.repeat(64),
      'backdoor.gz',
      'never-ran',
      'FORGED-COMMENT',
    ])
      expect(text).not.toContain(forged);
    const report = await verifyFile(attestation, { policy: loadWrittenPolicy(policy, id), artifactsDir: fx.artifacts });
    expect(report.problems).toEqual([]);
    expect(report.subjects).toEqual(
      policy.artifacts.dataset!.files.map((f) => ({ name: `dataset/${f.path}`, sha256: f.sha256 })),
    );
    whole = { id, attestation, result: r, policy: loadWrittenPolicy(policy, id) };
  }, 120_000);

  test('a stage started directly (not by its pipeline) refuses to run, whatever inputs it was given', async () => {
    const policy = await testPolicy(fx);
    const forged = forgedReport('p', 'data').status;
    for (const stage of ['release', 'plan'] as const) {
      const h = await stack.client.workflow.start(`${stage}Stage`, {
        taskQueue: TASK_QUEUE,
        workflowId: `${uniqueId('direct')}/${stage}`,
        args: [
          {
            pipelineId: 'p',
            subject: subject(),
            policy,
            stage: policy.stages.find((s) => s.name === stage),
            subjectDigest: 'x',
            policyDigest: 'y',
            chainHead: 'z',
            earlier: [forged],
            audit: [],
            manifest: forged.manifest,
          },
        ],
      });
      await expect(h.result()).rejects.toMatchObject({
        cause: {
          message: expect.stringMatching(
            /^stage workflows run only as children of their pipeline; .* was started directly$/,
          ),
          type: 'NotStartedByPipeline',
        },
      });
    }
  });

  test('an approval read from one commit’s run is refused on the run for the next commit (same workflow ID)', async () => {
    const policy = await testPolicy(fx, { stages: '  - plan' });
    const id = uniqueId('cross-push');
    const first = await startPipeline(stack.client, policy, id, { ...subject(), headSha: 'a'.repeat(40) });
    await waitForStage(first, 'plan', ['waiting']);
    await decide(id, 'plan', 'alice');
    const entry = (await result(first)).audit.find((a) => a.kind === 'decision')!;
    // What an attacker reads from the first run's history: alice's signed decision.
    const captured: SignedDecision = {
      workflowId: id,
      stage: 'plan',
      person: entry.person!,
      channel: 'cli',
      decision: 'approve',
      comment: entry.comment!,
      issuedAt: entry.issuedAt!,
      signature: entry.signature!,
      subjectDigest: entry.subjectDigest,
    };
    const second = await startPipeline(stack.client, policy, id, { ...subject(), headSha: 'b'.repeat(40) });
    await waitForStage(second, 'plan', ['waiting']);
    await expect(
      stack.client.workflow.getHandle(stageWorkflowId(id, 'plan')).executeUpdate(approveUpdate, { args: [captured] }),
    ).rejects.toMatchObject({
      cause: {
        message: 'the decision was signed for another change (its subjectDigest is not this run’s: another commit?)',
      },
    });
    expect((await status(second)).stages[0].state).toBe('waiting');
    await second.terminate('test done');
  });

  test('a labels file swapped after the data stage checked it fails the next stage that reads it', async () => {
    const dataset = join(fx.dir, 'swap-data');
    await mkdir(dataset);
    for (const f of TEST_FILES) await copyFile(join(FASHION, f), join(dataset, f));
    const evaluate = 'evaluate:\n  limit: 100\n  attacks: [{ id: fgsm, attack: fgsm, eps: 0.1 }]';
    const text = await testPolicyText(fx, {
      stages: '  - data\n  - name: evaluate\n    approval: false',
      model: resolve('examples/fashion-mnist/model.onnx'),
      extra: evaluate,
    });
    const policy = policyFromText(fx, text.replace(`root: ${fx.dataset}`, `root: ${dataset}`));
    const id = uniqueId('swap');
    const handle = await startPipeline(stack.client, policy, id);
    await waitForStage(handle, 'data', ['waiting']);
    // Between the manifest and the next read: same size, other labels.
    const labels = join(dataset, 't10k-labels-idx1-ubyte.gz');
    const { gunzipSync, gzipSync } = await import('node:zlib');
    const raw = gunzipSync(await readFile(labels));
    raw[8] = (raw[8] + 1) % 10;
    await writeFile(labels, gzipSync(raw));
    await decide(id, 'data', 'dana');
    const r = await result(handle);
    expect(r.state).toBe('failed');
    expect(r.reason).toMatch(
      /^stage evaluate failed: .*t10k-labels-idx1-ubyte\.gz: SHA-256 [0-9a-f]{64} differs from [0-9a-f]{64}, which the manifest pinned: the file changed after the data stage checked it$/,
    );
  }, 120_000);
});

describe('stages whose approval can never be met fail at once', () => {
  test('a release whose only model owner is the change’s author fails when it starts, saying why', async () => {
    const policy = await testPolicy(fx, { stages: '  - name: plan\n    approval: false\n  - release' });
    const id = uniqueId('unmeetable');
    // omar (the only R7) authored this change: nobody else can give the model owner's approval.
    const r = await result(await startPipeline(stack.client, policy, id, subject('omar-owner')));
    expect(r.state).toBe('failed');
    expect(r.reason).toBe(
      "stage release failed: the approval cannot be met: the approval needs 2 distinct people holding R7 or R5, but only 1 can decide (omar excluded as the change's author)",
    );
  });
});

describe('hardened decision handlers', () => {
  /** A one-stage pipeline whose plan waits for approval, and a handle on the plan stage itself. */
  async function waitingPlan(name: string) {
    const policy = await testPolicy(fx, { stages: '  - plan' });
    const id = uniqueId(name);
    const handle = await startPipeline(stack.client, policy, id);
    await waitForStage(handle, 'plan', ['waiting']);
    return { id, handle, plan: stack.client.workflow.getHandle(stageWorkflowId(id, 'plan')) };
  }

  test('prototype keys are refused cleanly, refusals are bounded, and the stage still takes a valid decision', async () => {
    const { id, handle, plan } = await waitingPlan('handlers');
    const key = await loadPrivateKey(fx.key('cli'));
    const subjectDigest = (await status(handle)).subjectDigest;
    const base = {
      workflowId: id,
      stage: 'plan',
      person: 'alice',
      decision: 'approve' as const,
      comment: '',
      issuedAt: new Date().toISOString(),
      subjectDigest,
    };
    for (const channel of ['constructor', '__proto__', 'toString']) {
      const d = { ...signDecision({ ...base, channel: 'cli' }, key), channel } as unknown as SignedDecision;
      await expect(plan.executeUpdate(approveUpdate, { args: [d] })).rejects.toMatchObject({
        cause: {
          message: `channel "${channel}" has no public key pinned in the policy, so its decisions cannot be trusted`,
        },
      });
      await plan.signal(approveSignal, d);
    }
    // Thirty 200 KiB refused Signals: each entry is cut to a bounded size, and past twenty they are only counted.
    const big = 'x'.repeat(200 * 1024);
    for (let i = 0; i < 30; i++)
      await plan.signal(approveSignal, { ...base, person: big, channel: 'cli', signature: 'AAAA' });
    await waitForStage(handle, 'plan', ['waiting']);
    await expect(decide(id, 'plan', 'alice')).resolves.toMatchObject({ outcome: 'approved' });
    const r = await result(handle);
    expect(r.state).toBe('passed');
    const refused = r.audit.filter((a) => a.kind === 'refused');
    expect(refused).toHaveLength(20);
    expect(refused.slice(0, 3).map((a) => a.reason)).toEqual(
      ['constructor', '__proto__', 'toString'].map(
        (c) => `channel "${c}" has no public key pinned in the policy, so its decisions cannot be trusted`,
      ),
    );
    expect(Math.max(...refused.map((a) => JSON.stringify(a).length))).toBeLessThan(2000);
    expect(refused[19].reason).toMatch(/further refusals of stage plan are counted, not stored$/);
    expect(r.stages[0].refusalsNotStored).toBe(13);
    expect(JSON.stringify(r).length).toBeLessThan(100_000);
  }, 60_000);

  test('refusals that swell the stage’s trail do not hide that it waits for approval', async () => {
    const { id, handle, plan } = await waitingPlan('swollen');
    // Control characters are cut by count but take six bytes each in JSON: twenty refusals pass 64 KiB.
    const noise = '\u0001'.repeat(10_000);
    for (let i = 0; i < 20; i++)
      await plan.signal(approveSignal, {
        workflowId: id,
        stage: 'plan',
        person: noise,
        channel: noise,
        decision: noise,
        comment: '',
        issuedAt: new Date().toISOString(),
        signature: 'AAAA',
      } as unknown as SignedDecision);
    const own = (await plan.query(statusQuery)) as StageResult;
    expect(own.audit.filter((a) => a.kind === 'refused')).toHaveLength(20);
    expect(JSON.stringify(own).length).toBeGreaterThan(64 * 1024);
    // The status every channel reads still shows the stage waiting (its trail left out), so it can be approved.
    const shown = await status(handle);
    expect(shown.stages.find((st) => st.name === 'plan')?.state).toBe('waiting');
    await expect(decide(id, 'plan', 'alice')).resolves.toMatchObject({ outcome: 'approved' });
    expect((await result(handle)).state).toBe('passed');
  }, 60_000);
});

describe('verify', () => {
  /** Re-signs an edited statement with the real release key: only the chain and rule checks can catch the edit. */
  async function tampered(
    edit: (p: ReleasePredicate, s: { subject: { name: string; digest: { sha256: string } }[] }) => void,
    rechain = false,
  ): Promise<string[]> {
    const trusted = await loadPublicKey(join(fx.keys, 'release.pub'));
    const envelope = JSON.parse(
      (await new LocalArtifactStore(fx.artifacts).get(whole.attestation)).toString(),
    ) as Envelope;
    const statement = openEnvelope(envelope, trusted);
    const p = statement.predicate as unknown as ReleasePredicate;
    edit(p, statement);
    if (rechain) {
      const chained: AuditEntry[] = [];
      let head = genesisDigest(p.pipeline);
      for (const { prev: _prev, ...e } of p.dossier.audit) head = appendEntry(chained, head, e);
      p.dossier.audit = chained;
    }
    const file = join(fx.dir, `tampered-${Math.random().toString(36).slice(2)}.json`);
    await writeFile(file, JSON.stringify(signEnvelope(statement, await loadPrivateKey(fx.key('release')))));
    const r = await verifyFile(file, { policy: whole.policy, artifactsDir: fx.artifacts });
    return r.problems;
  }
  const decisions = (p: ReleasePredicate) =>
    p.dossier.audit.map((e, i) => [e, i] as const).filter(([e]) => e.kind === 'decision');

  test('the untouched attestation verifies', async () => {
    expect(await tampered(() => {})).toEqual([]);
  });

  test.each([
    [
      'removing a decision',
      (p: ReleasePredicate) => p.dossier.audit.splice(decisions(p)[3][1], 1),
      /the chain is broken/,
      false,
    ],
    [
      'removing a decision and re-chaining',
      (p: ReleasePredicate) => p.dossier.audit.splice(decisions(p)[3][1], 1),
      /stage release: the approval rule .* is not met; approved by omar \(R7\)/,
      true,
    ],
    [
      'duplicating a decision and re-chaining',
      (p: ReleasePredicate) => p.dossier.audit.splice(decisions(p)[0][1] + 1, 0, { ...decisions(p)[0][0] }),
      /a second decision by the same person/,
      true,
    ],
    [
      'moving a decision before the stage waited, re-chained',
      (p: ReleasePredicate) => {
        const [e, i] = decisions(p)[0];
        p.dossier.audit.splice(i, 1);
        p.dossier.audit.splice(2, 0, e);
      },
      /is recorded before the stage waited for approval/,
      true,
    ],
    [
      'editing a decision’s roles, re-chained',
      (p: ReleasePredicate) => (decisions(p)[1][0].roles = ['R1', 'R7']),
      /is recorded with roles \[R1, R7\], but the policy gives \[R1\]/,
      true,
    ],
    [
      'editing a decision’s time, re-chained',
      (p: ReleasePredicate) => (decisions(p)[1][0].at = '2030-01-01T00:00:00.000Z'),
      /outside the validity of its signed issuedAt/,
      true,
    ],
    ['emptying the trail', (p: ReleasePredicate) => (p.dossier.audit = []), /the audit trail is empty/, false],
    [
      'swapping a dataset digest in the statement',
      (_p: ReleasePredicate, s) => (s.subject[0].digest.sha256 = 'e'.repeat(64)),
      /gives dataset\/t10k-images-idx3-ubyte\.gz the digest e{64}, but the evidence measured/,
      false,
    ],
    [
      'adding a subject',
      (_p: ReleasePredicate, s) => s.subject.push({ name: 'dataset/backdoor.gz', digest: { sha256: 'e'.repeat(64) } }),
      /names subject dataset\/backdoor\.gz, which no evidence supports/,
      false,
    ],
    [
      'raising a measured metric',
      (p: ReleasePredicate) => (p.stages[1].metrics['data.test.images'] = 60000),
      /the attested stages, metrics or gates differ from what the evidence shows/,
      false,
    ],
    [
      'editing the evidence itself',
      (p: ReleasePredicate) =>
        ((p.dossier.stages[1].evidence[0].body.payload as { files: { sha256: string }[] }).files[0].sha256 = 'e'.repeat(
          64,
        )),
      /stage data: the manifest evidence's signature does not verify/,
      false,
    ],
  ] as [
    string,
    (p: ReleasePredicate, s: { subject: { name: string; digest: { sha256: string } }[] }) => void,
    RegExp,
    boolean,
  ][])('%s is caught', async (_name, edit, reason, rechain) => {
    const problems = await tampered(edit, rechain);
    expect(problems).toEqual(expect.arrayContaining([expect.stringMatching(reason)]));
  });

  test('a policy other than the attested one is refused by its digest', async () => {
    const other = await testPolicy(fx, { extra: 'gates: []' });
    await writePolicy(other, 'other-policy');
    const r = await verifyFile(whole.attestation, {
      policy: loadWrittenPolicy(other, 'other-policy'),
      artifactsDir: fx.artifacts,
    });
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatch(
      /^the policy given has digest [0-9a-f]{64}, but the attested one has [0-9a-f]{64}: it is not the policy this ran under$/,
    );
  });

  test('an attestation from before the trust boundary is refused unless --allow-legacy, which lists what it cannot check', async () => {
    const legacy = {
      _type: 'https://in-toto.io/Statement/v1' as const,
      subject: [{ name: 'model', digest: { sha256: 'a'.repeat(64) } }],
      predicateType: 'https://secmlops.dev/attestation/release/v1',
      predicate: { pipeline: 'old', audit: [] },
    };
    const file = join(fx.dir, 'legacy.json');
    await writeFile(file, JSON.stringify(signEnvelope(legacy, await loadPrivateKey(fx.key('release')))));
    await expect(
      verifyFile(file, { keyPath: join(fx.keys, 'release.pub'), artifactsDir: fx.artifacts }),
    ).rejects.toThrow(
      /predates signed evidence and the audit chain, so it cannot be fully checked; give --allow-legacy/,
    );
    const r = await verifyFile(file, {
      keyPath: join(fx.keys, 'release.pub'),
      artifactsDir: fx.artifacts,
      allowLegacy: true,
    });
    expect(r.ok).toBe(true);
    expect(r.notChecked).toContain('no audit chain: removed, reordered or edited entries cannot be detected');
  });
});
