import { defineConfig } from 'vitest/config';

// Each test file opens its own Dawn device on lavapipe, which already uses every core:
// running files in parallel only adds contention, so files run one after another.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    // Timeouts guard against hangs, they never judge speed: a cold Mesa shader cache on a loaded
    // 2-core machine took a matmul test past 120 s (it takes 1-20 s on a quiet one), so the
    // guard is 5 minutes. Child processes are awaited, never spawnSync'd (test/support/spawn.ts):
    // the worker must keep answering vitest's RPC, whose 60 s timeout no option changes.
    testTimeout: 300_000,
    hookTimeout: 300_000,
    env: { XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
  },
});
