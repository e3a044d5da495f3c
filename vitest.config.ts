import { defineConfig } from 'vitest/config';

// Temporal's native core and workflow sandboxes want real processes, not worker threads;
// one Temporal dev server and one PostgreSQL are shared by every test file (see test/global-setup.ts).
export default defineConfig({
  test: {
    pool: 'forks',
    globalSetup: ['./test/global-setup.ts'],
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    fileParallelism: true,
    poolOptions: { forks: { maxForks: 4 } },
  },
});
