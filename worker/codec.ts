// Encrypts every payload that travels through Temporal (policy, names, comments) with AES-256-GCM when a key is set.
import type { Payload, PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

// @temporalio/proto is CommonJS; its namespaces come through the default export under native ESM.
const { temporal } = proto;
const ENCODING = 'binary/encrypted';
const encoder = new TextEncoder();

export class AesGcmCodec implements PayloadCodec {
  private readonly keyId: string;

  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error(`the payload key must be 32 bytes (AES-256), got ${key.length}`);
    this.keyId = createHash('sha256').update(key).digest('hex').slice(0, 16);
  }

  /** From SECMLOPS_PAYLOAD_KEY (base64 of 32 bytes); undefined when unset, so payloads stay plain. */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): AesGcmCodec | undefined {
    const text = env.SECMLOPS_PAYLOAD_KEY;
    if (!text) return undefined;
    const key = Buffer.from(text, 'base64');
    if (key.length !== 32)
      throw new Error(
        `SECMLOPS_PAYLOAD_KEY must be base64 of 32 random bytes (try: openssl rand -base64 32); it decodes to ${key.length} bytes`,
      );
    return new AesGcmCodec(key);
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', this.key, iv);
      const plain = temporal.api.common.v1.Payload.encode(p).finish();
      const data = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: { encoding: encoder.encode(ENCODING), 'encryption-key-id': encoder.encode(this.keyId) },
        data,
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => {
      if (new TextDecoder().decode(p.metadata?.encoding ?? new Uint8Array()) !== ENCODING) return p;
      const keyId = new TextDecoder().decode(p.metadata?.['encryption-key-id'] ?? new Uint8Array());
      if (keyId !== this.keyId)
        throw new Error(`payload was encrypted with key ${keyId}, but this process holds key ${this.keyId}`);
      const data = Buffer.from(p.data ?? new Uint8Array());
      const decipher = createDecipheriv('aes-256-gcm', this.key, data.subarray(0, 12));
      decipher.setAuthTag(data.subarray(data.length - 16));
      const plain = Buffer.concat([decipher.update(data.subarray(12, data.length - 16)), decipher.final()]);
      return temporal.api.common.v1.Payload.decode(plain);
    });
  }
}
