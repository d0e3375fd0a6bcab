// Type-aware linting; workflow code additionally may not touch Node built-ins or I/O (Temporal's determinism rules).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const NODE_BUILTINS = [
  'fs',
  'path',
  'os',
  'crypto',
  'child_process',
  'net',
  'http',
  'https',
  'worker_threads',
  'zlib',
  'stream',
  'url',
  'util',
  'timers',
  'dns',
  'process',
];

export default tseslint.config(
  {
    ignores: [
      'node_modules/**',
      '.secmlops/**',
      'actions/*/dist/**',
      'actions/build.mjs',
      'bin/**',
      'test/global-*.js',
      'test/environment.js',
      'eslint.config.js',
      'jest.config.js',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    files: ['workflows/**/*.ts', 'policy/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...NODE_BUILTINS.flatMap((m) => [m, `node:${m}`]).map((name) => ({
              name,
              message: 'workflow code must be deterministic: no Node built-ins or I/O (see DESIGN.md)',
            })),
            {
              name: '../activities/index.js',
              importNames: ['Activities'],
              message: "proxy one queue's activities: CpuActivities, GpuActivities or ClientActivities",
            },
          ],
          patterns: [
            {
              group: ['../activities/*', '../worker/*', '../engine/*', '../cli/*'],
              allowTypeImports: true,
              message: 'workflows import only the types of activities; policy imports nothing with I/O',
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'setTimeout', message: 'use sleep() or condition() from @temporalio/workflow' },
        { name: 'Buffer', message: 'Buffer is not available in the workflow sandbox' },
      ],
    },
  },
  {
    // Imports run one way: training uses the attacks (adversarial training), the attacks never use training.
    files: ['engine/attacks/**/*.ts', 'engine/metrics/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['../train/*'], message: 'attacks and metrics do not import training (one way)' }] },
      ],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/unbound-method': 'off' },
  },
);
