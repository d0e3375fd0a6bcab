// Reading a policy from a folder: the worker's local policy source, and the CLI's own files. Inside a policy source
// nothing is resolved outside its root (the policy and every key file it names), and every read is bounded: only
// regular files (no FIFO, no /dev/zero), at most a megabyte of policy and a few kilobytes of key.
import { realpathSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { RegularFileError, readRegularSync } from '../engine/io/regular-file.js';
import { PolicyError, parsePolicyWithDigest, type Policy } from '../policy/index.js';
import { MAX_KEY_FILE_BYTES } from './keys.js';

export { MAX_KEY_FILE_BYTES };
export const MAX_POLICY_BYTES = 1 << 20;

export interface LoadedPolicy {
  policy: Policy;
  /** policyDigest() over the YAML and the key files it pins. */
  digest: string;
  /** The policy file's absolute path. */
  path: string;
}

/**
 * Reads and validates a policy. With `root`, the file and its key files must lie inside root (after symlinks are
 * resolved). Relative dataset and model paths are resolved against the policy's folder. Shown names in errors are
 * relative to the current directory, or to root.
 */
export function readPolicyFile(path: string, opts: { root?: string; shownAs?: string } = {}): LoadedPolicy {
  const root = opts.root === undefined ? undefined : realpathOr(opts.root, opts.root, '');
  const target = resolve(root ?? process.cwd(), path);
  const shown = opts.shownAs ?? (relative(root ?? process.cwd(), target) || path);
  const real = realpathOr(target, shown, '');
  if (root !== undefined && !inside(root, real))
    throw new PolicyError(shown, '', `the policy file is outside the policy source ${root}`);
  const text = readBounded(real, MAX_POLICY_BYTES, (why) => new PolicyError(shown, '', why));
  const dir = dirname(real);
  const { policy, digest } = parsePolicyWithDigest(text, {
    file: shown,
    readKeyFile: (p) => {
      const keyPath = realpathOr(resolve(dir, p), shown, `key file ${p}`);
      if (root !== undefined && !inside(root, keyPath))
        throw new PolicyError(shown, '', `key file ${p} is outside the policy source ${root}`);
      return readBounded(keyPath, MAX_KEY_FILE_BYTES, (why) => new PolicyError(shown, '', `key file ${p}: ${why}`));
    },
  });
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(dir, p));
  if (policy.artifacts.dataset) policy.artifacts.dataset.root = abs(policy.artifacts.dataset.root);
  if (policy.artifacts.model) policy.artifacts.model.path = abs(policy.artifacts.model.path);
  if (policy.train?.distill?.teacher) policy.train.distill.teacher.path = abs(policy.train.distill.teacher.path);
  return { policy, digest, path: real };
}

export function inside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

function realpathOr(path: string, shown: string, what: string): string {
  try {
    return realpathSync(path);
  } catch (e) {
    throw new PolicyError(
      shown,
      '',
      `cannot read ${what || 'the policy file'} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
}

/** The whole file as UTF-8, refusing anything but a regular file of at most max bytes (checked on the open file). */
export function readBounded(path: string, max: number, error: (why: string) => Error): string {
  try {
    return readRegularSync(path, max).toString('utf8');
  } catch (e) {
    throw e instanceof RegularFileError ? error(e.why) : e;
  }
}
