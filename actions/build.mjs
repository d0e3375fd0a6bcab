// Bundles each action's src/index.ts with its dependencies into dist/index.cjs, the file action.yml runs. The bundles
// are committed (GitHub runs actions without installing them); test/actions/dist.test.ts rebuilds into a temporary
// folder and fails when a committed bundle differs. Usage: node actions/build.mjs [--out DIR]
import { build } from 'esbuild';
import { join } from 'node:path';

export const ACTIONS = ['start', 'gate', 'approve'];

const i = process.argv.indexOf('--out');
const outRoot = i > 0 ? process.argv[i + 1] : undefined;
for (const name of ACTIONS) {
  await build({
    entryPoints: [`actions/${name}/src/index.ts`],
    outfile: outRoot ? join(outRoot, name, 'index.cjs') : `actions/${name}/dist/index.cjs`,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: true,
    // Typed workflow handles start workflows by the function's name (client.workflow.start(secmlopsPipeline, …)).
    keepNames: true,
    legalComments: 'linked',
    logLevel: 'warning',
  });
}
