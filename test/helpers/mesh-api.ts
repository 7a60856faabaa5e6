import { afterEach } from 'vitest'
import type { TestMesh } from '../node/fixtures.js'
import type { ApiServer } from '../../src/node/api.js'

export interface MeshWithApi {
  mesh?: TestMesh
  api?: ApiServer
}

/** Holds the mesh and the agent API a test starts, and closes both after each test. */
export function meshWithApi (): MeshWithApi {
  const rig: MeshWithApi = {}
  afterEach(async () => {
    await rig.api?.close()
    await rig.mesh?.stop()
    rig.mesh = undefined
    rig.api = undefined
  })
  return rig
}
