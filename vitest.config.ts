import { defineConfig } from 'vitest/config';

// Each test file opens its own Dawn device on lavapipe, which already uses every core:
// running files in parallel only adds contention, so files run one after another.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    env: { XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
  },
});
