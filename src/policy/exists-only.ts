import type { DirectoryResource, Resource } from './schema.js'

/**
 * Per directory field: whether a directory resource may set it and still only ensure that
 * the directory exists. Typed over every field, so a field added to the schema (a `purge`,
 * say) fails to compile here until someone decides whether it changes an existing directory.
 */
const LEAVES_AN_EXISTING_DIRECTORY_ALONE = {
  id: true,
  description: true,
  requires: true,
  notify: true,
  type: true,
  path: true,
  ensure: true,
  mode: false,
  owner: false,
  group: false
} as const satisfies Record<keyof DirectoryResource, boolean>

/**
 * A directory resource that only makes sure the directory is there (`ensure: present`,
 * nothing that changes one that exists): a parent directory several policies can share.
 * Two of these never conflict, one never conflicts with a directory managed fully, it stays
 * within an admin's path limits when it is an ancestor of an allowed prefix, and a symlink
 * to a directory satisfies it. One test for all of them (apply-queue, trust, apply).
 */
export function isExistsOnlyDirectory (r: Resource): r is DirectoryResource {
  if (r.type !== 'directory' || r.ensure !== 'present') return false
  return Object.entries(r).every(([field, value]) => value === undefined || LEAVES_AN_EXISTING_DIRECTORY_ALONE[field as keyof DirectoryResource] === true)
}
