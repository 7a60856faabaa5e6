import type { Layout } from './layout.js'

/**
 * The systemd unit enroll installs: docs/grapevine.service's settings (the unit the Debian
 * package installs), with ExecStart naming this layout's binary, config and state. Under a
 * prefix the state directory is not systemd's (StateDirectory= would make /var/lib/grapevine).
 */
export function unitFor (l: Layout): string {
  const underPrefix = l.prefix !== '/'
  return `# Written by grapevine enroll (docs/enroll.md); the same settings as docs/grapevine.service.
[Unit]
Description=Grapevine configuration agent
Documentation=https://github.com/grapevine/grapevine#readme
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
ExecStart=${l.bin} agent --config ${l.config} --state ${l.state}
KillSignal=SIGTERM
TimeoutStopSec=30
Restart=on-failure
RestartSec=5
RestartPreventExitStatus=64
${underPrefix ? '' : 'StateDirectory=grapevine\nStateDirectoryMode=0700\n'}NoNewPrivileges=true
PrivateTmp=true
ProtectKernelLogs=true
ProtectControlGroups=true
RestrictRealtime=true
LockPersonality=true
SystemCallArchitectures=native
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK

[Install]
WantedBy=multi-user.target
`
}
