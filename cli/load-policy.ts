// Reads secmlops.yaml from disk: resolves key files and relative paths against the policy's folder, then parses.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { PolicyError, parsePolicy, type Policy } from '../policy/index.js';

export async function loadPolicy(path: string): Promise<Policy> {
  const shown = relative(process.cwd(), resolve(path)) || path;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new PolicyError(shown, '', `cannot read the policy file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const dir = dirname(resolve(path));
  const policy = parsePolicy(text, { file: shown, readKeyFile: (p) => readFileSync(resolve(dir, p), 'utf8') });
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(dir, p));
  if (policy.artifacts.dataset) policy.artifacts.dataset.root = abs(policy.artifacts.dataset.root);
  if (policy.artifacts.model) policy.artifacts.model.path = abs(policy.artifacts.model.path);
  return policy;
}
