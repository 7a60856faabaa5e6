import { MAX_POLICY_DEPTH } from './constants.js'

export type DataKey = string | number

interface Frame {
  value: object
  /** Own keys of an object; undefined for an array. */
  keys: string[] | undefined
  length: number
  next: number
}

/**
 * Visits plain data (what JSON or YAML decodes to) depth first, in document order, without
 * recursion, so no nesting can overflow the stack. `enter` sees each value and its path (one
 * array, pushed and popped: copy it to keep it) and, for an object or array, returns whether
 * to go inside; `leave` runs once everything inside has been visited.
 */
export function walkData (root: unknown, enter: (value: unknown, path: readonly DataKey[]) => boolean, leave?: (value: object) => void): void {
  const path: DataKey[] = []
  const stack: Frame[] = []
  const open = (value: unknown): boolean => {
    if (!enter(value, path) || value === null || typeof value !== 'object') return false
    const keys = Array.isArray(value) ? undefined : Object.keys(value)
    stack.push({ value, keys, length: keys?.length ?? (value as unknown[]).length, next: 0 })
    return true
  }
  open(root)
  while (stack.length > 0) {
    const top = stack[stack.length - 1] as Frame
    if (top.next === top.length) {
      stack.pop()
      leave?.(top.value)
      if (stack.length > 0) path.pop()
      continue
    }
    const i = top.next++
    const key = top.keys === undefined ? i : top.keys[i] as string
    path.push(key)
    if (!open((top.value as Record<DataKey, unknown>)[key])) path.pop()
  }
}

/**
 * The path of the first object or array nested deeper than `limit` levels (the root counts
 * as one), or undefined. Cost is linear in the size of the data, whatever its shape.
 */
export function tooDeepAt (data: unknown, limit = MAX_POLICY_DEPTH): DataKey[] | undefined {
  let found: DataKey[] | undefined
  walkData(data, (value, path) => {
    if (found !== undefined || value === null || typeof value !== 'object') return false
    if (path.length >= limit) {
      found = [...path]
      return false
    }
    return true
  })
  return found
}
