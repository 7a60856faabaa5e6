// `npm run bench:secrets [-- --sizes 1,100,1000,10000]`: what sealing secrets costs a publisher and a
// node (docs/secrets.md, "Cost"). Each figure beside its baseline, measured in the same process:
// signing the same policy without secrets, and opening with age's own all-stanza search.
import '../shim.js'
import { Decrypter } from 'age-encryption'
import { generateSigningKey, signPolicy, MAX_ENVELOPE_BYTES } from '../envelope/index.js'
import { validatePolicyObject, type ConfigPolicy } from '../policy/index.js'
import { generateEncryptionKey, openSealed, sealSecrets, type EncryptionKey } from '../secrets/index.js'

const arg = (name: string): string | undefined => { const i = process.argv.indexOf(name); return i < 0 ? undefined : process.argv[i + 1] }
const sizes = (arg('--sizes') ?? '1,100,1000,10000').split(',').map(Number)

const policy = validatePolicyObject({
  name: 'db/app',
  target: { tags: { role: 'db' } },
  resources: [
    { id: 'conf', type: 'file', path: '/etc/app/db.conf', content: 'user=app\npassword={{ secrets.db_password }}\n' },
    { id: 'env', type: 'config', path: '/etc/app/env.json', format: 'json', data: { api_token: '{{ secrets.api_token }}' } }
  ]
}) as ConfigPolicy
const values = { db_password: 'correct horse battery staple', api_token: 'tok_0123456789abcdef0123456789abcdef' }
const signer = generateSigningKey()

async function median (runs: number, fn: () => Promise<unknown> | unknown): Promise<number> {
  const times: number[] = []
  for (let i = 0; i < runs; i++) {
    const t = performance.now()
    await fn()
    times.push(performance.now() - t)
  }
  times.sort((a, b) => a - b)
  return times[Math.floor(times.length / 2)] as number
}

const fmt = (ms: number): string => ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 2 : 1)} ms`
const keys: EncryptionKey[] = []
console.log('recipients  seal+sign   sign alone  added/recipient  envelope    bytes/recipient  open (one stanza)  open (age, all stanzas)')
for (const n of sizes) {
  while (keys.length < n) keys.push(await generateEncryptionKey())
  const recipients = keys.slice(0, n).map((k, i) => ({ node: `12D3KooW${String(i).padStart(44, 'x')}`, key: k.recipient }))
  const runs = n >= 5000 ? 2 : n >= 500 ? 3 : 7
  const plainBytes = signPolicy(policy, { version: 1, key: signer }).length
  const plainMs = await median(runs, () => signPolicy(policy, { version: 1, key: signer }))
  let envelope = 0
  let sealed = await sealSecrets(values, recipients)
  const sealMs = await median(runs, async () => {
    sealed = await sealSecrets(values, recipients)
    envelope = signPolicy({ ...policy, sealed }, { version: 1, key: signer }).length
  })
  const last = n - 1
  const openMs = await median(runs, async () => await openSealed(sealed, recipients[last]?.node as string, keys[last] as EncryptionKey))
  // Baseline: age's Decrypter with the identity alone tries every stanza until its own.
  const scanMs = await median(n >= 5000 ? 1 : runs, async () => {
    const d = new Decrypter()
    d.addIdentity((keys[last] as EncryptionKey).identity)
    await d.decrypt(Buffer.from(sealed.data, 'base64'), 'text')
  })
  const over = envelope > MAX_ENVELOPE_BYTES ? ' (over the 2 MiB envelope limit)' : ''
  console.log(`${String(n).padStart(10)}  ${fmt(sealMs).padStart(9)}  ${fmt(plainMs).padStart(10)}  ${fmt((sealMs - plainMs) / n).padStart(15)}  ${`${(envelope / 1024).toFixed(1)} KiB`.padStart(10)}  ${String(Math.round((envelope - plainBytes) / n)).padStart(15)}  ${fmt(openMs).padStart(17)}  ${fmt(scanMs).padStart(23)}${over}`)
}
