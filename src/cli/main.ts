import { randomBytes } from 'node:crypto';
import { Command, CommanderError } from 'commander';
import { checkDevelopmentDefaults } from '../config/development-defaults.js';
import { loadConfig } from '../config/load-config.js';
import { newSecret, SECRET_MAX_BYTES, SECRET_MIN_BYTES } from '../delivery/signing.js';
import { ConfigError, DurabilityError } from '../errors/index.js';
import { ListenError } from '../listen.js';
import { createLogger } from '../log.js';
import { RedisServerMissing } from '../queue/embedded-redis.js';
import type { Roles } from '../server.js';
import {
  registerDlqCommands,
  registerEventsCommands,
  registerQuarantinedCommands,
  registerSuppressedCommands,
} from './admin-commands.js';
import { registerBitbucketCommands } from './bitbucket-command.js';
import { CONFIG_OPTION, resolveConfigPath } from './config-path.js';
import { envInit } from './env-init.js';
import { print, printError } from './output.js';

/** Exit codes scripts can trust: 0 ok, 1 failure, 2 usage or config. */
export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2 } as const;

function runRoles(roles: Roles) {
  return async (opts: { config?: string }) => {
    // The logger's level comes from the config: hold the loader's warnings until it exists.
    const deprecations: string[] = [];
    const config = loadConfig(resolveConfigPath(opts.config), process.env, (message) =>
      deprecations.push(message),
    );
    const log = createLogger(config.log.level);
    for (const message of deprecations) log.warn(message);
    checkDevelopmentDefaults(config, { ingress: roles.ingress, admin: roles.admin ?? false }, (found) =>
      log.warn(
        { key: found.key, listener: found.listener },
        `${found.key} is the example config's development value: anyone who read the example can use it`,
      ),
    );
    // Loaded on demand: the client commands (dlq, events, …) should not pay for the server's start-up.
    const { exitOnSignals, runRelay } = await import('../server.js');
    const relay = runRelay(config, roles, log);
    // Listening from the start: a SIGTERM during start-up (an orchestrator giving up) must still stop what has
    // started, or an embedded redis-server would outlive the relay. The in-flight deliveries' grace, plus a few
    // seconds for closing the HTTP servers and Redis.
    exitOnSignals(relay, log, (roles.worker ? config.worker.shutdownGrace : 0) + 10_000);
    await relay;
  };
}

export function buildCli(): Command {
  const program = new Command('hookrelay')
    .description('Webhook relay and retry broker between Bitbucket and CI systems')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('start')
    .description(
      'ingress, delivery workers and admin in one process (embedded Redis when redis.url is absent)',
    )
    .option(...CONFIG_OPTION)
    .action(runRoles({ ingress: true, worker: true, admin: true }));
  program
    .command('ingress')
    .description('only the webhook ingress (scale out behind HAProxy)')
    .option(...CONFIG_OPTION)
    .action(runRoles({ ingress: true, worker: false }));
  program
    .command('worker')
    .description('only the delivery workers')
    .option(...CONFIG_OPTION)
    .action(runRoles({ ingress: false, worker: true }));
  program
    .command('admin')
    .description('only the admin API, metrics and ops console (admin.host:admin.port)')
    .option(...CONFIG_OPTION)
    .action(runRoles({ ingress: false, worker: false, admin: true }));

  const config = program.command('config').description('work with config files');
  config
    .command('check')
    .description('validate a config file without starting anything')
    .option(...CONFIG_OPTION)
    .action((opts: { config?: string }) => {
      const file = resolveConfigPath(opts.config);
      const c = loadConfig(file, process.env, (message) => printError(`warning: ${message}`));
      print(
        `${file}: ok (${c.sources.length} sources, ${c.targets.length} targets, ${c.routes.length} routes)`,
      );
    });

  const secret = program.command('secret').description('webhook secrets');
  secret
    .command('new')
    .description(
      'print a strong random secret (paste it into the env/config): hex for a Bitbucket webhook, or with ' +
        '--standard-webhooks a whsec_ secret for a target signingSecret',
    )
    .option(
      '--bytes <n>',
      'random bytes (hex: 16..64, encoded twice as long; standard webhooks: 24..64)',
      '32',
    )
    .option('--standard-webhooks', 'a Standard Webhooks secret: whsec_ + base64 of the random bytes')
    .action((opts: { bytes: string; standardWebhooks?: boolean }) => {
      const n = Number(opts.bytes);
      const [min, max] = opts.standardWebhooks ? [SECRET_MIN_BYTES, SECRET_MAX_BYTES] : [16, 64];
      if (!Number.isInteger(n) || n < min || n > max)
        throw new CommanderError(EXIT.USAGE, 'usage', `--bytes must be ${min}..${max}`);
      process.stdout.write(`${opts.standardWebhooks ? newSecret(n) : randomBytes(n).toString('hex')}\n`);
    });

  program
    .command('demo')
    .description(
      'see a delivery, a retry, a dead letter and a replay in under a minute (own redis-server and stand-in Jenkins)',
    )
    .option('--exit', 'stop after the walk-through instead of waiting for Ctrl-C')
    .action(async (opts: { exit?: boolean }) => {
      const { runDemo } = await import('./demo.js');
      // Lines quote the relay's answers (reasons): escaped like every other human output.
      await runDemo(opts, (line) => print(`${line}\n`));
    });

  program
    .command('env')
    .description('the docker-compose environment')
    .command('init')
    .description(
      'print a complete .env for docker-compose, every secret freshly generated (hookrelay env init > .env)',
    )
    .action(() => {
      process.stdout.write(envInit());
    });

  registerEventsCommands(program);
  registerDlqCommands(program);
  registerSuppressedCommands(program);
  registerQuarantinedCommands(program);
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
      if (err.code === 'usage') printError(`error: ${err.message}`);
      return;
    }
    if (err instanceof ConfigError) {
      printError(err.message);
      process.exitCode = EXIT.USAGE;
      return;
    }
    if (err instanceof RedisServerMissing || err instanceof DurabilityError || err instanceof ListenError) {
      printError(err.message);
      process.exitCode = EXIT.FAILURE;
      return;
    }
    printError(`error: ${(err as Error).message}`);
    process.exitCode = EXIT.FAILURE;
  }
}
