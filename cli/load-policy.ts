// Reads secmlops.yaml from disk for the CLI and the actions: the same bounded reader the workers' policy source uses.
import { readPolicyFile, type LoadedPolicy } from '../activities/policy-source.js';
import type { Policy } from '../policy/index.js';

export async function loadPolicy(path: string): Promise<Policy> {
  return readPolicyFile(path).policy;
}

/** The policy with its digest, for `verify --policy` (which refuses a policy other than the attested one). */
export async function loadPolicyWithDigest(path: string): Promise<LoadedPolicy> {
  return readPolicyFile(path);
}
