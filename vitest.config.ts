import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.spec.ts'],
    setupFiles: ['src/shim.ts'],
    // Network tests start real libp2p peers; give them room on a shared 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Most files wait on sockets, child processes and timers, not the CPU: two at a time on this
    // 2-core machine (vitest's default is cores - 1, one file at a time) takes the suite from
    // about 520 s to 290 s. Deadlines wait for events, so the shared CPU slows tests, not fails them.
    maxWorkers: 2,
    minWorkers: 1
  }
})
