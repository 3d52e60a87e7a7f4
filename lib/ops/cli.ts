#!/usr/bin/env node
/**
 * `redis-ha`: the operator's command line (package.json "bin"). One subcommand per task:
 *
 *   redis-ha rotate-passwords [--namespace NS] [--secret redis-auth] [--instance redis]
 *       [--users replication,sentinel,operations,proxy,app] [--timeout 5m] [--app-grace 10m]
 *       [--finish] [--context CTX]
 *   redis-ha status [connection options] [--sentinels N] [--json]
 *   redis-ha failover [connection options] [--to HOST:PORT] [--timeout 10s] [--json]
 *   redis-ha migrate --from redis://old:6379 [--follow] [--overwrite] [connection options]
 *   redis-ha drill (--cause failover | --cause sentinel | --wait) [--timeout 2m] [--svg FILE] [connection options]
 *
 * Problems the operator can fix end as a CliError (connect.ts): one line, `redis-ha: <message>`,
 * exit status 1, no stack trace. Usage errors exit 2; `status` exits 3 (degraded) or 4 (critical).
 *
 * Compiled with the library (tsconfig.lib.json lists this file) into out/ops/cli.js.
 */
import { parseArgs } from 'util';
import { CONNECTION_OPTIONS, CliError, HaConnection, connectionOptions, connectionUsage, durationOption, parseAddress } from './connect';
import { drillCommand, DRILL_USAGE } from './drill-command';
import { safeFailover } from './failover';
import { kubectlPods, kubectlSecret } from './kubectl';
import { STATUS_EXIT, formatStatus, gatherStatus } from './status';
import { MIGRATE_USAGE, migrateCommand } from './migrate-command';
import { AUTH_USERS, RotationError, parseDuration, parseUsers, rotatePasswords } from './rotation';

const USAGE = `usage: redis-ha <command> [options]

commands:
  rotate-passwords   rotate the passwords in the auth Secret without restarting anything
      --namespace NS     namespace of the instance (default: the kubectl context's)
      --context CTX      kubectl context (default: the current one)
      --secret NAME      the auth Secret (default: redis-auth)
      --instance NAME    the instance name, app.kubernetes.io/instance of its pods (default: redis)
      --users LIST       comma-separated, of ${AUTH_USERS.join(', ')}
                         (default: all; proxy only when the Secret has proxy-password,
                         i.e. with the proxy tier)
      --timeout DUR      how long each step may wait for the pods (default: 5m)
      --app-grace DUR    after every server accepts the new app password, how long the
                         applications get to move to it before the old one is refused;
                         without it the tool stops there and --finish completes it later
      --finish           complete a rotation that was left with -previous keys

  status             master, replicas (link, lag), Sentinels (their view, epoch, CKQUORUM), phantoms
      --sentinels N      how many Sentinels the instance has (default: as many as are found);
                         a Sentinel that knows more has phantoms
      --json             print the status as JSON (for scripts)
      exit status: 0 healthy, 3 degraded (a replica, a Sentinel or the Sentinels' agreement is
      not right, but one master a majority names), 4 critical (not exactly one master, no
      majority naming it, quorum or failover authorisation not reachable), 1 could not run

  failover           manual failover without losing writes: pause writes on the master, wait
                     until the replicas have every write, SENTINEL FAILOVER, wait until the new
                     master is confirmed; prints it
      --to HOST:PORT     the replica to promote, as the master lists it (default: the one
                         furthest along)
      --timeout DUR      how long the handover may take; writes are paused at most this long
                         (default: 10s)
      --json             print the result as JSON

${DRILL_USAGE}

${MIGRATE_USAGE}

${connectionUsage('operations')}`;

async function rotateCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      namespace: { type: 'string', short: 'n' },
      context: { type: 'string' },
      secret: { type: 'string', default: 'redis-auth' },
      instance: { type: 'string', default: 'redis' },
      // No default: rotatePasswords' own leaves out the proxy user when the instance has no proxy tier.
      users: { type: 'string' },
      timeout: { type: 'string', default: '5m' },
      'app-grace': { type: 'string' },
      finish: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const target = { namespace: values.namespace, context: values.context };
  const appGrace = values['app-grace'];
  const result = await rotatePasswords(kubectlSecret(target, values.secret!), kubectlPods(target, values.instance!), {
    users: values.users === undefined ? undefined : parseUsers(values.users),
    timeoutMs: parseDuration(values.timeout!),
    appGraceMs: appGrace === undefined ? undefined : parseDuration(appGrace),
    finish: values.finish,
    log: (line) => console.log(`${new Date().toISOString().slice(11, 19)} ${line}`),
  });
  // A rotation left waiting for the applications is not an error, but scripts can tell it apart.
  return result.pending.length ? 3 : 0;
}

/** Runs `body` with a connection made from the parsed connection options; closes it afterwards. */
async function withConnection<T>(values: Record<string, unknown>, user: string, body: (conn: HaConnection) => Promise<T>): Promise<T> {
  const conn = new HaConnection(connectionOptions(values as Parameters<typeof connectionOptions>[0], { user }));
  try {
    return await body(conn);
  } finally {
    await conn.close();
  }
}

async function statusCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { ...CONNECTION_OPTIONS, sentinels: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  let expectedSentinels: number | undefined;
  if (values.sentinels !== undefined) {
    expectedSentinels = Number(values.sentinels);
    if (!Number.isInteger(expectedSentinels) || expectedSentinels < 1) throw new CliError(`--sentinels '${values.sentinels}' is not a number of Sentinels (for example --sentinels 3)`);
  }
  const status = await withConnection(values, 'operations', (conn) => gatherStatus(conn, { expectedSentinels }));
  console.log(values.json ? JSON.stringify(status, null, 2) : formatStatus(status));
  return status.exitCode;
}

async function failoverCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...CONNECTION_OPTIONS, to: { type: 'string' }, timeout: { type: 'string', default: '10s' },
      json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const to = values.to === undefined ? undefined : parseAddress(values.to, '--to');
  const timeoutMs = durationOption(values.timeout!, '--timeout');
  const log = (line: string) => console.error(`${new Date().toISOString().slice(11, 23)} ${line}`);
  const result = await withConnection(values, 'operations', (conn) => safeFailover(conn, { to, timeoutMs, log }));
  console.log(values.json ? JSON.stringify(result, null, 2)
    : `new master: ${result.newMaster} (was ${result.oldMaster}; writes paused ${result.pausedMs} ms; named by ${result.confirmedBy} of ${result.sentinels} Sentinels)`);
  return 0;
}

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  'rotate-passwords': rotateCommand,
  status: statusCommand,
  failover: failoverCommand,
  drill: drillCommand,
  migrate: migrateCommand,
};

export { STATUS_EXIT };

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  const run = COMMANDS[command];
  if (!run) {
    console.error(`redis-ha: unknown command '${command}'\n${USAGE}`);
    return 2;
  }
  try {
    return await run(rest);
  } catch (e) {
    if (e instanceof CliError) {
      console.error(`redis-ha: ${e.message}`);
      return 1;
    }
    const usage = (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    console.error(`redis-ha ${command}: ${(e as Error).message}`);
    return e instanceof RotationError ? 1 : usage ? 2 : 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
}
