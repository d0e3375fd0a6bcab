// Connection settings from the environment (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*,
// or a TOML profile) through @temporalio/envconfig, shared by workers, the CLI and the actions.
import { Client, Connection, type ClientInterceptors, type ConnectionOptions } from '@temporalio/client';
import { defaultPayloadConverter, type DataConverter, type Payload } from '@temporalio/common';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { AesGcmCodec } from './codec.js';

export interface ConnectionConfig {
  connectionOptions: ConnectionOptions;
  namespace: string;
}

export function connectionConfigFromEnv(overrides: { address?: string; namespace?: string } = {}): ConnectionConfig {
  const config = loadClientConnectConfig();
  const connectionOptions = { ...config.connectionOptions } as ConnectionOptions;
  if (overrides.address) connectionOptions.address = overrides.address;
  if (!connectionOptions.address) connectionOptions.address = 'localhost:7233';
  return { connectionOptions, namespace: overrides.namespace ?? config.namespace ?? 'default' };
}

export function dataConverter(): DataConverter {
  const codec = AesGcmCodec.fromEnv();
  return codec ? { payloadCodecs: [codec] } : {};
}

export async function connectClient(
  config: ConnectionConfig = connectionConfigFromEnv(),
  interceptors?: ClientInterceptors,
): Promise<Client> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...config.connectionOptions, connectTimeout: '5s' });
  } catch (e) {
    throw new Error(
      `cannot reach Temporal at ${config.connectionOptions.address} (${(e as Error).message}); is the server running? \`npm start\` runs a local one`,
    );
  }
  return new Client({
    connection,
    namespace: config.namespace,
    dataConverter: dataConverter(),
    ...(interceptors ? { interceptors } : {}),
  });
}

/** Decodes raw payloads (heartbeat details from describe(), histories) the way this process's client would. */
export async function decodePayloads(payloads: Payload[] | null | undefined): Promise<unknown[]> {
  if (!payloads?.length) return [];
  const codec = AesGcmCodec.fromEnv();
  const plain = codec ? await codec.decode(payloads) : payloads;
  return plain.map((p) => defaultPayloadConverter.fromPayload(p));
}
