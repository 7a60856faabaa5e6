import * as lp from 'it-length-prefixed'
import { scopedSignal } from '../sync/index.js'
import { pipe } from 'it-pipe'
import type { GrapevineLibp2p, PeerId } from '../net/libp2p.js'
import { ADMISSION_GRACE_MS, ADMISSION_PROTOCOL, MAX_ADMISSION_BYTES, openAdmission, type AdmissionCertificate, type AdmissionStatus } from '../admission/index.js'
import type { Clock } from './clock.js'
import type { Logger } from './logger.js'
import { ADMISSION_RECHECK_MS } from './constants.js'
import { AdmissionStreamError } from './errors.js'


/** What it-length-prefixed throws for a frame that is no frame: the peer sent garbage. */
const GARBAGE_ERRORS: ReadonlySet<string> = new Set(['InvalidDataLengthError', 'InvalidDataLengthLengthError', 'InvalidMessageLengthError'])
/**
 * `/grapevine/admission/1.0.0`: on every new connection each side opens one stream to the
 * other and sends its certificate as one length-prefixed frame, then closes it. Under
 * `--admitted-only` (`enforce`), a peer that has not shown a certificate that holds for its own
 * peer id within the grace, or shows one that does not, or sends anything else, is dropped and
 * blocked for a while (docs/admission.md).
 */
export type AdmissionGateNet = Pick<GrapevineLibp2p, 'handle' | 'unhandle' | 'dialProtocol' | 'addEventListener' | 'removeEventListener' | 'getPeers'>

export interface AdmissionGateComponents {
  net: AdmissionGateNet
  /** This node's certificate as it travels; without one, nothing is sent. */
  certificate?: Uint8Array
  /** Refuse unadmitted peers (`--admitted-only`); otherwise the gate only shows this node's certificate. */
  enforce: boolean
  graceMs?: number
  /** A peer's standing under the trust policy held now (admissionStatus). */
  judge: (cert: AdmissionCertificate | undefined, peer: string) => AdmissionStatus
  /** Drops and blocks a peer (Peers.block with an expiry). */
  refuse: (peer: string, reason: string) => Promise<void>
  clock: Pick<Clock, 'after' | 'repeat'>
  log: Logger
  signal: AbortSignal
}

export class AdmissionGate {
  /** Certificates shown by connected peers (opened: shape and signature), judged again whenever asked. */
  private readonly shown = new Map<string, AdmissionCertificate>()
  private readonly graceTimers = new Map<string, () => void>()
  private cancelRecheck?: () => void

  constructor (private readonly c: AdmissionGateComponents) {}

  private readonly onConnect = (evt: CustomEvent<PeerId>): void => {
    const peer = evt.detail
    void this.show(peer)
    if (!this.c.enforce) return
    const id = peer.toString()
    this.graceTimers.get(id)?.()
    this.graceTimers.set(id, this.c.clock.after(this.c.graceMs ?? ADMISSION_GRACE_MS, () => {
      this.graceTimers.delete(id)
      this.check(id)
    }))
  }

  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => {
    const id = evt.detail.toString()
    // The grace starts again at the next connection; a closed connection is not a refusal.
    this.graceTimers.get(id)?.()
    this.graceTimers.delete(id)
    this.shown.delete(id)
  }

  async start (): Promise<void> {
    this.c.net.addEventListener('peer:connect', this.onConnect)
    this.c.net.addEventListener('peer:disconnect', this.onDisconnect)
    if (!this.c.enforce) return
    await this.c.net.handle(ADMISSION_PROTOCOL, ({ stream, connection }) => {
      void (async () => {
        const from = connection.remotePeer.toString()
        const deadline = this.c.clock.after(this.c.graceMs ?? ADMISSION_GRACE_MS, () => { stream.abort(new AdmissionStreamError(`no certificate within ${this.c.graceMs ?? ADMISSION_GRACE_MS} ms`)) })
        let bytes: Uint8Array | undefined
        try {
          // One frame per stream: the first is read and the stream closed, whatever follows.
          for await (const frame of lp.decode(stream.source, { maxDataLength: MAX_ADMISSION_BYTES })) {
            bytes = frame.subarray()
            break
          }
          await stream.close()
        } catch (err) {
          stream.abort(err as Error)
          this.c.log.debug({ peer: from, err: (err as Error).message }, 'admission stream failed')
          // A frame over the bound, or a prefix that is no length, is garbage. A timeout, or a
          // connection that dropped mid-frame (an honest peer on a flaky link), is left to the grace.
          if (GARBAGE_ERRORS.has((err as Error).name)) void this.refuse(from, 'garbage')
          return
        } finally {
          deadline()
        }
        this.take(from, bytes)
      })()
    }, { maxInboundStreams: 4 })
    this.cancelRecheck = this.c.clock.repeat(ADMISSION_RECHECK_MS, () => {
      for (const peer of this.c.net.getPeers()) if (!this.graceTimers.has(peer.toString())) this.check(peer.toString())
    })
  }

  async stop (): Promise<void> {
    this.c.net.removeEventListener('peer:connect', this.onConnect)
    this.c.net.removeEventListener('peer:disconnect', this.onDisconnect)
    for (const cancel of this.graceTimers.values()) cancel()
    this.graceTimers.clear()
    this.cancelRecheck?.()
    if (this.c.enforce) await this.c.net.unhandle(ADMISSION_PROTOCOL)
  }

  /** A frame a peer sent: opened (bounded, shape, signature) and judged for exactly that peer id. */
  private take (peer: string, bytes: Uint8Array | undefined): void {
    if (bytes === undefined) {
      void this.refuse(peer, 'no-certificate')
      return
    }
    let cert: AdmissionCertificate
    try {
      cert = openAdmission(bytes)
    } catch (err) {
      void this.refuse(peer, (err as { reason?: string }).reason ?? 'invalid')
      return
    }
    this.shown.set(peer, cert)
    this.check(peer)
  }

  /** Judges a peer under the trust policy held now; refuses it unless its certificate holds (or admission is not enforced). */
  private check (peer: string): void {
    const status = this.c.judge(this.shown.get(peer), peer)
    if (status.admitted) {
      if (status.identity === undefined) this.c.log.debug({ peer }, 'admitted-only, but the trust policy lists no enrollers now: every peer counts')
      return
    }
    void this.refuse(peer, status.reason ?? 'not-admitted')
  }

  private async refuse (peer: string, reason: string): Promise<void> {
    if (this.c.signal.aborted) return
    this.shown.delete(peer)
    this.c.log.info({ peer, reason }, 'peer refused: not admitted')
    await this.c.refuse(peer, reason).catch((err) => { this.c.log.debug({ peer, err: (err as Error).message }, 'refusing a peer failed') })
  }

  /** Sends this node's certificate to a new peer; a peer that does not speak the protocol just never sees it. */
  private async show (peer: PeerId): Promise<void> {
    const cert = this.c.certificate
    if (cert === undefined || this.c.signal.aborted) return
    const scope = scopedSignal(this.c.graceMs ?? ADMISSION_GRACE_MS, this.c.signal)
    try {
      const stream = await this.c.net.dialProtocol(peer, ADMISSION_PROTOCOL, { signal: scope.signal })
      try {
        await pipe([cert], (src) => lp.encode(src), stream.sink)
      } catch (err) {
        stream.abort(err as Error)
        throw err
      }
    } catch (err) {
      this.c.log.debug({ peer: peer.toString(), err: (err as Error).message }, 'showing the admission certificate failed')
    } finally {
      scope.done()
    }
  }
}
