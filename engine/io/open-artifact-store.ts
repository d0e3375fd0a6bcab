// Chooses the artifact store from configuration: SECMLOPS_ARTIFACTS=s3://bucket/prefix selects an S3-compatible
// bucket (endpoint, region and credentials from the usual AWS variables); otherwise the local folder.
import { S3Client } from '@aws-sdk/client-s3';
import { LocalArtifactStore, type ArtifactStore } from './artifact-store.js';
import { S3ArtifactStore, parseS3Url } from './s3-artifact-store.js';

export interface StoreConfig {
  /** `s3://bucket/prefix`, or a folder; unset means the local folder `localDir`. */
  location?: string;
  /** The local folder: the store itself, or the S3 store's cache. */
  localDir: string;
  env?: NodeJS.ProcessEnv;
}

export function openArtifactStore(c: StoreConfig): ArtifactStore {
  const location = c.location?.trim();
  if (!location) return new LocalArtifactStore(c.localDir);
  if (!location.startsWith('s3://')) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location))
      throw new Error(`artifact store "${location}": only s3:// URLs and local folders are supported`);
    return new LocalArtifactStore(location);
  }
  return new S3ArtifactStore(parseS3Url(location), { client: s3Client(c.env ?? process.env), cacheDir: c.localDir });
}

/**
 * An S3 client from the standard variables: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL for MinIO, SeaweedFS and other
 * S3-compatible servers (path-style addressing then, since their buckets are rarely DNS names), AWS_REGION (default
 * us-east-1), and credentials through the SDK's usual chain (AWS_ACCESS_KEY_ID, profiles, instance roles).
 */
export function s3Client(env: NodeJS.ProcessEnv): S3Client {
  const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
  return new S3Client({
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    // Our own SHA-256 checks every byte; the SDK's default CRC checksums are not understood by every S3-compatible
    // server, so they are sent only where S3 requires them.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // A server that accepts a connection and then stalls (headers or body) fails the call instead of hanging it.
    requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000 },
  });
}
