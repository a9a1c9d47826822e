// @ts-check
import eslint from '@eslint/js'
import { defineConfig, globalIgnores } from 'eslint/config'
import tseslint from 'typescript-eslint'

/** The stage folders import nothing upward: not the side folders, not the composition files (README, How it works). */
const UPWARD = ['**/config/**', '**/cluster/**', '**/admin/**', '**/reload/**'].concat(
  ['cli', 'proxy', 'operations', 'data-plane', 'pipeline', 'filter', 'sibling-module'].map(
    (file) => `**/src/${file}.ts`,
  ),
  ['cli', 'proxy', 'operations', 'data-plane', 'pipeline', 'filter', 'sibling-module'].map((file) => `../${file}.ts`),
)

export default defineConfig(
  globalIgnores(['dist/', 'node_modules/', '.tap/', 'bench/results/']),
  eslint.configs.recommended,
  tseslint.configs.strict,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // The type-aware rules that catch real bugs in async code, cheap with the project service.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
    },
  },
  {
    // tap queues subtests: t.test() returns a promise the runner awaits, by design never the caller.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafePromises: [{ from: 'package', package: '@tapjs/core', name: 'PromiseWithSubtest' }] },
      ],
    },
  },
  {
    files: ['src/{scan,match,batch,send,receive,telemetry,net}/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: UPWARD, message: 'stage folders import nothing upward' }] },
      ],
    },
  },
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
)
