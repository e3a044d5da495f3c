import { defineConfig } from 'vitest/config';

// `npm run test:cluster`: the production-shape test on a real Temporal server (platform/cluster.ts).
// No global dev server or shared PostgreSQL: the cluster brings its own.
export default defineConfig({
  test: {
    pool: 'forks',
    include: ['test/platform/cluster*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    fileParallelism: false,
  },
});
