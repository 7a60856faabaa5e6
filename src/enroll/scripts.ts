import { shellQuote as q } from './ssh.js'
import { staged, type Layout } from './layout.js'
import { START_TIMEOUT_S, STOP_TIMEOUT_S } from './constants.js'

// The shell scripts enroll runs on the target (POSIX sh, coreutils, util-linux's setsid): pure
// text builders, so what runs remotely can be read and tested here.

/** What the probe found on the target. */
export interface Probe {
  arch: string
  /** The host's name (uname -n): the node's name unless --name says otherwise. */
  hostname?: string
  /** systemd is the running init (/run/systemd/system exists). */
  systemd: boolean
  dpkg: boolean
  uid: number
  /** Tools the steps need that are missing. */
  missing: string[]
  /** An agent binary already at the prefix, and what --version says. */
  installed?: string
  /** The fallback service's agent, running from this prefix. */
  runningPid?: number
  /** Leftovers of interrupted runs, removed now. */
  cleaned: number
}

/**
 * `ours PID`: whether a process is this prefix's agent: its executable is the installed binary
 * (or was, before an upgrade replaced it), and it runs `agent` on this state directory. A pid
 * file can outlive its process, and the pid be reused by anything.
 */
function oursFunction (l: Layout): string {
  return [
    `ours() {`,
    `  [ -r "/proc/$1/cmdline" ] || return 1`,
    `  exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1`,
    `  case "$exe" in ${q(l.bin)}|${q(`${l.bin} (deleted)`)}) ;; *) return 1 ;; esac`,
    `  tr '\\000' '\\n' < "/proc/$1/cmdline" | grep -qx agent || return 1`,
    `  tr '\\000' '\\n' < "/proc/$1/cmdline" | grep -qxF ${q(l.state)}`,
    `}`,
    // A zombie (exited, not yet reaped: a container's init may never reap it) is not running.
    `alive() { [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -c1)" != Z ]; }`
  ].join('\n')
}

/** Finds what is there, makes the prefix's directories, and removes what interrupted runs staged. */
export function probeScript (l: Layout): string {
  return `set -u
${oursFunction(l)}
echo "arch=$(uname -m)"
echo "hostname=$(uname -n)"
[ -d /run/systemd/system ] && echo systemd=1 || echo systemd=0
command -v dpkg >/dev/null 2>&1 && echo dpkg=1 || echo dpkg=0
echo "uid=$(id -u)"
for t in sha256sum setsid readlink sed grep tr cut mv ln; do command -v "$t" >/dev/null 2>&1 || echo "missing=$t"; done
umask 022
mkdir -p ${q(l.configDir)} ${q(l.bin.replace(/\/[^/]+$/, ''))} ${q(l.log.replace(/\/[^/]+$/, ''))} || exit 3
(umask 077 && mkdir -p ${q(l.state)}) || exit 3
chmod 0700 ${q(l.state)}
if [ -x ${q(l.bin)} ]; then echo "installed=$(${q(l.bin)} --version 2>/dev/null | head -n 1)"; fi
if [ -f ${q(l.pidFile)} ]; then pid=$(cat ${q(l.pidFile)}); if alive "$pid" && ours "$pid"; then echo "running=$pid"; fi; fi
n=0
for f in ${q(l.bin)}.new-* ${q(l.bin)}.old-* ${q(l.configDir)}/*.new-* ${q(l.configDir)}/*.old-* ${q(l.state)}/*.new-* ${q(l.state)}/*.old-* ${q(l.state)}/enroll-*.sh ${q(l.unit)}.new-*; do
  [ -e "$f" ] || continue
  rm -f "$f" && n=$((n+1))
done
echo "cleaned=$n"
`
}

export function parseProbe (text: string): Probe {
  const probe: Probe = { arch: '', systemd: false, dpkg: false, uid: -1, missing: [], cleaned: 0 }
  for (const line of text.split('\n')) {
    const i = line.indexOf('=')
    if (i < 0) continue
    const [k, v] = [line.slice(0, i), line.slice(i + 1).trim()]
    if (k === 'arch') probe.arch = v
    else if (k === 'hostname' && v !== '') probe.hostname = v
    else if (k === 'systemd') probe.systemd = v === '1'
    else if (k === 'dpkg') probe.dpkg = v === '1'
    else if (k === 'uid') probe.uid = Number(v)
    else if (k === 'missing') probe.missing.push(v)
    else if (k === 'installed') probe.installed = v
    else if (k === 'running' && /^\d+$/.test(v)) probe.runningPid = Number(v)
    else if (k === 'cleaned') probe.cleaned = Number(v)
  }
  return probe
}

/** Writes stdin to a staged file (mode `mode`) and prints its SHA-256. */
export function uploadCommand (path: string, mode: string): string {
  return `umask 077 && cat > ${q(path)} && chmod ${mode} ${q(path)} && sha256sum ${q(path)}`
}

/** What the install script puts in place, each staged under the run's nonce. */
export interface InstallPlan {
  nonce: string
  /** Staged files besides the binary and the config: the certificate, the swarm key. */
  cert: boolean
  swarmKey: boolean
  /** systemd (a unit staged too), or the fallback: a detached process with a pid file. */
  service: 'systemd' | 'process'
}

