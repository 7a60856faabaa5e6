import { describe, expect, it } from 'vitest'
import { meshHead } from '../../src/client/publisher.js'
import type { DigestEntry } from '../../src/sync/index.js'

const entry = (version: number, id: string): DigestEntry => ({ name: 'web/site', version, hash: `sha256:${id.repeat(64).slice(0, 64)}`, id: id.repeat(64).slice(0, 64) })
const honest = entry(2, 'a')
const lie = entry(Number.MAX_SAFE_INTEGER - 1, 'f')

describe('meshHead: a publisher never takes one peer\'s word for the head', () => {
  it.each<[string, Array<{ peer: string, entry?: DigestEntry }>, DigestEntry | undefined]>([
    ['nobody holds the name', [{ peer: 'p1' }, { peer: 'p2' }], undefined],
    ['the only peer answering', [{ peer: 'p1', entry: honest }], honest],
    ['two peers agree', [{ peer: 'p1', entry: honest }, { peer: 'p2', entry: honest }], honest],
    ['one peer holds it, the others nothing', [{ peer: 'p1', entry: honest }, { peer: 'p2' }], honest],
    ['two agree, a third lags', [{ peer: 'p1', entry: honest }, { peer: 'p2', entry: honest }, { peer: 'p3', entry: entry(1, 'b') }], honest]
  ])('%s', (_, answers, expected) => {
    expect(meshHead('web/site', answers)).toEqual(expected)
  })

  it.each<[string, Array<{ peer: string, entry?: DigestEntry }>]>([
    ['a malicious bootstrap claims 2^53 − 2 that no other peer backs', [{ peer: 'rogue', entry: lie }, { peer: 'p1', entry: honest }, { peer: 'p2', entry: honest }]],
    ['two peers disagree and none is backed', [{ peer: 'p1', entry: honest }, { peer: 'p2', entry: entry(3, 'c') }]]
  ])('refuses when %s, naming the claims', (_, answers) => {
    expect(() => meshHead('web/site', answers)).toThrow(/peers disagree on the newest web\/site: .*no version is held by two of them/)
  })
})
