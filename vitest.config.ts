import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // Integration tests start real brokers and child processes; give them room
    // on a 2-core board or CI machine, but never assert on timing.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
