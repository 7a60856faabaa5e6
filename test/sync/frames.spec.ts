import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeFrame, encodeFrame, MAX_FETCH_FRAME_BYTES, SyncProtocolError, type Frame } from '../../src/sync/index.js'

const HASH = `sha256:${'ab'.repeat(32)}`
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)
const typed = (code: number, payload: Uint8Array): Uint8Array => Uint8Array.from([code, ...payload])

describe('fetch and missing frames', () => {
  it.each<Frame>([
    { type: 'fetch', name: 'web/nginx', version: 7, hash: HASH },
    { type: 'fetch', name: 'a', version: Number.MAX_SAFE_INTEGER, hash: HASH },
    { type: 'missing' }
  ])('round-trips %j', (frame) => {
    expect(decodeFrame(encodeFrame(frame))).toEqual(frame)
  })

  it.each([
    ['a fetch that is not JSON', typed(6, utf8('nope')), /fetch frame is not UTF-8 JSON/],
    ['a fetch with a bad name', typed(6, utf8(JSON.stringify(['Bad Name', 1, HASH]))), /fetch frame is invalid/],
    ['a fetch with version 0', typed(6, utf8(JSON.stringify(['web/x', 0, HASH]))), /fetch frame is invalid/],
    ['a fetch with a fractional version', typed(6, utf8(JSON.stringify(['web/x', 1.5, HASH]))), /fetch frame is invalid/],
    ['a fetch with a bad hash', typed(6, utf8(JSON.stringify(['web/x', 1, 'sha256:00']))), /fetch frame is invalid/],
    ['a fetch with an extra element', typed(6, utf8(JSON.stringify(['web/x', 1, HASH, 'more']))), /fetch frame is invalid/],
    ['a fetch over its size bound', typed(6, utf8(JSON.stringify(['web/x', 1, HASH, 'x'.repeat(MAX_FETCH_FRAME_BYTES)]))), /exceeds 512/],
    ['a missing frame with a payload', typed(7, utf8('x')), /missing frame has a payload/],
    ['an unknown frame type', typed(8, new Uint8Array(0)), /unknown frame type 8/]
  ])('refuses %s', (_, bytes, message) => {
    expect(() => decodeFrame(bytes)).toThrow(SyncProtocolError)
    expect(() => decodeFrame(bytes)).toThrow(message)
  })

  it('decodes arbitrary bytes after a fetch or missing type to a frame or SyncProtocolError, nothing else', () => {
    fc.assert(fc.property(fc.constantFrom(6, 7), fc.uint8Array({ maxLength: 600 }), (code, payload) => {
      try {
        const frame = decodeFrame(typed(code, payload))
        expect(frame.type).toBe(code === 6 ? 'fetch' : 'missing')
      } catch (err) {
        expect(err).toBeInstanceOf(SyncProtocolError)
      }
    }))
  })

  it('round-trips any valid fetch request', () => {
    const name = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,20}(\/[a-z0-9][a-z0-9._-]{0,20}){0,3}$/)
    fc.assert(fc.property(name, fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (n, v, h) => {
      const frame: Frame = { type: 'fetch', name: n, version: v, hash: `sha256:${Buffer.from(h).toString('hex')}` }
      expect(decodeFrame(encodeFrame(frame))).toEqual(frame)
    }))
  })
})