/**
 * Stops the old agent, renames the staged files into place (each rename atomic), starts the
 * agent, and waits until it logs "agent started". If it does not start, the old binary,
 * config and certificate go back and the old agent starts again. Run detached from the SSH
 * session (setsid, its output to a file), so a dropped connection cannot stop it half done.
 * Its last line is `result=ok pid=… since=…` or `result=failed …`.
 */
export function installScript (l: Layout, p: InstallPlan): string {
  const files: Array<[string, boolean]> = [[l.bin, true], [l.config, true], [l.cert, p.cert], [l.swarmKey, p.swarmKey], ...(p.service === 'systemd' ? [[l.unit, true] as [string, boolean]] : [])]
  const moved = files.filter(([, on]) => on).map(([f]) => f)
  const put = moved.map((f) => `  if [ -e ${q(f)} ]; then ln -f ${q(f)} ${q(`${f}.old-${p.nonce}`)} || return 1; fi\n  mv -f ${q(staged(f, p.nonce))} ${q(f)} || return 1`).join('\n')
  // Back to what was there: a file that was not there before is removed.
  const restore = moved.map((f) => `  if [ -e ${q(`${f}.old-${p.nonce}`)} ]; then mv -f ${q(`${f}.old-${p.nonce}`)} ${q(f)}; else rm -f ${q(f)}; fi`).join('\n')
  const dropOld = moved.map((f) => q(`${f}.old-${p.nonce}`)).join(' ')
  const service = p.service === 'systemd'
    ? `stop_old() { systemctl stop grapevine.service >/dev/null 2>&1 || true; had_old=$([ -e ${q(l.bin)} ] && echo 1 || echo 0); }
start() {
  systemctl daemon-reload && systemctl enable grapevine.service >/dev/null 2>&1 && systemctl restart grapevine.service || return 1
  i=0
  while [ $i -lt $((${START_TIMEOUT_S} * 10)) ]; do
    journalctl -u grapevine.service --since "@$since_s" -o cat 2>/dev/null | grep -q '"agent started"' && { pid=$(systemctl show -p MainPID --value grapevine.service); return 0; }
    systemctl is-failed --quiet grapevine.service && break
    sleep 0.1; i=$((i+1))
  done
  journalctl -u grapevine.service --since "@$since_s" -o cat 2>/dev/null | tail -n 5
  systemctl stop grapevine.service >/dev/null 2>&1
  return 1
}`
    : `stop_old() {
  had_old=0
  [ -f ${q(l.pidFile)} ] || return 0
  old=$(cat ${q(l.pidFile)})
  if alive "$old" && ours "$old"; then
    had_old=1
    kill -TERM "$old" 2>/dev/null
    i=0
    while alive "$old"; do
      i=$((i+1))
      [ $i -eq $((${STOP_TIMEOUT_S} * 10)) ] && kill -KILL "$old" 2>/dev/null
      # Not even SIGKILL (stuck in the kernel): change nothing, and say so.
      [ $i -ge $((${STOP_TIMEOUT_S} * 20)) ] && { echo "result=failed the old agent, pid $old, did not stop (not even for SIGKILL); nothing was changed"; exit 1; }
      sleep 0.1
    done
    echo "stopped the old agent, pid $old"
  fi
  rm -f ${q(l.pidFile)}
}
start() {
  off=$(wc -c < ${q(l.log)} 2>/dev/null || echo 0)
  # A new session, no terminal, stdin closed: the agent outlives this script and any SSH session.
  setsid nohup ${q(l.bin)} agent --config ${q(l.config)} --state ${q(l.state)} >> ${q(l.log)} 2>&1 < /dev/null &
  pid=$!
  echo "$pid" > ${q(l.pidFile)}
  i=0
  while [ $i -lt $((${START_TIMEOUT_S} * 10)) ]; do
    tail -c +$((off + 1)) ${q(l.log)} | grep -q '"agent started"' && alive "$pid" && return 0
    alive "$pid" || break
    sleep 0.1; i=$((i+1))
  done
  tail -c +$((off + 1)) ${q(l.log)} | tail -n 5
  kill -KILL "$pid" 2>/dev/null
  rm -f ${q(l.pidFile)}
  return 1
}`
  return `set -u
umask 022
${oursFunction(l)}
${service}
put() {
${put}
}
restore() {
${restore}
}
since=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
since_s=$(date +%s)
stop_old
if ! put; then
  restore
  echo "result=failed could not put the staged files in place"
  [ "$had_old" = 1 ] && start >/dev/null 2>&1
  exit 1
fi
if start; then
  rm -f ${dropOld}
  echo "result=ok pid=$pid since=$since"
  exit 0
fi
restore
if [ "$had_old" = 1 ] && start >/dev/null 2>&1; then
  echo "result=failed the new agent did not start (its log above); the old one runs again, pid $pid"
else
  echo "result=failed the new agent did not start (its log above)"
fi
exit 1
`
}

/**
 * Runs the uploaded install script in a session of its own, its output to a file, and prints
 * that file when it ends: if the connection drops meanwhile, the script still runs to its end.
 */
export function runInstallCommand (script: string, log: string): string {
  // -w: should setsid have to fork (run as a process group leader), still wait for the script's end.
  return `setsid -w sh ${q(script)} < /dev/null > ${q(log)} 2>&1; rc=$?; cat ${q(log)}; rm -f ${q(script)}; exit $rc`
}
