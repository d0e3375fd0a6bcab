// The console's Prometheus metrics (prom-client): requests by route and status, decisions accepted by channel, and
// the process's own (CPU, memory, event-loop lag). Served on a separate, internal address
// (SECMLOPS_CONSOLE_METRICS_ADDRESS), never on the console's public port.
import { createServer, type Server } from 'node:http';
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';

export class ConsoleMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'secmlops_console_requests_total',
    help: 'HTTP requests the console answered, by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly decisions = new Counter({
    name: 'secmlops_console_decisions_total',
    help: 'approval decisions the console accepted and sent, by channel and decision',
    labelNames: ['channel', 'decision'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'secmlops_console_' });
  }

  /** An HTTP server answering GET /metrics on `address` (host:port); anything else is 404. */
  async serve(address: string): Promise<Server> {
    const at = /^(.*):(\d+)$/.exec(address);
    if (!at) throw new Error(`SECMLOPS_CONSOLE_METRICS_ADDRESS: expected host:port, got "${address}"`);
    const server = createServer((req, res) => {
      if (req.method !== 'GET' || req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(Number(at[2]), at[1], resolve);
    });
    return server;
  }
}
