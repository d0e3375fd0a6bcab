// docker-compose.yml must stay valid for Debian's docker-compose 1.29 (no Docker engine here to run it).
import { describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { BLOB_SIZE_LIMITS } from '../../worker/dev-server.js';

const run = promisify(execFile);
const env = {
  ...process.env,
  POSTGRES_PASSWORD: 'test-only',
  MINIO_ROOT_PASSWORD: 'test-only-minio',
  SECMLOPS_RELEASE_KEY_FILE: './Dockerfile',
};

describe('docker-compose.yml', () => {
  test('validates, and runs Temporal on PostgreSQL with its UI, CPU and GPU workers', async () => {
    await run('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], { env });
    const { stdout: services } = await run('docker-compose', ['-f', 'docker-compose.yml', 'config', '--services'], {
      env,
    });
    expect(services.trim().split('\n').sort()).toEqual([
      'console',
      'minio',
      'minio-init',
      'postgresql',
      'prometheus',
      'temporal',
      'temporal-ui',
      'worker-cpu',
      'worker-gpu',
    ]);
    const { stdout } = await run('docker-compose', ['-f', 'docker-compose.yml', 'config'], { env });
    expect(stdout).toMatch(/worker-gpu:[\s\S]*capabilities:\s*\n\s*- gpu[\s\S]*driver: nvidia/);
    expect(stdout).toMatch(/DB: postgres12/);
    // Metrics: every worker and the console serve them; Prometheus scrapes both ports by service name.
    expect(stdout.match(/SECMLOPS_METRICS_ADDRESS: 0\.0\.0\.0:9464/g)).toHaveLength(2);
    expect(stdout).toContain('SECMLOPS_CONSOLE_METRICS_ADDRESS: 0.0.0.0:9465');
    // Artifacts: both workers use the MinIO bucket the init service creates, after it has created it.
    expect(stdout.match(/SECMLOPS_ARTIFACTS: s3:\/\/secmlops\/artifacts/g)).toHaveLength(2);
    expect(stdout.match(/AWS_ENDPOINT_URL_S3: http:\/\/minio:9000/g)).toHaveLength(2);
    expect(stdout.match(/minio-init:\s*\n\s*condition: service_completed_successfully/g)).toHaveLength(2);
    expect(stdout).toMatch(/mc mb --ignore-existing store\/secmlops/);
    // Traces: both workers read the OTLP endpoint (off when empty) and build their bundle with or without tracing.
    expect(stdout.match(/OTEL_EXPORTER_OTLP_ENDPOINT: ''/g)).toHaveLength(2);
    expect(stdout.match(/WORKFLOW_TRACING: ''/g)).toHaveLength(2);
    const scrape = (await readFile('deploy/prometheus.yml', 'utf8')).replace(/#.*$/gm, '');
    expect(scrape).toMatch(
      /names: \[worker-cpu, worker-gpu\][\s\S]*port: 9464[\s\S]*names: \[console\][\s\S]*port: 9465/,
    );
  });

  test('caps payload sizes on the server, and gives workers their trust configuration as secrets', async () => {
    const { stdout } = await run('docker-compose', ['-f', 'docker-compose.yml', 'config'], { env });
    expect(stdout).toMatch(/DYNAMIC_CONFIG_FILE_PATH: config\/dynamicconfig\/secmlops\.yaml/);
    expect(stdout).toMatch(
      /deploy\/temporal-dynamicconfig\.yaml:\/etc\/temporal\/config\/dynamicconfig\/secmlops\.yaml:ro/,
    );
    const { parse } = await import('yaml');
    const limits = parse(await readFile('deploy/temporal-dynamicconfig.yaml', 'utf8')) as Record<
      string,
      { value: number }[]
    >;
    expect(limits['limit.blobSize.error'][0].value).toBe(BLOB_SIZE_LIMITS.error);
    for (const v of [
      'SECMLOPS_EVIDENCE_KEY: /run/secrets/evidence_key',
      'SECMLOPS_START_KEYS: /run/secrets/start_key_pub',
      'SECMLOPS_POLICY_ROOT: /policies',
      'SECMLOPS_GITHUB_CHANNEL_KEY: /run/secrets/github_channel_key',
    ]) {
      expect(stdout).toContain(v);
    }
  });

  test('keeps the console and worker once-stores on volumes, and builds their SQLite module in the image', async () => {
    const { stdout } = await run('docker-compose', ['-f', 'docker-compose.yml', 'config'], { env });
    expect(stdout).toContain('SECMLOPS_CONSOLE_STATE: /var/lib/secmlops/console-state/');
    expect(stdout).toContain('- console-state:/var/lib/secmlops/console-state:rw');
    expect(stdout).toContain('SECMLOPS_WORKER_STATE: /var/lib/secmlops/state/worker.sqlite');
    expect(stdout).toContain('- worker-state:/var/lib/secmlops/state:rw');
    // Postgres instead, from the operator's environment.
    const { stdout: pg } = await run('docker-compose', ['-f', 'docker-compose.yml', 'config'], {
      env: { ...env, SECMLOPS_CONSOLE_STATE: 'postgres://secmlops:pw@postgresql/secmlops' },
    });
    expect(pg).toContain('SECMLOPS_CONSOLE_STATE: postgres://secmlops:pw@postgresql/secmlops');
    // `npm ci --ignore-scripts` skips every install script: the image must build better-sqlite3's binary itself.
    const dockerfile = await readFile('Dockerfile', 'utf8');
    expect(dockerfile).toMatch(/npm ci --omit=dev --ignore-scripts \\\n && npm rebuild better-sqlite3/);
  });

  test('refuses to render without a database or MinIO password', async () => {
    const { POSTGRES_PASSWORD: _unused, ...without } = env;
    await expect(
      run('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], { env: without }),
    ).rejects.toMatchObject({ stderr: expect.stringContaining('set POSTGRES_PASSWORD') });
    const { MINIO_ROOT_PASSWORD: _minio, ...noMinio } = env;
    await expect(
      run('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], { env: noMinio }),
    ).rejects.toMatchObject({ stderr: expect.stringContaining('set MINIO_ROOT_PASSWORD') });
  });
});
