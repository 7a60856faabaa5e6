// A sandbox root that looks like a freshly installed Debian machine, for rehearsing
// policies/web-server.yaml (the demo, test/apply/web-server.spec.ts): base accounts, an empty
// package database, and a tiny nginx .deb in apt's archive cache, where the dpkg provider finds
// it (docs/apply.md, Packages). Real tools only: the .deb is built by dpkg-deb.

import { execFile } from 'node:child_process'
import { constants } from 'node:fs'
import { access, chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** The stub nginx the demo installs: a version no Debian release has, so it is never taken for the real one. */
export const DEMO_NGINX_VERSION = '1.22.1-9+grapevine.demo1'

/** The .deb's file name, as apt names what it downloads: NAME_VERSION_ARCH.deb. */
export const DEMO_NGINX_DEB = `nginx_${DEMO_NGINX_VERSION}_all.deb`

/** What a fresh Debian 12 has in its account files (base-passwd), cut to the entries a web role meets. */
const PASSWD = [
  'root:x:0:0:root:/root:/bin/bash',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  'bin:x:2:2:bin:/bin:/usr/sbin/nologin',
  'sys:x:3:3:sys:/dev:/usr/sbin/nologin',
  'www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin',
  'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin'
]
const GROUP = ['root:x:0:', 'daemon:x:1:', 'bin:x:2:', 'sys:x:3:', 'adm:x:4:', 'www-data:x:33:', 'users:x:100:', 'nogroup:x:65534:']

/** Debian's login.defs, the lines useradd and groupadd read: uid and gid ranges, user private groups. */
const LOGIN_DEFS = [
  'UID_MIN 1000', 'UID_MAX 60000', 'SYS_UID_MIN 100', 'SYS_UID_MAX 999',
  'GID_MIN 1000', 'GID_MAX 60000', 'SYS_GID_MIN 100', 'SYS_GID_MAX 999',
  'UMASK 022', 'HOME_MODE 0750', 'USERGROUPS_ENAB yes', 'ENCRYPT_METHOD SHA512'
]

const NGINX_UNIT = `[Unit]
Description=A high performance web server and a reverse proxy server (Grapevine demo stub)
After=network.target

[Service]
Type=forking
ExecStartPre=/usr/sbin/nginx -t -q -g 'daemon on; master_process on;'
ExecStart=/usr/sbin/nginx -g 'daemon on; master_process on;'
ExecReload=/usr/sbin/nginx -g 'daemon on; master_process on;' -s reload

[Install]
WantedBy=multi-user.target
`

const NGINX_STUB = `#!/bin/sh
# Grapevine demo stub: the real nginx is Debian's nginx package (apt-get install nginx).
echo "nginx: Grapevine demo stub, nothing served" >&2
exit 0
`

/**
 * Builds the tiny nginx package with dpkg-deb into `dir` and returns its path: the unit
 * (with ExecReload=, as Debian's), a stub /usr/sbin/nginx, and /etc/nginx/sites-enabled.
 */
export async function buildNginxDeb (dir: string): Promise<string> {
  await mkdir(dir, { recursive: true })
  const tree = await mkdtemp(join(dir, '.nginx-deb-'))
  try {
    await mkdir(join(tree, 'DEBIAN'))
    await writeFile(join(tree, 'DEBIAN/control'), [
      'Package: nginx',
      `Version: ${DEMO_NGINX_VERSION}`,
      'Architecture: all',
      'Maintainer: Grapevine demo <demo@example.invalid>',
      'Description: stand-in for nginx in the Grapevine demo',
      ' Ships nginx.service and a stub /usr/sbin/nginx that serves nothing.',
      ''
    ].join('\n'))
    await mkdir(join(tree, 'lib/systemd/system'), { recursive: true })
    await writeFile(join(tree, 'lib/systemd/system/nginx.service'), NGINX_UNIT)
    await mkdir(join(tree, 'usr/sbin'), { recursive: true })
    await writeFile(join(tree, 'usr/sbin/nginx'), NGINX_STUB)
    await chmod(join(tree, 'usr/sbin/nginx'), 0o755)
    await mkdir(join(tree, 'etc/nginx/sites-enabled'), { recursive: true })
    await writeFile(join(tree, 'etc/nginx/nginx.conf'), 'user www-data;\nevents {}\nhttp { include /etc/nginx/sites-enabled/*; }\n')
    const out = join(dir, DEMO_NGINX_DEB)
    await run('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', tree, out])
    return out
  } finally {
    await rm(tree, { recursive: true, force: true })
  }
}

/**
 * Makes `root` look like a freshly installed Debian machine that has downloaded nginx
 * (`apt-get install --download-only nginx`): base accounts with shadow files and login.defs,
 * /etc/skel, /srv, an empty dpkg database, systemd's unit directory, and `deb` in
 * var/cache/apt/archives.
 */
export async function seedDebianRoot (root: string, deb: string): Promise<void> {
  for (const d of ['etc/skel', 'etc/systemd/system', 'srv', 'run', 'var/lib/dpkg/info', 'var/lib/dpkg/updates', 'var/cache/apt/archives', 'var/log']) {
    await mkdir(join(root, d), { recursive: true })
  }
  const lines = (l: string[]): string => l.join('\n') + '\n'
  await writeFile(join(root, 'etc/passwd'), lines(PASSWD))
  await writeFile(join(root, 'etc/group'), lines(GROUP))
  await writeFile(join(root, 'etc/shadow'), lines(PASSWD.map((l) => `${l.split(':')[0] as string}:*:19700:0:99999:7:::`)), { mode: 0o640 })
  await writeFile(join(root, 'etc/gshadow'), lines(GROUP.map((l) => `${l.split(':')[0] as string}:*::`)), { mode: 0o640 })
  await writeFile(join(root, 'etc/login.defs'), lines(LOGIN_DEFS))
  await writeFile(join(root, 'var/lib/dpkg/status'), '')
  await copyFile(deb, join(root, 'var/cache/apt/archives', DEMO_NGINX_DEB))
}

/** Where the providers look for their tools (the exec PATH). */
const TOOL_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']

/**
 * Why this machine cannot rehearse the web-server role, or undefined when it can: the shadow
 * tools and dpkg need root (they chroot, and chown what they install), and dpkg-deb, dpkg,
 * systemctl and useradd must be installed.
 */
export async function rehearsalUnavailable (): Promise<string | undefined> {
  const missing: string[] = []
  for (const tool of ['dpkg-deb', 'dpkg', 'systemctl', 'useradd']) {
    const found = await Promise.all(TOOL_PATH.map(async (d) => await access(join(d, tool), constants.X_OK).then(() => true, () => false)))
    if (!found.includes(true)) missing.push(tool)
  }
  if (missing.length > 0) return `${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not installed`
  if (process.getuid?.() !== 0) return 'it needs root (useradd --root and dpkg --root chroot and chown)'
  return undefined
}
