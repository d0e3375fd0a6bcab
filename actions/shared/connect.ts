// Inputs every SecMLOps action shares: how to reach Temporal (address, namespace, API key or mTLS pair), the payload
// key, and the event that triggered the job. Secrets are masked before anything can print them.
import * as core from '@actions/core';
import type { Client } from '@temporalio/client';
import { readFile } from 'node:fs/promises';
import { connectClient } from '../../worker/connection.js';

export interface ActionConnection {
  client: Client;
  namespace: string;
  address: string;
}

export async function connectFromInputs(): Promise<ActionConnection> {
  const address = core.getInput('temporal-address', { required: true });
  const namespace = core.getInput('temporal-namespace') || 'default';
  const apiKey = core.getInput('temporal-api-key');
  const cert = core.getInput('temporal-tls-cert');
  const key = core.getInput('temporal-tls-key');
  const payloadKey = core.getInput('payload-key');
  for (const secret of [apiKey, key, payloadKey]) if (secret) core.setSecret(secret);
  if (!!cert !== !!key)
    throw new Error(
      `mTLS needs both temporal-tls-cert and temporal-tls-key; ${cert ? 'temporal-tls-key' : 'temporal-tls-cert'} is missing`,
    );
  // The payload codec reads its key from the environment, as on workers and the CLI.
  if (payloadKey) process.env.SECMLOPS_PAYLOAD_KEY = payloadKey;
  const tls = cert ? { clientCertPair: { crt: Buffer.from(cert), key: Buffer.from(key) } } : apiKey ? true : undefined;
  const client = await connectClient({
    connectionOptions: { address, ...(tls ? { tls } : {}), ...(apiKey ? { apiKey } : {}) },
    namespace,
  });
  return { client, namespace, address };
}

export interface GitHubContext {
  eventName: string;
  event: Record<string, unknown>;
  workspace: string;
}

export async function readContext(): Promise<GitHubContext> {
  const path = process.env.GITHUB_EVENT_PATH;
  if (!path) throw new Error('GITHUB_EVENT_PATH is not set: this action runs inside a GitHub Actions job');
  let event: Record<string, unknown>;
  try {
    event = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(
      `cannot read the event payload ${path} (GITHUB_EVENT_PATH): ${e instanceof SyntaxError ? 'not JSON' : ((e as NodeJS.ErrnoException).code ?? messageOf(e))}`,
    );
  }
  return {
    eventName: process.env.GITHUB_EVENT_NAME ?? '',
    event,
    workspace: process.env.GITHUB_WORKSPACE ?? process.cwd(),
  };
}

/** A link to the pipeline in the Temporal Web UI (or the console), for statuses and comments. */
export function runUrl(namespace: string, workflowId: string): string {
  const base = (core.getInput('ui-url') || 'https://cloud.temporal.io').replace(/\/+$/, '');
  return `${base}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

/** The message of whatever was thrown, for core.setFailed. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
