import { describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { installScript, layoutFor, parseProbe, probeScript, staged } from '../../src/enroll/index.js'
import { useTempDir } from '../helpers/tmp.js'

const run = promisify(execFile)

describe('parseProbe', () => {
  it('reads the probe\'s key=value lines', () => {
    expect(parseProbe('arch=x86_64\nhostname=web-1\nsystemd=0\ndpkg=1\nuid=0\nmissing=setsid\ninstalled=0.1.0 (single binary, Node v20.20.2)\nrunning=4242\ncleaned=2\nnoise\n')).toEqual({
      arch: 'x86_64', hostname: 'web-1', systemd: false, dpkg: true, uid: 0, missing: ['setsid'], installed: '0.1.0 (single binary, Node v20.20.2)', runningPid: 4242, cleaned: 2
    })
  })
})

// The scripts run here with sh against a prefix, and a stand-in agent: a shell script that logs
// "agent started" and sleeps, or fails at once.
describe('the remote scripts, run locally', () => {
  const dir = useTempDir('grapevine-enroll-scripts-')

  async function stage (prefix: string, nonce: string, agent: string): Promise<void> {
    const l = layoutFor(prefix)
    await writeFile(staged(l.bin, nonce), `#!/bin/sh\n${agent}\n`)
    await chmod(staged(l.bin, nonce), 0o755)
    await writeFile(staged(l.config, nonce), `# ${nonce}\n`)
  }

  it('the probe makes the prefix\'s directories (state 0700) and removes what earlier runs staged', async () => {
    const l = layoutFor(join(dir(), 'p'))
    await mkdir(join(dir(), 'p/usr/bin'), { recursive: true })
    await writeFile(staged(l.bin, 'dead'), 'half a binary')
    const out = parseProbe((await run('sh', ['-c', probeScript(l)])).stdout)
    expect(out).toMatchObject({ missing: [], cleaned: 1 })
    expect((await stat(l.state)).mode & 0o777).toBe(0o700)
    expect(await stat(staged(l.bin, 'dead')).catch(() => undefined)).toBeUndefined()
  })

  it('installs, and a new agent that does not start puts the old files back', async () => {
    const l = layoutFor(join(dir(), 'p'))
    await run('sh', ['-c', probeScript(l)])
    await stage(l.prefix, 'n1', 'echo \'{"msg":"agent started"}\'; exec sleep 30')
    const first = await run('sh', ['-c', installScript(l, { nonce: 'n1', cert: false, swarmKey: false, service: 'process' })])
    const pid = Number(/^result=ok pid=(\d+) since=\S+$/m.exec(first.stdout)?.[1])
    expect(pid).toBeGreaterThan(0)
    expect(await readFile(l.config, 'utf8')).toBe('# n1\n')
    try {
      await stage(l.prefix, 'n2', 'echo "cannot listen"; exit 69')
      const failed = await run('sh', ['-c', installScript(l, { nonce: 'n2', cert: false, swarmKey: false, service: 'process' })]).then(() => undefined, (err: { code: number, stdout: string }) => err)
      expect(failed?.code).toBe(1)
      // The stand-in agent's pid is not "ours" (its /proc exe is sh, not the binary), so the old one was not stopped, only replaced and put back.
      expect(failed?.stdout).toMatch(/cannot listen\n.*result=failed the new agent did not start \(its log above\)/s)
      expect(await readFile(l.config, 'utf8')).toBe('# n1\n')
      expect(await readFile(l.bin, 'utf8')).toContain('agent started')
    } finally {
      process.kill(pid, 'SIGKILL')
    }
  })

  it('under systemd: the unit goes in place, then daemon-reload, enable and restart; started once the journal says so', async () => {
    // Stand-ins for systemctl and journalctl on PATH, recording their arguments; the unit goes to a temp dir, not /etc.
    const bin = join(dir(), 'fake-bin')
    await mkdir(bin)
    await writeFile(join(bin, 'systemctl'), `#!/bin/sh\necho "$*" >> ${join(dir(), 'systemctl.log')}\ncase "$1" in show) echo 4242 ;; is-failed) exit 1 ;; esac\nexit 0\n`)
    await writeFile(join(bin, 'journalctl'), '#!/bin/sh\necho \'{"msg":"agent started"}\'\n')
    await chmod(join(bin, 'systemctl'), 0o755)
    await chmod(join(bin, 'journalctl'), 0o755)
    const l = { ...layoutFor(join(dir(), 'p')), unit: join(dir(), 'grapevine.service') }
    await run('sh', ['-c', probeScript(l)])
    await stage(l.prefix, 'n1', 'exit 0')
    await writeFile(staged(l.unit, 'n1'), '[Service]\n')
    const out = await run('sh', ['-c', installScript(l, { nonce: 'n1', cert: false, swarmKey: false, service: 'systemd' })], { env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` } })
    expect(out.stdout).toMatch(/^result=ok pid=4242 since=\S+$/m)
    expect(await readFile(l.unit, 'utf8')).toBe('[Service]\n')
    expect((await readFile(join(dir(), 'systemctl.log'), 'utf8')).split('\n').filter((c) => c !== '')).toEqual([
      'stop grapevine.service', 'daemon-reload', 'enable grapevine.service', 'restart grapevine.service', 'show -p MainPID --value grapevine.service'
    ])
  })
})
