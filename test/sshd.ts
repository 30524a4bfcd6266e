import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpDir } from './helpers.js';

export interface Sshd { port: number; dir: string; clientKey: string; knownHosts: string; pid: () => number; stop: () => void; start: () => void }

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * A real OpenSSH sshd on 127.0.0.1 for the tests: its own host key, key-only root login,
 * and a known_hosts file holding exactly its host key (plus `extraConfig` lines). Fails loudly when sshd is not installed.
 */
export async function startSshd(extraConfig: string[] = []): Promise<Sshd> {
  if (!fs.existsSync('/usr/sbin/sshd')) throw new Error('/usr/sbin/sshd is missing: install openssh-server (scripts/install-system-deps.sh)');
  const dir = tmpDir('replica-sshd-');
  const port = await freePort();
  fs.mkdirSync('/run/sshd', { recursive: true });
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'host_ed25519')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'client_key')]);
  fs.copyFileSync(path.join(dir, 'client_key.pub'), path.join(dir, 'authorized_keys'));
  const hostPub = fs.readFileSync(path.join(dir, 'host_ed25519.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
  fs.writeFileSync(path.join(dir, 'known_hosts'), `[127.0.0.1]:${port} ${hostPub}\n`);
  fs.writeFileSync(path.join(dir, 'sshd_config'), [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${dir}/host_ed25519`, `PidFile ${dir}/sshd.pid`,
    `AuthorizedKeysFile ${dir}/authorized_keys`, 'PermitRootLogin prohibit-password', 'PasswordAuthentication no',
    'KbdInteractiveAuthentication no', 'UsePAM no', 'StrictModes no', 'Subsystem sftp internal-sftp', ...extraConfig, '',
  ].join('\n'));
  const pidFile = path.join(dir, 'sshd.pid');
  // sshd writes its pid file in place: read between its open and its write, it is empty, and Number('') is 0;
  // process.kill(0, 'SIGSTOP') then stopped the whole test process group (a CI run hung on it)
  const readPid = (): number | undefined => {
    try {
      const n = Number(fs.readFileSync(pidFile, 'utf8').trim());
      return Number.isInteger(n) && n > 1 ? n : undefined;
    } catch {
      return undefined;
    }
  };
  const start = () => {
    const r = spawnSync('/usr/sbin/sshd', ['-f', path.join(dir, 'sshd_config'), '-E', path.join(dir, 'sshd.log')]);
    if (r.status !== 0) throw new Error(`sshd failed to start: ${r.stderr}`);
    for (let i = 0; i < 100 && readPid() === undefined; i++) spawnSync('sleep', ['0.05']);
  };
  const pid = () => {
    const n = readPid();
    if (n === undefined) throw new Error(`sshd pid file ${pidFile} holds no pid`);
    return n;
  };
  const stop = () => {
    const n = readPid();
    if (n !== undefined) try { process.kill(n, 'SIGTERM'); } catch { /* gone */ }
    for (let i = 0; i < 100 && fs.existsSync(pidFile); i++) spawnSync('sleep', ['0.05']);
    fs.rmSync(pidFile, { force: true }); // a stale pid must never be read by the next start
  };
  start();
  return { port, dir, clientKey: path.join(dir, 'client_key'), knownHosts: path.join(dir, 'known_hosts'), pid, stop, start };
}
