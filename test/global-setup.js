// One dev server and one workflow bundle for the whole run; tests that restart or crash things start their own.
// Plain JS loaded natively by jest, importing the TypeScript it needs through tsx.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tsImport } from 'tsx/esm/api';

export default async function globalSetup() {
  const { bundleWorkflowCode } = await import('@temporalio/worker');
  const { startDevServer } = await tsImport('../worker/dev-server.ts', import.meta.url);
  const { WORKFLOWS_PATH, WORKFLOW_PRELOADS } = await tsImport('../worker/workers.ts', import.meta.url);
  const dir = join('.secmlops', 'test');
  await mkdir(dir, { recursive: true });
  const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error };
  const { code } = await bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    preloadModules: WORKFLOW_PRELOADS,
    logger: quiet,
  });
  const bundlePath = join(dir, 'workflow-bundle.js');
  await writeFile(bundlePath, code);
  process.env.SECMLOPS_TEST_BUNDLE = bundlePath;
  const env = await startDevServer({ log: (l) => console.log(l) });
  process.env.SECMLOPS_TEST_ADDRESS = env.address;
  globalThis.__secmlopsTestEnv = env;
}
