// The `secmlops` command as a user runs it.
import { describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureDevKeys } from '../../activities/keys.js';
import { findTemporalCli } from '../../worker/temporal-cli.js';

const exec = promisify(execFile);
const secmlops = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  exec(process.execPath, ['bin/secmlops.js', ...args], { env: { ...process.env, ...env } }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

describe('secmlops CLI', () => {
  test('--help lists the commands', async () => {
    const r = await secmlops(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['dev', 'run', 'status', 'list', 'approve', 'reject', 'verify', 'check', 'worker'])
      expect(r.stdout).toContain(`  ${c} `);
  });

  test('a bad policy is reported before anything connects', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cli-'));
    await writeFile(join(dir, 'p.yaml'), 'version: 1\nname: x\npeople: { a: {} }\nstages: [plan, deploy]\n');
    // Port 1 has no Temporal: if the command connected first, the error would be about the connection.
    const r = await secmlops(['run', '--policy', join(dir, 'p.yaml'), '--author', 'mia-ml'], {
      TEMPORAL_ADDRESS: '127.0.0.1:1',
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'p.yaml: stages[1].name: unknown stage "deploy"; the lifecycle stages are plan, data, train, evaluate, release, monitor',
    );
  });

  test('run names the change’s author: without --author nothing starts (an author must not approve their own change)', async () => {
    const r = await secmlops(['run', '--policy', 'examples/fashion-mnist/secmlops.yaml'], {
      TEMPORAL_ADDRESS: '127.0.0.1:1',
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("required option '--author <login>' not specified");
  });

  test('check refuses a monitor block with an invalid threshold, naming the path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cli-'));
    const policy = `version: 1
name: monitored
people: { ivan: {}, omar: {}, carol: {} }
roles: { R5: { members: [carol] }, R7: { members: [omar] }, R8: { members: [ivan] } }
stages: [evaluate, release, monitor]
artifacts:
  dataset:
    root: /data
    files: [{ path: i.gz, sha256: ${'c'.repeat(64)} }, { path: l.gz, sha256: ${'d'.repeat(64)} }]
    splits: { test: { images: i.gz, labels: l.gz } }
  model: { path: m.onnx }
evaluate: { attacks: [{ id: fgsm, attack: fgsm, eps: 0.1 }] }
monitor: { window: 1m, drift: { psi: -1, ksPValue: 0.001 } }
`;
    await writeFile(join(dir, 'p.yaml'), policy);
    const r = await secmlops(['check', join(dir, 'p.yaml')]);
    expect(r.stderr).toContain('p.yaml: monitor.drift.psi: expected a number from 0 to 10, got number -1');
    expect(r.code).toBe(1);
  });

  test('train refuses a CutMix alpha or a temperature of 0 or below, and an unreadable teacher, with exit 2', async () => {
    const args = ['train', '--data', '/usr/share/datasets/fashion-mnist', '--out', '/tmp/x.onnx'];
    const r = await secmlops([...args, '--cutmix', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--cutmix: alpha must be above 0, got 0');
    const p = await secmlops([...args, '--cutmix', '1', '--cutmix-prob', '2']);
    expect(p.code).toBe(2);
    expect(p.stderr).toContain('--cutmix-prob: expected a probability in (0, 1], got 2');
    const t = await secmlops([...args, '--distill-from', 'examples/fashion-mnist/model.onnx', '--temperature', '0']);
    expect(t.code).toBe(2);
    expect(t.stderr).toContain('--temperature: expected a temperature above 0, got 0');
    const missing = await secmlops([...args, '--distill-from', '/nonexistent/teacher.onnx', '--temperature', '4']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--distill-from: /nonexistent/teacher.onnx: cannot read it (ENOENT)');
  });

  test('a missing policy file is named', async () => {
    const r = await secmlops(['check', '/nonexistent/secmlops.yaml']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/secmlops\.yaml: \(top level\): cannot read the policy file \(ENOENT\)/);
  });

  test('approve checks its key before connecting, and names the server it cannot reach', async () => {
    const missing = await secmlops(['approve', 'wf', '--stage', 'plan', '--as', 'alice', '--key', '/nonexistent.key'], {
      TEMPORAL_ADDRESS: '127.0.0.1:1',
    });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('private key /nonexistent.key: cannot read it (ENOENT)');
    const dir = await mkdtemp(join(tmpdir(), 'cli-'));
    await ensureDevKeys(dir);
    const offline = await secmlops(
      ['approve', 'wf', '--stage', 'plan', '--as', 'alice', '--key', join(dir, 'cli.key')],
      { TEMPORAL_ADDRESS: '127.0.0.1:1' },
    );
    expect(offline.code).toBe(1);
    expect(offline.stderr).toContain('cannot reach Temporal at 127.0.0.1:1');
  });

  test('a rejection without a reason is refused', async () => {
    const r = await secmlops(['reject', 'wf', '--stage', 'plan', '--as', 'alice', '--key', 'k']);
    expect(r.stderr).toContain('a rejection needs a reason');
  });
});

describe('finding the Temporal CLI', () => {
  test('TEMPORAL_CLI must point at an executable', () => {
    expect(() => findTemporalCli({ env: { TEMPORAL_CLI: '/nonexistent/temporal' } })).toThrow(
      'TEMPORAL_CLI is set to /nonexistent/temporal, which is not an executable file',
    );
  });

  test('PATH, then the Go bin folder, then the project-local install', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tcli-'));
    const fake = join(dir, 'temporal');
    await writeFile(fake, '#!/bin/sh\n');
    await chmod(fake, 0o755);
    expect(findTemporalCli({ env: { PATH: dir }, toolsDir: join(dir, 'none') })).toBe(fake);
    expect(findTemporalCli({ env: { PATH: '', GOBIN: dir }, toolsDir: join(dir, 'none') })).toBe(fake);
    expect(
      findTemporalCli({ env: { PATH: '', GOBIN: join(dir, 'nogo') }, toolsDir: join(dir, 'none') }),
    ).toBeUndefined();
  });
});
