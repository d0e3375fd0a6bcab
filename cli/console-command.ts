// `secmlops console` and the console inside `npm start`: keys and secrets from the environment or .secmlops/keys,
// each optional, so the console serves (and says what is missing) however little is configured.
import type { Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadPrivateKey, loadPublicKey } from '../activities/keys.js';
import { ConsoleMetrics } from '../console/metrics.js';
import { createConsole } from '../console/server.js';
import { connectClient, connectionConfigFromEnv } from '../worker/connection.js';
import { clientTracingFromEnv, type ClientTracing } from '../worker/tracing.js';
import { openOnceStore } from '../client/once-store.js';
import { homePaths } from '../worker/paths.js';

export interface RunningConsole {
  app: FastifyInstance;
  url: string;
}

export interface ConsoleStartOptions {
  port: number;
  host: string;
  /** The client to use (npm start's, built with `tracing`'s interceptors); otherwise one from the environment. */
  client?: Client;
  /** npm start's tracing, shared with its workers; otherwise the OTEL variables decide (secmlops-console). */
  tracing?: ClientTracing;
}

export async function startConsole(opts: ConsoleStartOptions): Promise<RunningConsole> {
  const keys = homePaths().keys;
  const env = process.env;
  const file = (envName: string, name: string) =>
    env[envName] ?? (existsSync(join(keys, name)) ? join(keys, name) : undefined);
  const tokenPub = file('SECMLOPS_TOKEN_PUBLIC_KEY_FILE', 'token.pub');
  const consoleKey = file('SECMLOPS_CONSOLE_KEY', 'console.key');
  const slackKey = file('SECMLOPS_SLACK_KEY', 'slack.key');
  const metricsAddress = env.SECMLOPS_CONSOLE_METRICS_ADDRESS;
  const metrics = metricsAddress ? new ConsoleMetrics() : undefined;
  const ownTracing = opts.tracing || opts.client ? undefined : clientTracingFromEnv();
  const tracing = opts.tracing ?? ownTracing;
  const app = createConsole({
    ...(metrics ? { metrics } : {}),
    ...(tracing ? { tracer: tracing.tracer } : {}),
    connect: async () =>
      opts.client ?? (await connectClient(connectionConfigFromEnv(), ownTracing?.clientInterceptors)),
    tokenPublicKey: tokenPub ? await loadPublicKey(tokenPub) : undefined,
    consoleKey: consoleKey ? await loadPrivateKey(consoleKey) : undefined,
    slack: {
      signingSecret: env.SLACK_SIGNING_SECRET,
      key: slackKey ? await loadPrivateKey(slackKey) : undefined,
      botToken: env.SLACK_BOT_TOKEN,
      apiUrl: env.SLACK_API_URL,
    },
    secureCookies: env.SECMLOPS_CONSOLE_SECURE_COOKIES === '1',
    state: openOnceStore(
      env.SECMLOPS_CONSOLE_STATE ?? join(homePaths().home, 'console-state.sqlite'),
      'SECMLOPS_CONSOLE_STATE',
    ),
  });
  if (ownTracing) app.addHook('onClose', () => ownTracing.shutdown());
  if (metrics && metricsAddress) {
    const server = await metrics.serve(metricsAddress);
    app.addHook('onClose', async () => void server.close());
  }
  await app.listen({ port: opts.port, host: opts.host });
  return { app, url: `http://${opts.host === '0.0.0.0' ? 'localhost' : opts.host}:${opts.port}` };
}
