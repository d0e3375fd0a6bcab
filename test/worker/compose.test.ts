// docker-compose.yml must stay valid for Debian's docker-compose 1.29 (no Docker engine here to run it).
import { describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const env = { ...process.env, POSTGRES_PASSWORD: 'test-only', SECMLOPS_RELEASE_KEY_FILE: './Dockerfile' };

describe('docker-compose.yml', () => {
  test('validates, and runs Temporal on PostgreSQL with its UI, CPU and GPU workers', async () => {
    await run('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], { env });
    const { stdout: services } = await run('docker-compose', ['-f', 'docker-compose.yml', 'config', '--services'], { env });
    expect(services.trim().split('\n').sort()).toEqual(['console', 'postgresql', 'temporal', 'temporal-ui', 'worker-cpu', 'worker-gpu']);
    const { stdout } = await run('docker-compose', ['-f', 'docker-compose.yml', 'config'], { env });
    expect(stdout).toMatch(/worker-gpu:[\s\S]*capabilities:\s*\n\s*- gpu[\s\S]*driver: nvidia/);
    expect(stdout).toMatch(/DB: postgres12/);
  });

  test('refuses to render without a database password', async () => {
    const { POSTGRES_PASSWORD: _unused, ...without } = env;
    await expect(run('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], { env: without })).rejects.toMatchObject({ stderr: expect.stringContaining('set POSTGRES_PASSWORD') });
  });
});
