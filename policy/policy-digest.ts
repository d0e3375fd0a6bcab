// The policy's identity: a digest of its YAML text and of every key file it pins, as read from the policy source.
// Inline base64 keys are inside the YAML already. The digest goes into the pipeline's status, every piece of
// evidence and the attestation; `verify --policy F` refuses an F whose digest differs.
import { digestOf } from './canonical.js';
import { own } from './own.js';
import { parsePolicy, type ParseOptions } from './parse.js';
import type { Policy } from './types.js';

export function policyDigest(yaml: string, keyFiles: Record<string, string>): string {
  const keys = Object.keys(keyFiles)
    .sort()
    .map((path) => [path, own(keyFiles, path)]);
  return digestOf('secmlops-policy-v1', { yaml, keys });
}

/** Parses a policy and computes its digest over the text and exactly the key files the parser read. */
export function parsePolicyWithDigest(text: string, opts: ParseOptions): { policy: Policy; digest: string } {
  // A Map, not an object: `read["__proto__"] = text` would store nothing, leaving that key file out of the digest.
  const read = new Map<string, string>();
  const readKeyFile = opts.readKeyFile
    ? (path: string) => {
        const content = opts.readKeyFile!(path);
        read.set(path, content);
        return content;
      }
    : undefined;
  const policy = parsePolicy(text, { ...opts, readKeyFile });
  return { policy, digest: policyDigest(text, Object.fromEntries(read)) };
}
