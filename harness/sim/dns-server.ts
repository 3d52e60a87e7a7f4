// Cluster DNS for pods whose programs resolve names at run time with their own resolver
// (HAProxy's `resolvers` section) rather than through libc and /etc/hosts: a tiny DNS
// server on the pod's 127.0.0.1:53 (where its resolv.conf points) that answers A queries
// from the pod's hosts file (dns.ts keeps it current: recreated pods get new IPs). Names
// not there get NXDOMAIN; other query types an empty answer. It exits with its parent
// (stdin closes).
import { ChildProcess, spawn } from 'node:child_process';

const SERVER = String.raw`
const dgram = require('dgram');
const fs = require('fs');
const hostsFile = process.argv[1];
function lookup(name) {
  const ips = [];
  for (const line of fs.readFileSync(hostsFile, 'utf8').split('\n')) {
    const f = line.replace(/#.*/, '').trim().split(/\s+/);
    if (f.length > 1 && /^\d+\.\d+\.\d+\.\d+$/.test(f[0]) && f.slice(1).some((n) => n.toLowerCase() === name)) ips.push(f[0]);
  }
  return [...new Set(ips)];
}
const sock = dgram.createSocket('udp4');
sock.on('message', (q, rinfo) => {
  try {
    let o = 12; const labels = [];
    while (q[o] !== 0) { labels.push(q.slice(o + 1, o + 1 + q[o]).toString()); o += q[o] + 1; }
    const qEnd = o + 5;
    const type = q.readUInt16BE(o + 1);
    const name = labels.join('.').toLowerCase();
    const ips = lookup(name);
    const answers = type === 1 ? ips : [];
    const head = Buffer.alloc(12);
    q.copy(head, 0, 0, 2);
    head.writeUInt16BE(0x8180 | (ips.length ? 0 : 3), 2);
    head.writeUInt16BE(1, 4); head.writeUInt16BE(answers.length, 6);
    const rrs = answers.map((ip) => { const rr = Buffer.alloc(16); rr.writeUInt16BE(0xc00c, 0); rr.writeUInt16BE(1, 2); rr.writeUInt16BE(1, 4); rr.writeUInt32BE(1, 6); rr.writeUInt16BE(4, 10); ip.split('.').forEach((b, i) => { rr[12 + i] = Number(b); }); return rr; });
    sock.send(Buffer.concat([head, q.slice(12, qEnd), ...rrs]), rinfo.port, rinfo.address);
  } catch {}
});
sock.bind(53, '127.0.0.1');
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

/** Starts the DNS server in network namespace `netns`, answering from `hostsFile`. */
export function startDnsServer(netns: string, hostsFile: string): ChildProcess {
  const proc = spawn('nsenter', [`--net=/run/netns/${netns}`, '--', process.execPath, '-e', SERVER, hostsFile], { stdio: ['pipe', 'ignore', 'ignore'] });
  proc.on('error', () => undefined);
  return proc;
}
