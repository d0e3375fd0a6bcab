// The artifact store in an S3-compatible bucket, so workers on different hosts share what they store. Objects are
// keyed by their SHA-256 (`<prefix>/sha256/ab/abcd…`), written once (a digest already present is not uploaded
// again) and hashed again on every download: the bucket is not trusted to return what was put. A local folder is
// the cache: the engine's jobs read files, and a worker that stored a model does not download it back.
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  LocalArtifactStore,
  MAX_ARTIFACT_BYTES,
  digestOf,
  type ArtifactStore,
  type StoredArtifact,
} from './artifact-store.js';

/** S3's smallest part but the last is 5 MiB; 16 MiB parts keep a 4 GiB artifact within 10,000 parts. */
export const DEFAULT_PART_BYTES = 16 * 1024 ** 2;

export interface S3Location {
  bucket: string;
  /** Without leading or trailing slashes; may be empty. */
  prefix: string;
}

/** Parses `s3://bucket/prefix`, naming what is wrong. */
export function parseS3Url(url: string): S3Location {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(url);
  if (!m) throw new Error(`artifact store "${url}": expected s3://bucket/prefix`);
  const bucket = m[1];
  // Bucket names per S3's rules (lowercase, digits, dots and hyphens, 3–63 characters).
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket))
    throw new Error(`artifact store "${url}": "${bucket}" is not a valid bucket name`);
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (prefix.split('/').some((p) => p === '..' || p === '.'))
    throw new Error(`artifact store "${url}": the prefix may not contain . or .. segments`);
  return { bucket, prefix };
}

export interface S3StoreOptions {
  client: S3Client;
  /** The local cache folder (a LocalArtifactStore's root). */
  cacheDir: string;
  partBytes?: number;
}

export class S3ArtifactStore implements ArtifactStore {
  private readonly cache: LocalArtifactStore;
  private readonly partBytes: number;
  private readonly client: S3Client;

  constructor(
    readonly where: S3Location,
    o: S3StoreOptions,
  ) {
    this.client = o.client;
    this.cache = new LocalArtifactStore(o.cacheDir);
    this.partBytes = o.partBytes ?? DEFAULT_PART_BYTES;
    if (this.partBytes < 5 * 1024 ** 2) throw new Error('S3 multipart parts must be at least 5 MiB');
  }

  get location(): string {
    return `s3://${this.where.bucket}${this.where.prefix ? `/${this.where.prefix}` : ''}`;
  }

  keyOf(digest: string): string {
    const d = digestOf(digest);
    return `${this.where.prefix ? `${this.where.prefix}/` : ''}sha256/${d.slice(0, 2)}/${d}`;
  }

  private urlOf(digest: string): string {
    return `s3://${this.where.bucket}/${this.keyOf(digest)}`;
  }

  async put(bytes: Uint8Array): Promise<StoredArtifact> {
    const stored = await this.cache.put(bytes);
    // The bytes given, not the cached file: whoever can write the cache folder cannot change what is uploaded.
    if (!(await this.exists(stored.digest))) await this.upload(stored.digest, bytes);
    return stored;
  }

  async get(ref: string, maxBytes = MAX_ARTIFACT_BYTES): Promise<Buffer> {
    const digest = digestOf(ref);
    try {
      return await this.cache.get(digest, maxBytes);
    } catch (e) {
      // Not cached (or the cached copy no longer matches): fetch it again; the download is checked.
      if (!isMissing(e)) await rm(this.cache.pathOf(digest), { force: true });
    }
    await this.download(digest, maxBytes);
    return this.cache.get(digest, maxBytes);
  }

  async localPath(digest: string): Promise<string> {
    const path = this.cache.pathOf(digest);
    const present = await stat(path).then(
      (s) => s.isFile(),
      () => false,
    );
    if (!present) await this.download(digestOf(digest), MAX_ARTIFACT_BYTES);
    return path;
  }

