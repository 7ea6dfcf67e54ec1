import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { describeScope, levelOf, parentScope } from '../bitbucket-api/hook-scope.js';
import {
  BitbucketApiError,
  DEFAULT_EVENTS,
  type Hook,
  type HooksApi,
  maskSecret,
  type PlannedRequest,
  planCreate,
  planUpdate,
} from '../bitbucket-api/hooks-api.js';
import { EXAMPLE_SOURCE_SECRETS } from '../config/development-defaults.js';
import type { SourceConfig } from '../config/types.js';
import {
  type BitbucketContext,
  type BitbucketOptions,
  commonOptions,
  currentSecret,
  parseEvents,
  requireApi,
  resolveContext,
  usage,
} from './bitbucket-context.js';
import { registerHooksCommands } from './bitbucket-hooks-command.js';
import { print, printJson } from './output.js';

interface RegisterOptions extends BitbucketOptions {
  events?: string;
  name?: string;
  inactive?: boolean;
  dryRun?: boolean;
  secretStdin?: boolean;
  /** Commander's `--no-ssl-verification`: true unless given. */
  sslVerification: boolean;
  apply?: boolean;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

/**
 * The secret the hook signs with: the source's first (current) secret, or one read from standard input — never
 * an argument, which would land in shell history and `ps`. It must be one the relay accepts, and not one of
 * the example config's development secrets.
 */
async function webhookSecret(source: SourceConfig, fromStdin: boolean | undefined): Promise<string> {
  let secret = currentSecret(source);
  if (fromStdin) {
    secret = await readStdin();
    if (!secret) throw usage('--secret-stdin: standard input is empty');
    if (!source.secrets.filter(Boolean).includes(secret))
      throw usage(
        `the secret on standard input is not one of source ${source.id}'s secrets in the config: the relay ` +
          'would refuse every delivery signed with it',
      );
  }
  if (EXAMPLE_SOURCE_SECRETS.includes(secret))
    throw usage(
      `source ${source.id} uses the example config's development secret, which anyone can read: ` +
        'set a real one (`hookrelay secret new`) before registering a hook',
    );
  return secret;
}

/** A hook at the other level (workspace/project above a repository) sending to the same URL doubles every event. */
async function warnOtherLevels(api: HooksApi, ctx: BitbucketContext): Promise<string[]> {
  const parent = parentScope(ctx.scope);
  if (!parent) return [];
  let found: Hook | undefined;
  try {
    found = await api.find(parent, ctx.relayUrl);
  } catch (err) {
    if (err instanceof BitbucketApiError && [401, 403, 404].includes(err.status)) {
      const note = `note: could not check the ${levelOf(parent)} hooks of ${parent.owner} (HTTP ${err.status})`;
      process.stderr.write(`${note}\n`);
      return [note];
    }
    throw err;
  }
  if (!found) return [];
  const warning =
    `warning: ${describeScope(parent)} already has hook ${found.id} sending to ${ctx.relayUrl}: every event of ` +
    `${describeScope(ctx.scope)} would arrive twice (the relay drops the copy, but one of the two hooks is enough)`;
  process.stderr.write(`${warning}\n`);
  return [warning];
}

function report(
  ctx: BitbucketContext,
  opts: RegisterOptions,
  req: PlannedRequest,
  outcome: {
    action: 'created' | 'updated';
    dryRun: boolean;
    checked: boolean;
    id?: string;
    warnings: string[];
  },
): void {
  const url = `${ctx.apiUrl}${req.path}`;
  if (opts.json) {
    printJson({
      ...outcome,
      scope: describeScope(ctx.scope),
      level: levelOf(ctx.scope),
      request: { method: req.method, url, body: maskSecret(req.body) },
    });
    return;
  }
  if (outcome.dryRun) {
    print(
      `dry run: would ${outcome.action === 'created' ? 'create' : 'update'} the webhook on ${describeScope(ctx.scope)}`,
    );
    if (!outcome.checked)
      print('(no credentials: existing hooks were not checked, so this may be an update)');
    print(`${req.method} ${url}`);
    print(JSON.stringify(maskSecret(req.body), null, 2));
    return;
  }
  print(`${outcome.action} webhook ${outcome.id ?? ''} on ${describeScope(ctx.scope)} -> ${ctx.relayUrl}`);
}

async function register(opts: RegisterOptions): Promise<void> {
  const ctx = resolveContext(opts, !opts.dryRun);
  const events = parseEvents(ctx.source, opts.events);
  if (ctx.source.platform === 'cloud' && !opts.sslVerification)
    throw usage('--no-ssl-verification is for Data Center: Bitbucket Cloud always checks the certificate');
  const secret = await webhookSecret(ctx.source, opts.secretStdin);
  const api = ctx.api;
  const existing = api ? await api.find(ctx.scope, ctx.relayUrl) : undefined;
  const warnings = api ? await warnOtherLevels(api, ctx) : [];
  // An update changes what the admin asked for and keeps the rest (a name given in Bitbucket's UI, the events
  // when --events is not given).
  const req = existing
    ? planUpdate(ctx.scope, existing, {
        url: ctx.relayUrl,
        active: !opts.inactive,
        secret,
        sslVerificationRequired: opts.sslVerification,
        ...(events ? { events } : {}),
        ...(opts.name ? { name: opts.name } : {}),
      })
    : planCreate(ctx.scope, {
        name: opts.name ?? `hookrelay (${ctx.source.id})`,
        url: ctx.relayUrl,
        events: events ?? DEFAULT_EVENTS[ctx.source.platform],
        active: !opts.inactive,
        secret,
        sslVerificationRequired: opts.sslVerification,
      });
  const action = existing ? 'updated' : 'created';
  if (opts.dryRun) return report(ctx, opts, req, { action, dryRun: true, checked: !!api, warnings });
  const { id } = await requireApi(ctx).send(req);
  report(ctx, opts, req, { action, dryRun: false, checked: true, id: id || existing?.id, warnings });
}

/**
 * Two steps, so no webhook is ever signed with a secret the relay does not accept yet: first a new secret goes
 * into the config next to the old one (and the relay is restarted), then `--apply` puts it on the hook.
 */
async function rotate(opts: RegisterOptions): Promise<void> {
  if (!opts.apply) return rotateStep1(opts);
  // A preview of the update needs the hook as Bitbucket has it: without credentials there is nothing to show.
  const ctx = resolveContext(opts, true);
  const api = requireApi(ctx);
  // `${BB_SECRET_OLD:-}` left empty is no second secret.
  if (ctx.source.secrets.filter(Boolean).length < 2)
    throw usage(
      `source ${ctx.source.id} lists one secret only: add the new secret first and keep the old one after it ` +
        '(step 1 of rotate-secret without --apply), so webhooks in flight are not rejected',
    );
  const secret = await webhookSecret(ctx.source, opts.secretStdin);
  const existing = await api.find(ctx.scope, ctx.relayUrl);
  if (!existing)
    throw new Error(
      `no webhook with URL ${ctx.relayUrl} on ${describeScope(ctx.scope)}: use \`hookrelay bitbucket register\` first`,
    );
  // Read the hook itself (the list may abbreviate it), then put it back with only the secret changed.
  const hook = await api.get(ctx.scope, existing.id);
  const req = planUpdate(ctx.scope, hook, { secret });
  if (opts.dryRun)
    return report(ctx, opts, req, { action: 'updated', dryRun: true, checked: true, warnings: [] });
  const { id } = await api.send(req);
  report(ctx, opts, req, {
    action: 'updated',
    dryRun: false,
    checked: true,
    id: id || hook.id,
    warnings: [],
  });
  if (!opts.json)
    print('The hook now signs with the new secret. Remove the old secret from the config and restart.');
}

/** Step 1 prints a new secret and the config change; it talks to no one, so it needs no credentials. */
function rotateStep1(opts: RegisterOptions): void {
  const ctx = resolveContext(opts, false);
  const next = randomBytes(32).toString('hex');
  const where = opts.repo
    ? `--repo ${opts.repo}`
    : opts.workspace
      ? `--workspace ${opts.workspace}`
      : `--project ${opts.project}`;
  if (opts.json) {
    printJson({ source: ctx.source.id, newSecret: next, step: 1 });
    return;
  }
  print(
    [
      `New secret for source ${ctx.source.id}:`,
      '',
      `  ${next}`,
      '',
      "1. Put it FIRST in the source's secrets and keep the current one after it, e.g.",
      `     sources: [{ id: ${ctx.source.id}, ..., secrets: ["\${BB_SECRET}", "\${BB_SECRET_OLD}"] }]`,
      `     BB_SECRET_OLD=<the current secret>  BB_SECRET=${next}`,
      '   and restart every ingress instance (they then accept both).',
      '2. Put the new secret on the Bitbucket hook (this step needs Bitbucket credentials):',
      `     hookrelay bitbucket rotate-secret --config ${ctx.configPath} --source ${ctx.source.id} ${where} --url ${ctx.relayUrl} --apply`,
      '3. Once Bitbucket signs with the new secret, drop BB_SECRET_OLD and restart again.',
    ].join('\n'),
  );
}

function writeOptions(cmd: Command): Command {
  return commonOptions(cmd)
    .option(
      '--secret-stdin',
      "read the webhook secret from standard input (it must be one of the source's secrets)",
    )
    .option('--dry-run', 'print the request (secret masked), change nothing');
}

export function registerBitbucketCommands(program: Command): void {
  const bb = program
    .command('bitbucket')
    .description('register the relay as a Bitbucket webhook and look after the hook (see docs/setup.md)');
  writeOptions(
    bb
      .command('register')
      .description("create or update (same URL) the relay's webhook with the source's secret"),
  )
    .option('--events <list>', 'comma-separated event keys (default: pushes and pull requests)')
    .option(
      '--name <name>',
      'hook description/name (default "hookrelay (<source>)"; an update keeps the current one)',
    )
    .option('--inactive', 'create the hook disabled')
    .option(
      '--no-ssl-verification',
      "Data Center: do not check the relay's TLS certificate (default: checked)",
    )
    .action((opts: RegisterOptions) => register(opts));
  writeOptions(
    bb
      .command('rotate-secret')
      .description('step 1: a new secret and the config change; step 2 (--apply): put it on the hook'),
  )
    .option('--apply', "PUT the source's first secret on the existing hook, changing nothing else")
    .action((opts: RegisterOptions) => rotate({ ...opts, sslVerification: true }));
  registerHooksCommands(bb);
}
