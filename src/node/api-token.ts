import { randomBytes } from 'node:crypto'
import { unlink } from 'node:fs/promises'
import { writeFileAtomic } from '../store/index.js'
import { API_TOKEN_BYTES, apiTokenPath } from './api-access.js'

/** Writes a new TCP API token, readable by the agent's user only (0600 from the first byte), and returns it. */
export async function createApiToken (stateDir: string): Promise<string> {
  const token = randomBytes(API_TOKEN_BYTES).toString('base64url')
  await writeFileAtomic(apiTokenPath(stateDir), token + '\n', { mode: 0o600 })
  return token
}

/** Removes a token left by an earlier run that served TCP: with no TCP API, no token should be valid. */
export async function removeApiToken (stateDir: string): Promise<void> {
  await unlink(apiTokenPath(stateDir)).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw err })
}
