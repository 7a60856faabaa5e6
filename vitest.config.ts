import { relative } from 'node:path'
import { defineConfig } from 'vitest/config'
import { BaseSequencer, type TestSpecification } from 'vitest/node'

/**
 * The longest files, started first. vitest orders by the durations of an earlier run, and
 * without one (CI's fresh clone) by file size, which puts these short files, each a minute or
 * more of simulated mesh, last: the suite then ends with one worker idle while the other runs
 * them. Started first, they run beside the many short files instead.
 */
const LONGEST_FIRST = [
  'test/sim/netns.spec.ts',
  'test/sim/scenarios-partitions.spec.ts',
  'test/sim/rollout-scenarios.spec.ts',
  'test/sim/scenarios.spec.ts',
  'test/node/agent.spec.ts',
  'test/cli/agent.spec.ts',
  'test/cli/rollout.spec.ts',
  'test/cli/publish.spec.ts',
  'test/cli/deb.spec.ts',
  'test/node/timers.spec.ts',
  'test/cli/enroll.spec.ts'
]

class LongestFirst extends BaseSequencer {
  override async sort (files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files)
    const rank = (f: TestSpecification): number => {
      const i = LONGEST_FIRST.indexOf(relative(process.cwd(), f.moduleId))
      return i < 0 ? LONGEST_FIRST.length : i
    }
    return sorted.map((f, i) => ({ f, i })).sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i).map(({ f }) => f)
  }
}

export default defineConfig({
  test: {
    include: ['test/**/*.spec.ts'],
    setupFiles: ['src/shim.ts'],
    // Network tests start real libp2p peers; give them room on a shared 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Most files wait on sockets, child processes, sshd, dpkg and timers, not the CPU: two at a
    // time on this 2-core machine (vitest's default is cores - 1, one file at a time) took the
    // suite from about 520 s to 290 s; with the release, enroll and netns files, two at a time
    // kept the CPU 60% busy (552 s of tests in a fresh-clone CI run) and three took 402 s. Deadlines wait for events,
    // so the shared CPU slows tests, not fails them.
    maxWorkers: 3,
    minWorkers: 1,
    sequence: { sequencer: LongestFirst }
  }
})
