#!/usr/bin/env node
/**
 * `redis-ha`: the operator's command line (package.json "bin"). One subcommand per task:
 *
 *   redis-ha rotate-passwords [--namespace NS] [--secret redis-auth] [--instance redis]
 *       [--users replication,sentinel,operations,app] [--timeout 5m] [--app-grace 10m]
 *       [--finish] [--context CTX]
 *   redis-ha migrate --from redis://old:6379 [--follow] [--overwrite] [connection options]
 *
 * Compiled with the library (tsconfig.lib.json lists this file) into out/ops/cli.js.
 */
import { parseArgs } from 'util';
import { kubectlPods, kubectlSecret } from './kubectl';
import { MIGRATE_USAGE, migrateCommand } from './migrate-command';
import { AUTH_USERS, RotationError, parseDuration, parseUsers, rotatePasswords } from './rotation';

const USAGE = `usage: redis-ha <command> [options]

commands:
  rotate-passwords   rotate the passwords in the auth Secret without restarting anything
      --namespace NS     namespace of the instance (default: the kubectl context's)
      --context CTX      kubectl context (default: the current one)
      --secret NAME      the auth Secret (default: redis-auth)
      --instance NAME    the instance name, app.kubernetes.io/instance of its pods (default: redis)
      --users LIST       comma-separated, of ${AUTH_USERS.join(', ')} (default: all)
      --timeout DUR      how long each step may wait for the pods (default: 5m)
      --app-grace DUR    after every server accepts the new app password, how long the
                         applications get to move to it before the old one is refused;
                         without it the tool stops there and --finish completes it later
      --finish           complete a rotation that was left with -previous keys
${MIGRATE_USAGE}`;

async function rotateCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      namespace: { type: 'string', short: 'n' },
      context: { type: 'string' },
      secret: { type: 'string', default: 'redis-auth' },
      instance: { type: 'string', default: 'redis' },
      users: { type: 'string', default: AUTH_USERS.join(',') },
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
    users: parseUsers(values.users!),
    timeoutMs: parseDuration(values.timeout!),
    appGraceMs: appGrace === undefined ? undefined : parseDuration(appGrace),
    finish: values.finish,
    log: (line) => console.log(`${new Date().toISOString().slice(11, 19)} ${line}`),
  });
  // A rotation left waiting for the applications is not an error, but scripts can tell it apart.
  return result.pending.length ? 3 : 0;
}

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  'rotate-passwords': rotateCommand,
  migrate: migrateCommand,
};

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
    const usage = (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    console.error(`redis-ha ${command}: ${(e as Error).message}`);
    return e instanceof RotationError ? 1 : usage ? 2 : 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
}
