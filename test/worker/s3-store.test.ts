// The S3 artifact store against a real S3-compatible server (moto's server mode): what one worker puts another
// reads through its own cache, large artifacts go up in parts, and nothing the bucket returns is trusted unchecked.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalArtifactStore } from '../../engine/io/artifact-store.js';
import { openArtifactStore } from '../../engine/io/open-artifact-store.js';
import { S3ArtifactStore, parseS3Url } from '../../engine/io/s3-artifact-store.js';
import { startS3Server, type S3Server } from '../helpers/s3-server.js';

let s3: S3Server;
beforeAll(async () => {
  s3 = await startS3Server();
}, 60_000);
afterAll(async () => s3?.stop());

const cache = () => mkdtemp(join(tmpdir(), 's3-cache-'));
const storeOn = async (prefix = 'team/artifacts', partBytes?: number) =>
  new S3ArtifactStore(
    { bucket: s3.bucket, prefix },
    { client: s3.client, cacheDir: await cache(), ...(partBytes ? { partBytes } : {}) },
  );
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('S3 artifact store', () => {
  test('what one worker puts, another with an empty cache gets, checked, under the prefix', async () => {
    const [a, b] = [await storeOn(), await storeOn()];
    const bytes = randomBytes(100_000);
    const put = await a.put(bytes);
    expect(put.ref).toBe(`sha256:${sha(bytes)}`);
    expect(await readFile(put.path)).toEqual(bytes);
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: a.keyOf(put.digest) }));
    expect(head.ContentLength).toBe(100_000);
    expect(a.keyOf(put.digest)).toBe(`team/artifacts/sha256/${put.digest.slice(0, 2)}/${put.digest}`);
    expect(await b.get(put.ref)).toEqual(bytes);
    // The engine's jobs read files: the path is in b's own cache.
    const path = await (await storeOn()).localPath(put.digest);
    expect(await readFile(path)).toEqual(bytes);
    // Stored once: putting the same bytes again leaves one object.
    await b.put(bytes);
    const list = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'team/artifacts/' }));
    expect(list.Contents?.filter((o) => o.Key?.endsWith(put.digest))).toHaveLength(1);
  });

  test('a large artifact goes up in parts and comes back whole', async () => {
    const a = await storeOn('multipart', 5 * 1024 ** 2);
    const bytes = randomBytes(12 * 1024 ** 2 + 123);
    const put = await a.put(bytes);
    const got = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: a.keyOf(put.digest) }));
    // A multipart object's ETag is the MD5 of its parts' MD5s, suffixed by the number of parts.
    expect(got.ETag).toMatch(/-3"$/);
    await got.Body?.transformToByteArray();
    expect(sha(await (await storeOn('multipart', 5 * 1024 ** 2)).get(put.ref))).toBe(put.digest);
  }, 60_000);

  test('an object replaced in the bucket is refused by name, and nothing is cached', async () => {
    const a = await storeOn('tamper');
    const put = await a.put(Buffer.from('the real model'));
    await s3.client.send(
      new PutObjectCommand({ Bucket: s3.bucket, Key: a.keyOf(put.digest), Body: Buffer.from('a planted model') }),
    );
    const dir = await cache();
    const b = new S3ArtifactStore({ bucket: s3.bucket, prefix: 'tamper' }, { client: s3.client, cacheDir: dir });
    const url = `s3://${s3.bucket}/${a.keyOf(put.digest)}`;
    await expect(b.get(put.ref)).rejects.toThrow(`artifact ${url} is corrupt or tampered`);
    await expect(b.localPath(put.digest)).rejects.toThrow(`artifact ${url} is corrupt or tampered`);
    expect(await readdir(join(dir, 'sha256', put.digest.slice(0, 2)))).toEqual([]);
  });

  test('a tampered cache copy is fetched again from the bucket, checked', async () => {
    const dir = await cache();
    const a = new S3ArtifactStore({ bucket: s3.bucket, prefix: 'heal' }, { client: s3.client, cacheDir: dir });
    const put = await a.put(Buffer.from('weights'));
    await writeFile(put.path, 'weightz');
    expect((await a.get(put.ref)).toString()).toBe('weights');
  });

  test('size limits, missing artifacts and bad references are refused by name', async () => {
    const a = await storeOn('limits');
    const put = await a.put(randomBytes(4096));
    const reader = await storeOn('limits');
    await expect(reader.get(put.ref, 1000)).rejects.toThrow('4096 bytes, over the 1000-byte limit');
    // Refused more times than the client has sockets (50): each refusal closes its connection, so a bucket writer's
    // oversized objects cannot starve the worker's other transfers.
    for (let i = 0; i < 60; i++) await expect(reader.get(put.ref, 1000)).rejects.toThrow('over the 1000-byte limit');
    expect((await reader.get(put.ref)).length).toBe(4096);
    const absent = sha(Buffer.from('never stored'));
    await expect(a.get(absent)).rejects.toThrow(
      `artifact s3://${s3.bucket}/limits/sha256/${absent.slice(0, 2)}/${absent} is not in the store`,
    );
    await expect(a.get('sha256:../../etc/passwd')).rejects.toThrow('is not a SHA-256 digest');
  });

  test('configuration: s3:// URLs select the bucket, anything else a folder; bad URLs are named', async () => {
    expect(parseS3Url('s3://bucket-1/a/b/')).toEqual({ bucket: 'bucket-1', prefix: 'a/b' });
    expect(parseS3Url('s3://bucket-1')).toEqual({ bucket: 'bucket-1', prefix: '' });
    expect(() => parseS3Url('s3://Bad_Bucket/x')).toThrow('"Bad_Bucket" is not a valid bucket name');
    expect(() => parseS3Url('s3://bucket/../x')).toThrow('may not contain . or .. segments');
    const dir = await cache();
    expect(openArtifactStore({ localDir: dir })).toBeInstanceOf(LocalArtifactStore);
    expect(() => openArtifactStore({ location: 'gs://bucket/x', localDir: dir })).toThrow(
      'only s3:// URLs and local folders are supported',
    );
    const viaEnv = openArtifactStore({ location: `s3://${s3.bucket}/env`, localDir: dir, env: s3.env });
    expect(viaEnv.location).toBe(`s3://${s3.bucket}/env`);
    const saved = { ...process.env };
    Object.assign(process.env, s3.env);
    try {
      const put = await viaEnv.put(Buffer.from('through the environment'));
      expect((await storeOn('env').then((s) => s.get(put.ref))).toString()).toBe('through the environment');
    } finally {
      process.env = saved;
    }
  });
});
