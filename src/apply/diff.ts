import { hash } from 'node:crypto'
import { MAX_DIFF_BYTES, MAX_DIFF_EDIT_LENGTH, MAX_DIFF_INPUT_BYTES } from './constants.js'

/** `sha256:1f2e3d4c5b6a (120 bytes)`: enough to tell contents apart in a report. */
export function describeContent (content: Uint8Array): string {
  // One-shot hash: a report describes every file it creates, and createHash costs four times as much per small file.
  return `sha256:${hash('sha256', content, 'hex').slice(0, 12)} (${content.length} byte${content.length === 1 ? '' : 's'})`
}

function isText (content: Uint8Array): boolean {
  if (content.includes(0)) return false
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(content)
    return true
  } catch {
    return false
  }
}

/**
 * A unified diff from `before` to `after` for people to read, or undefined when one side
 * is binary, either is too large, or they differ too much to diff cheaply. Bounded; the
 * diff library is loaded on first use, since most runs never diff anything.
 */
export async function unifiedDiff (path: string, before: Uint8Array, after: Uint8Array): Promise<string | undefined> {
  if (before.length > MAX_DIFF_INPUT_BYTES || after.length > MAX_DIFF_INPUT_BYTES) return undefined
  if (!isText(before) || !isText(after)) return undefined
  const { createTwoFilesPatch } = await import('diff')
  const a = Buffer.from(before).toString('utf8')
  const b = Buffer.from(after).toString('utf8')
  const patch = createTwoFilesPatch(`a${path}`, `b${path}`, a, b, undefined, undefined, { context: 3, maxEditLength: MAX_DIFF_EDIT_LENGTH })
  if (patch === undefined) return undefined
  // Drop the "=====" separator line the library puts first; keep ---/+++ and hunks.
  const text = patch.replace(/^={10,}\n/, '')
  if (text.length <= MAX_DIFF_BYTES) return text
  const cut = text.lastIndexOf('\n', MAX_DIFF_BYTES)
  return `${text.slice(0, cut + 1)}... (diff cut at ${MAX_DIFF_BYTES} bytes)\n`
}
