/**
 * `redis-ha drill`: the command line of the failover drill (drill.ts), its options checked
 * into one-line errors, the summary printed and the timeline written as SVG.
 */
import { writeFileSync } from 'fs';
import { parseArgs } from 'util';
import { CliError, CONNECTION_OPTIONS, connectionOptions, connectionUsage, durationOption, HaConnection } from './connect';
import { consoleProgress, DrillCause, DrillRun, runDrill } from './drill';
import { drillTarget } from './drill-connection';
import { safeFailover } from './failover';
import { drillFigures, DrillFigures, summaryLines, timelineSvg } from './timeline';

/**
 * How the drill can cause the failover: `failover` is `redis-ha failover` (safeFailover: writes
 * paused until every replica has them, then SENTINEL FAILOVER; no acknowledged write lost);
 * `sentinel` is a plain SENTINEL FAILOVER, which can lose writes a replica confirmed (the
 * drill shows how many).
 */
export const CAUSES = ['failover', 'sentinel'] as const;

export const DRILL_USAGE = `  drill              write continuously through Sentinel, cause or wait for a failover, then print the
                     outage and the confirmed writes lost, and draw the timeline (SVG)
      --cause failover   cause it the write-safe way, as \`redis-ha failover\` does (needs --ops-password-file)
      --cause sentinel   cause it with a plain SENTINEL FAILOVER (can lose confirmed writes: see them counted)
      --wait             wait for a failover someone else causes (deletes the master pod, a chaos tool)
      --timeout DUR      how long after the trigger the failover may take (default: 2m)
      --before DUR       writing before the trigger (default: 5s)
      --after DUR        writing after the new master acknowledged its first write (default: 3s)
      --rate N           at most N writes per second (default: 200; 0: as fast as answered)
      --svg FILE         the timeline picture (default: drill-<time>.svg)
      --json             print the figures as JSON instead of the summary
      --prefix P         keys written: P:<n> (default: redis-ha-drill:<time>); they expire after --ttl
      --ttl DUR          (default: 1h); the drill removes them after reading them back unless --keep-keys
      --ops-user NAME    the user that causes the failover (default: operations)
      --ops-password-file FILE  its password
      (the writes log in as --user, default app, with the examples' client settings)`;

