import { randomBytes } from 'node:crypto';
import { Command, CommanderError } from 'commander';
import { loadConfig } from '../config/load-config.js';
import { ConfigError } from '../errors.js';
import { createLogger } from '../log.js';
import { DurabilityError } from '../queue/durability.js';
import { RedisServerMissing } from '../queue/embedded-redis.js';
import type { Roles } from '../server.js';
import { registerDlqCommands, registerEventsCommands, registerSuppressedCommands } from './admin-commands.js';
import { registerBitbucketCommands } from './bitbucket-command.js';

/** Exit codes scripts can trust: 0 ok, 1 failure, 2 usage or config. */
export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2 } as const;

function runRoles(roles: Roles) {
  return async (opts: { config: string }) => {
    const config = loadConfig(opts.config);
    const log = createLogger(config.log.level);
    // Loaded on demand: the client commands (dlq, events, …) should not pay for the server's start-up.
    const { exitOnSignals, runRelay } = await import('../server.js');
    const relay = runRelay(config, roles, log);
    // Listening from the start: a SIGTERM during start-up (an orchestrator giving up) must still stop what has
    // started, or an embedded redis-server would outlive the relay. The in-flight deliveries' grace, plus a few
    // seconds for closing the HTTP servers and Redis.
    exitOnSignals(relay, log, (roles.worker ? config.worker.shutdownGraceMs : 0) + 10_000);
    await relay;
  };
}

export function buildCli(): Command {
  const program = new Command('hookrelay')
    .description('Webhook relay and retry broker between Bitbucket and CI systems')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();
  const configOption = ['-c, --config <file>', 'config file (YAML)', process.env.HOOKRELAY_CONFIG] as const;

  program
    .command('start')
    .description(
      'ingress, delivery workers and admin in one process (embedded Redis when redis.url is absent)',
    )
    .requiredOption(...configOption)
    .action(runRoles({ ingress: true, worker: true, admin: true }));
  program
    .command('ingress')
    .description('only the webhook ingress (scale out behind HAProxy)')
    .requiredOption(...configOption)
    .action(runRoles({ ingress: true, worker: false }));
  program
    .command('worker')
    .description('only the delivery workers')
    .requiredOption(...configOption)
    .action(runRoles({ ingress: false, worker: true }));
  program
    .command('admin')
    .description('only the admin API, metrics and ops console (admin.host:admin.port)')
    .requiredOption(...configOption)
    .action(runRoles({ ingress: false, worker: false, admin: true }));

  const config = program.command('config').description('work with config files');
  config
    .command('check')
    .description('validate a config file without starting anything')
    .requiredOption(...configOption)
    .action((opts: { config: string }) => {
      const c = loadConfig(opts.config);
      process.stdout.write(
        `${opts.config}: ok (${c.sources.length} sources, ${c.targets.length} targets, ${c.routes.length} routes)\n`,
      );
    });

  const secret = program.command('secret').description('webhook secrets');
  secret
    .command('new')
    .description('print a strong random secret for a Bitbucket webhook (paste it into the env/config)')
    .option('--bytes <n>', 'random bytes (hex-encoded, so the secret is twice as long)', '32')
    .action((opts: { bytes: string }) => {
      const n = Number(opts.bytes);
      if (!Number.isInteger(n) || n < 16 || n > 64)
        throw new CommanderError(EXIT.USAGE, 'usage', '--bytes must be 16..64');
      process.stdout.write(`${randomBytes(n).toString('hex')}\n`);
    });

  registerEventsCommands(program);
  registerDlqCommands(program);
  registerSuppressedCommands(program);
  registerBitbucketCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildCli();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
      if (err.code === 'usage') process.stderr.write(`error: ${err.message}\n`);
      return;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exitCode = EXIT.USAGE;
      return;
    }
    if (err instanceof RedisServerMissing || err instanceof DurabilityError) {
      process.stderr.write(`${err.message}\n`);
      process.exitCode = EXIT.FAILURE;
      return;
    }
    process.stderr.write(`error: ${(err as Error).message}\n`);
    process.exitCode = EXIT.FAILURE;
  }
}
