// The console's Prometheus metrics: requests counted by route pattern and status (not by URL), served on their
// own internal address, which answers /metrics and nothing else.
import { describe, expect, test } from '@jest/globals';
import { mkdtemp } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openOnceStore } from '../../client/once-store.js';
import { ConsoleMetrics } from '../../console/metrics.js';
import { createConsole } from '../../console/server.js';

describe('console metrics', () => {
  test('requests by route and status; /metrics on its own address', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'secmlops-console-metrics-'));
    const metrics = new ConsoleMetrics();
    const app = createConsole({
      connect: () => Promise.reject(new Error('no Temporal in this test')),
      state: openOnceStore(join(dir, 'state.sqlite'), 'state'),
      metrics,
    });
    expect((await app.inject({ method: 'GET', url: '/signin' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/signin' })).statusCode).toBe(200);
    // Without a session the pipeline page sends the browser to sign in; an unknown URL is counted as unmatched.
    const page = await app.inject({ method: 'GET', url: '/' });
    expect((await app.inject({ method: 'GET', url: '/no/such/page-123' })).statusCode).toBe(404);
    const text = await metrics.registry.metrics();
    expect(text).toContain('secmlops_console_requests_total{method="GET",route="/signin",status="200"} 2');
    expect(text).toContain(`secmlops_console_requests_total{method="GET",route="/",status="${page.statusCode}"} 1`);
    expect(text).toContain('secmlops_console_requests_total{method="GET",route="unmatched",status="404"} 1');
    expect(text).not.toContain('page-123');
    expect(text).toMatch(/secmlops_console_process_cpu_seconds_total/);
    const server = await metrics.serve('127.0.0.1:0');
    try {
      const at = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const scraped = await fetch(`${at}/metrics`);
      expect(scraped.status).toBe(200);
      expect(await scraped.text()).toContain('secmlops_console_requests_total');
      expect((await fetch(`${at}/`)).status).toBe(404);
    } finally {
      server.close();
      await app.close();
    }
  });

  test('an address that is not host:port is refused by name', async () => {
    await expect(new ConsoleMetrics().serve('9464')).rejects.toThrow('SECMLOPS_CONSOLE_METRICS_ADDRESS');
  });
});