const OPTIONS = {
  ...CONNECTION_OPTIONS,
  cause: { type: 'string' },
  wait: { type: 'boolean', default: false },
  timeout: { type: 'string', default: '2m' },
  before: { type: 'string', default: '5s' },
  after: { type: 'string', default: '3s' },
  rate: { type: 'string', default: '200' },
  svg: { type: 'string' },
  json: { type: 'boolean', default: false },
  prefix: { type: 'string' },
  ttl: { type: 'string', default: '1h' },
  'keep-keys': { type: 'boolean', default: false },
  'ops-user': { type: 'string', default: 'operations' },
  'ops-password-file': { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export interface DrillSettings {
  cause?: typeof CAUSES[number];
  timeoutMs: number;
  beforeMs: number;
  afterMs: number;
  rate: number;
  svg: string;
  json: boolean;
  prefix: string;
  ttlSeconds: number;
  keepKeys: boolean;
}

/** The drill's own options, checked (the connection options are connect.ts's). */
export function drillSettings(values: Record<string, unknown>, at = new Date()): DrillSettings {
  const cause = values.cause as string | undefined;
  if (cause !== undefined && !(CAUSES as readonly string[]).includes(cause)) {
    throw new CliError(`--cause '${cause}' is not one of: ${CAUSES.join(', ')}`);
  }
  if ((cause === undefined) === !values.wait) {
    throw new CliError(cause === undefined ? 'give --cause failover|sentinel (the drill causes the failover) or --wait (someone else does)' : '--cause and --wait exclude each other');
  }
  const rate = Number(values.rate);
  if (!/^\d+$/.test(String(values.rate)) || rate > 10_000) throw new CliError(`--rate '${values.rate}' is not a whole number of writes per second from 0 to 10000`);
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
  const prefix = (values.prefix as string | undefined) ?? `redis-ha-drill:${stamp}`;
  if (!/^[^\s]+$/.test(prefix)) throw new CliError(`--prefix '${prefix}' must not be empty or hold spaces`);
  const ttlMs = durationOption(String(values.ttl), '--ttl');
  return {
    cause: cause as DrillSettings['cause'],
    timeoutMs: durationOption(String(values.timeout), '--timeout'),
    beforeMs: durationOption(String(values.before), '--before'),
    afterMs: durationOption(String(values.after), '--after'),
    rate,
    svg: (values.svg as string | undefined) ?? `drill-${stamp}.svg`,
    json: Boolean(values.json),
    prefix,
    ttlSeconds: Math.max(1, Math.ceil(ttlMs / 1000)),
    keepKeys: Boolean(values['keep-keys']),
  };
}

/** What causes the failover: SENTINEL FAILOVER on the first Sentinel that accepts it, as the operations user. */
function sentinelCause(ops: HaConnection): DrillCause {
  return {
    name: 'SENTINEL FAILOVER',
    async run() {
      const { sentinels } = await ops.discoverSentinels();
      let last: unknown;
      for (const s of sentinels) {
        try {
          await ops.sentinelCommand(s, 'SENTINEL', 'FAILOVER', ops.opts.masterName);
          return;
        } catch (err) {
          last = err;
        }
      }
      throw last ?? new CliError('no Sentinel to ask');
    },
  };
}

/** `redis-ha failover` as the cause (its default 10 s bound on the handover; the new master may take the drill's timeout to be confirmed); its log lines go to the progress. */
function safeCause(ops: HaConnection, timeoutMs: number, log: (line: string) => void): DrillCause {
  return {
    name: 'write-safe failover (redis-ha failover)',
    async run() {
      const r = await safeFailover(ops, { timeoutMs: 10_000, confirmTimeoutMs: timeoutMs, log: (line) => log(`failover: ${line}`) });
      log(`failover: done, writes paused ${r.pausedMs} ms, new master ${r.newMaster}`);
    },
  };
}

/** The exit status of a finished drill: 0 only when a failover happened and no confirmed write was lost. */
export function drillExitCode(run: DrillRun, f: DrillFigures): number {
  return f.newMaster !== null && f.lostConfirmed.length === 0 && run.problems.length === 0 ? 0 : 1;
}

export async function drillCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: OPTIONS, strict: true });
  if (values.help) {
    console.log(`usage: redis-ha drill (--cause failover | --cause sentinel | --wait) [options]\n\n${DRILL_USAGE}\n\n${connectionUsage('app')}`);
    return 0;
  }
  const settings = drillSettings(values);
  const conn = new HaConnection(connectionOptions(values, { user: 'app' }));
  let ops: HaConnection | undefined;
  if (settings.cause) {
    if (!values['ops-password-file']) throw new CliError(`--cause ${settings.cause} needs the password of user '${values['ops-user']}' (--ops-password-file FILE): the application user may not cause a failover`);
    ops = new HaConnection(connectionOptions({ ...values, user: values['ops-user'], 'password-file': values['ops-password-file'], 'sentinel-user': undefined, 'sentinel-password-file': undefined }, { user: 'operations' }));
  }
  const target = await drillTarget(conn);
  const progress = consoleProgress(process.stderr);
  const cause = ops && (settings.cause === 'sentinel' ? sentinelCause(ops) : safeCause(ops, settings.timeoutMs, (l) => progress.line(l)));
  let run: DrillRun;
  try {
    run = await runDrill(target, {
      masterName: conn.opts.masterName,
      cause,
      timeoutMs: settings.timeoutMs,
      beforeMs: settings.beforeMs,
      afterMs: settings.afterMs,
      rate: settings.rate,
      prefix: settings.prefix,
      ttlSeconds: settings.ttlSeconds,
      keepKeys: settings.keepKeys,
      progress,
    });
  } finally {
    await target.close();
    await ops?.close();
  }
  const figures = drillFigures(run);
  writeFileSync(settings.svg, await timelineSvg(run, figures));
  if (settings.json) {
    console.log(JSON.stringify({ ...figures, svg: settings.svg, sentinels: run.sentinels, skippedSentinels: run.skippedSentinels, problems: run.problems }));
  } else {
    for (const line of summaryLines(figures)) console.log(line);
    for (const p of run.problems) console.log(`problem: ${p}`);
    console.log(`timeline: ${settings.svg}`);
  }
  return drillExitCode(run, figures);
}
