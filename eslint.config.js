// Lint config: typescript-eslint's recommended type-aware rules over all sources.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'flows/*/dist/**', 'node_modules/**', '.apiary/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  // Layering (README, "Architecture"): the kernel imports no extension and no application; extensions
  // import no application; devices do not read the runtime's config (their own section is devices/config.ts).
  {
    files: ['runtime/core/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [
      { group: ['**/extensions/**', '**/apps/**'], message: 'the kernel (runtime/core) may not import extensions or applications: give them what they need through NodeContext or an event' },
    ] }] },
  },
  {
    files: ['runtime/extensions/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [
      { group: ['**/apps/**'], message: 'an extension may not import an application: applications build on extensions, not the other way round' },
    ] }] },
  },
  {
    files: ['devices/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [
      { group: ['**/runtime/config/schema*', '**/runtime/config/load-config*', '**/runtime/config/default-config*', '**/runtime/core/**', '**/runtime/extensions/**', '**/runtime/apps/**'], message: 'devices may not import the runtime\'s config or node: the device section is devices/config.ts, and the node sees devices only through devices/device.ts' },
    ] }] },
  },
  { files: ['eslint.config.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
);
