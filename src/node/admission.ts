import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ADMISSION_FILE, AdmissionWrongPeerError, openAdmission, type AdmissionCertificate } from '../admission/index.js'

/**
 * The node's own certificate: the bytes given (`--admission`), else `<state>/admission.cert`
 * if present. Refused at start when it is not a certificate or names another peer id: a node
 * would otherwise run believing it is admitted while every other node counts it out.
 */
export async function loadAdmission (stateDir: string, given: Uint8Array | undefined, peerId: string): Promise<AdmissionCertificate | undefined> {
  let bytes = given
  const source = given !== undefined ? 'the admission certificate given' : join(stateDir, ADMISSION_FILE)
  if (bytes === undefined) {
    try {
      bytes = new Uint8Array(await readFile(source))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
  }
  const cert = openAdmission(bytes)
  if (cert.peer !== peerId) {
    throw new AdmissionWrongPeerError(`${source} admits ${cert.peer}, but this node's peer id is ${peerId} (its key is in ${join(stateDir, 'identity.key')}): issue one with \`grapevine admit ${peerId} --key ENROLLER.key\``)
  }
  return cert
}