  private async exists(digest: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.where.bucket, Key: this.keyOf(digest) }));
      return true;
    } catch (e) {
      if (notFound(e)) return false;
      throw this.failure('cannot check', digest, e);
    }
  }

  /** One PUT up to a part's size; above it a multipart upload, a part at a time. */
  private async upload(digest: string, bytes: Uint8Array): Promise<void> {
    const Bucket = this.where.bucket;
    const Key = this.keyOf(digest);
    const size = bytes.length;
    if (size <= this.partBytes) {
      await this.client
        .send(new PutObjectCommand({ Bucket, Key, Body: bytes, ContentLength: size }))
        .catch((e: unknown) => {
          throw this.failure('cannot upload', digest, e);
        });
      return;
    }
    const { UploadId } = await this.client
      .send(new CreateMultipartUploadCommand({ Bucket, Key }))
      .catch((e: unknown) => {
        throw this.failure('cannot start the upload of', digest, e);
      });
    try {
      const parts: { ETag: string; PartNumber: number }[] = [];
      for (let offset = 0, n = 1; offset < size; offset += this.partBytes, n++) {
        const length = Math.min(this.partBytes, size - offset);
        const part = await this.client.send(
          new UploadPartCommand({
            Bucket,
            Key,
            UploadId,
            PartNumber: n,
            Body: bytes.subarray(offset, offset + length),
            ContentLength: length,
          }),
        );
        parts.push({ ETag: part.ETag!, PartNumber: n });
      }
      await this.client.send(
        new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts } }),
      );
    } catch (e) {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => undefined);
      throw this.failure('cannot upload', digest, e);
    }
  }

  /** Streams the object into the cache, refusing it past maxBytes or when its SHA-256 is not the digest. */
  private async download(digest: string, maxBytes: number): Promise<void> {
    const path = this.cache.pathOf(digest);
    let got;
    try {
      got = await this.client.send(new GetObjectCommand({ Bucket: this.where.bucket, Key: this.keyOf(digest) }));
    } catch (e) {
      if (notFound(e)) throw new Error(`artifact ${this.urlOf(digest)} is not in the store`);
      throw this.failure('cannot download', digest, e);
    }
    const body = got.Body as (AsyncIterable<Uint8Array> & { destroy?: () => void }) | undefined;
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    let out: FileHandle | undefined;
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      if (!body) throw new Error(`artifact ${this.urlOf(digest)}: the server sent no body`);
      if (got.ContentLength !== undefined && got.ContentLength > maxBytes)
        throw new Error(`artifact ${this.urlOf(digest)}: ${got.ContentLength} bytes, over the ${maxBytes}-byte limit`);
      await mkdir(dirname(path), { recursive: true });
      out = await open(tmp, 'wx');
      // In Node the body is an IncomingMessage: an async iterable of Buffers.
      for await (const chunk of body) {
        bytes += chunk.length;
        if (bytes > maxBytes)
          throw new Error(`artifact ${this.urlOf(digest)}: more than ${maxBytes} bytes, over the limit`);
        hash.update(chunk);
        await out.write(chunk);
      }
      const actual = hash.digest('hex');
      if (actual !== digest)
        throw new Error(`artifact ${this.urlOf(digest)} is corrupt or tampered: its SHA-256 is ${actual}`);
      await out.close();
      out = undefined;
      await rename(tmp, path);
    } catch (e) {
      // Every refusal closes the connection: a leaked socket per refused object would exhaust the client's pool.
      body?.destroy?.();
      await out?.close().catch(() => undefined);
      await rm(tmp, { force: true });
      throw e;
    }
  }

  private failure(what: string, digest: string, e: unknown): Error {
    const why = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    return new Error(`${what} artifact ${this.urlOf(digest)}: ${why}`);
  }
}

function isMissing(e: unknown): boolean {
  return /ENOENT/.test(String((e as Error).message));
}

function notFound(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return err.name === 'NotFound' || err.name === 'NoSuchKey' || err.$metadata?.httpStatusCode === 404;
}
