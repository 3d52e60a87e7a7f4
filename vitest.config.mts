import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The live suite runs real Redis processes and measures failovers: it must not share
    // the two cores with other test files.
    fileParallelism: false,
    // Live tests set their own timeouts (about 3x what they take). The hooks start a cluster
    // (up to 120 s for the pods to be ready, 60 s for the client) or, after a failed test,
    // gather its report before stopping it.
    testTimeout: 60_000,
    hookTimeout: 240_000,
  },
});
