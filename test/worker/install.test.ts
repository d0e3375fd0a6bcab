// A newcomer's `npm install`: no variable set, no download outside the npm registry, no engine warning on any
// Node.js version the project supports. `.ci/run` runs the install itself; these tests pin why it works.
import { describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import semver from 'semver';

const run = promisify(execFile);

interface LockEntry {
  engines?: { node?: string } | string[];
  optional?: boolean;
  os?: string[];
  cpu?: string[];
}

/** The environment of a fresh shell: none of the install switches a CI script might have exported. */
function freshEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (/^(npm_config_|ONNXRUNTIME_NODE_INSTALL)/i.test(k)) delete env[k];
  return env;
}

describe('npm install on a fresh machine', () => {
  test("every locked package accepts every Node.js version in the project's engines range", async () => {
    const pkg = JSON.parse(await readFile('package.json', 'utf8')) as { engines: { node: string } };
    const lock = JSON.parse(await readFile('package-lock.json', 'utf8')) as { packages: Record<string, LockEntry> };
    const range = pkg.engines.node;
    expect(semver.validRange(range)).not.toBeNull();
    expect(semver.satisfies(process.version, range)).toBe(true);
    const narrower: string[] = [];
    for (const [name, entry] of Object.entries(lock.packages)) {
      const wanted = entry.engines && !Array.isArray(entry.engines) ? entry.engines.node : undefined;
      // Platform builds for other systems are never installed here; their engines do not warn.
      const elsewhere =
        entry.optional && (entry.os || entry.cpu) && !(entry.os ?? [process.platform]).includes(process.platform);
      if (wanted && !elsewhere && !semver.subset(range, wanted)) narrower.push(`${name} wants node ${wanted}`);
    }
    expect(narrower).toEqual([]);
  });

  test('allowScripts names every locked package with an install script; onnxruntime-node is denied', async () => {
    const pkg = JSON.parse(await readFile('package.json', 'utf8')) as { allowScripts: Record<string, boolean> };
    const lock = JSON.parse(await readFile('package-lock.json', 'utf8')) as {
      packages: Record<string, { hasInstallScript?: boolean }>;
    };
    const scripted = new Set(
      Object.entries(lock.packages)
        .filter(([, e]) => e.hasInstallScript)
        .map(([k]) => k.slice(k.lastIndexOf('node_modules/') + 'node_modules/'.length)),
    );
    // npm ≥ 11.16 lists every dependency script not covered; npm 12 blocks them.
    expect([...scripted].filter((name) => !(name in pkg.allowScripts))).toEqual([]);
    expect(pkg.allowScripts['onnxruntime-node']).toBe(false);
    expect(pkg.allowScripts['better-sqlite3']).toBe(true);
  });

  test('npm that reads allowScripts does not run onnxruntime-node’s download even when cuda12 is asked', async () => {
    const { stdout: version } = await run('npm', ['--version'], { env: freshEnv() });
    // Older npm ignores allowScripts; there the project .npmrc (next test) keeps the CPU build.
    if (!semver.gte(version.trim(), '11.16.0')) return;
    const { stdout } = await run('npm', ['rebuild', 'onnxruntime-node', '--foreground-scripts'], {
      env: { ...freshEnv(), GLOBAL_AGENT_HTTPS_PROXY: 'http://127.0.0.1:9', ONNXRUNTIME_NODE_INSTALL: 'cuda12' },
      timeout: 120_000,
    });
    expect(stdout).toContain('rebuilt dependencies successfully');
  }, 150_000);

  test('the project config tells onnxruntime-node to keep its CPU build (no CUDA download)', async () => {
    const { stdout } = await run('npm', ['config', 'get', 'onnxruntime-node-install'], { env: freshEnv() });
    expect(stdout.trim()).toBe('skip');
  });

  test('with that config the install script finishes without the network; cuda12 in the environment wins', async () => {
    // A copy of onnxruntime-node's own install script, so nothing it might fetch lands in the real node_modules.
    const dir = await mkdtemp(join(tmpdir(), 'secmlops-ort-'));
    try {
      await symlink(resolve('node_modules'), join(dir, 'node_modules'));
      await cp(resolve('node_modules/onnxruntime-node/script'), join(dir, 'ort', 'script'), { recursive: true });
      await cp(resolve('node_modules/onnxruntime-node/package.json'), join(dir, 'ort', 'package.json'));
      const script = join(dir, 'ort', 'script', 'install.js');
      // A dead proxy: if the script tries to download, it fails at once instead of reaching NuGet.
      const offline = {
        ...freshEnv(),
        GLOBAL_AGENT_HTTP_PROXY: 'http://127.0.0.1:9',
        GLOBAL_AGENT_HTTPS_PROXY: 'http://127.0.0.1:9',
      };
      // npm passes the project's .npmrc to install scripts as npm_config_* variables.
      await run(process.execPath, [script], {
        env: { ...offline, npm_config_onnxruntime_node_install: 'skip' },
        timeout: 30_000,
      });
      const gpu = run(process.execPath, [script], {
        env: { ...offline, npm_config_onnxruntime_node_install: 'skip', ONNXRUNTIME_NODE_INSTALL: 'cuda12' },
        timeout: 30_000,
      });
      await expect(gpu).rejects.toMatchObject({ stderr: expect.stringMatching(/nuget|ECONNREFUSED|127\.0\.0\.1:9/i) });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
