// Can this machine run the live pod simulator? Returns one line naming what is
// missing, or null. Tests print the line when they skip (or fail under CI=true).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const TOOLS = ['redis-server', 'redis-sentinel', 'redis-cli', 'bwrap', 'ip', 'nsenter', 'setpriv', 'unshare', 'nft', 'openssl', 'prometheus-redis-exporter', 'prometheus', 'haproxy'];

function which(tool: string): boolean {
  const dirs = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
  return dirs.some((d) => existsSync(`${d}/${tool}`));
}

export function checkLivePrerequisites(): string | null {
  if (process.platform !== 'linux') return `live simulator needs Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'live simulator needs root (network namespaces, bwrap as root)';
  const missing = TOOLS.filter((t) => !which(t));
  if (missing.length) return `live simulator is missing: ${missing.join(', ')} (apt-get install redis-server redis-sentinel redis-tools bubblewrap iproute2 util-linux nftables openssl prometheus-redis-exporter prometheus haproxy)`;
  // The live tests and the benchmark render the overlay with `kubectl kustomize`.
  if (!which('kubectl')) return 'live simulator is missing kubectl (kubectl 1.27 or later renders the overlays: https://kubernetes.io/docs/tasks/tools/)';
  try {
    // Python clients use Debian's interpreter, not a pyenv shim earlier on PATH.
    execFileSync('/usr/bin/python3', ['-c', 'import redis'], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    return 'live simulator is missing python3-redis for /usr/bin/python3 (apt-get install python3-redis)';
  }
  try {
    execFileSync('unshare', ['--net', '--mount', '--uts', '--pid', '--fork', 'true'], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    return 'live simulator cannot create namespaces here (unshare --net --mount --pid failed; needs CAP_SYS_ADMIN)';
  }
  try {
    // Partitions are nftables rules on the pods' bridge (needs nf_tables with the bridge family).
    execFileSync('unshare', ['--net', 'nft', 'add table bridge rsim_check'], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    return 'live simulator cannot add nftables bridge rules here (unshare --net nft add table bridge ... failed; needs nf_tables)';
  }
  return null;
}
