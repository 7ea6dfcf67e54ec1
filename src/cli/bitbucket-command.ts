import { randomBytes } from 'node:crypto';
import { type Command, CommanderError } from 'commander';
import { credentialsFromEnv, credentialsHelp } from '../bitbucket-api/credentials.js';
import {
  DEFAULT_API_URL,
  DEFAULT_EVENTS,
  type ExistingHook,
  type HookSpec,
  HooksApi,
  maskSecret,
  type PlannedRequest,
  sameUrl,
} from '../bitbucket-api/hooks-api.js';
import { loadConfig } from '../config/load-config.js';
import type { SourceConfig } from '../config/types.js';
import { EXIT_USAGE } from './admin-client.js';
import { print, printJson } from './output.js';

interface HookOptions {
  config: string;
  source: string;
  repo: string;
  url: string;
  events?: string;
  apiUrl?: string;
  name?: string;
  inactive?: boolean;
  dryRun?: boolean;
  json?: boolean;
  apply?: boolean;
}

const usage = (message: string) => new CommanderError(EXIT_USAGE, 'usage', message);

function resolve(opts: HookOptions): { source: SourceConfig; api: HooksApi; spec: Omit<HookSpec, 'secret'> } {
  const config = loadConfig(opts.config);
  const source = config.sources.find((s) => s.id === opts.source);
  if (!source)
    throw usage(
      `no source ${opts.source} in ${opts.config} (have: ${config.sources.map((s) => s.id).join(', ')})`,
    );
  let url: URL;
  try {
    url = new URL(opts.url);
  } catch {
    throw usage(`--url is not a URL: ${opts.url}`);
  }
  if (!/^https?:$/.test(url.protocol)) throw usage('--url must be http(s)');
  if (!/^[^/\s]+\/[^/\s]+$/.test(opts.repo))
    throw usage('--repo must be WORKSPACE/SLUG (Cloud) or PROJECT/SLUG (Data Center)');
  const platform = source.platform;
  const apiUrl = opts.apiUrl ?? (platform === 'cloud' ? DEFAULT_API_URL : undefined);
  if (!apiUrl) throw usage('--api-url is required for Data Center (e.g. https://bitbucket.example.com)');
  const credentials = credentialsFromEnv(platform, process.env);
  if (!credentials && !opts.dryRun) throw usage(`no Bitbucket credentials: ${credentialsHelp(platform)}`);
  const events = opts.events
    ? opts.events
        .split(',')
        .map((e) => e.trim())
        .filter(Boolean)
    : DEFAULT_EVENTS[platform];
  return {
    source,
    api: new HooksApi(apiUrl, credentials),
    spec: {
      platform,
      repo: opts.repo,
      url: url.toString(),
      events,
      name: opts.name ?? `hookrelay (${source.id})`,
      active: !opts.inactive,
    },
  };
}

async function findExisting(
  api: HooksApi,
  spec: Pick<HookSpec, 'platform' | 'repo' | 'url'>,
  canList: boolean,
) {
  if (!canList) return { existing: undefined, checked: false };
  const hooks = await api.list(spec);
  return { existing: hooks.find((h) => sameUrl(h.url, spec.url)), checked: true };
}

function report(
  opts: HookOptions,
  req: PlannedRequest,
  outcome: { dryRun: boolean; action: 'created' | 'updated'; id?: string; checked: boolean; repo: string },
) {
  if (opts.json) {
    printJson({ ...outcome, request: { ...req, body: maskSecret(req.body) } });
    return;
  }
  if (outcome.dryRun) {
    print(
      `dry run: would ${outcome.action === 'created' ? 'create' : 'update'} the webhook on ${outcome.repo}`,
    );
    if (!outcome.checked)
      print('(no credentials: existing hooks were not checked, so this may be an update)');
    print(`${req.method} ${req.url}`);
    print(JSON.stringify(maskSecret(req.body), null, 2));
    return;
  }
  print(`${outcome.action} webhook ${outcome.id ?? ''} on ${outcome.repo} -> ${req.body?.url}`);
}

async function register(opts: HookOptions): Promise<void> {
  const { source, api, spec } = resolve(opts);
  const secret = source.secrets[0];
  if (!secret)
    throw usage(`source ${source.id} has no secret; run \`hookrelay secret new\` and add it to the config`);
  const canList = !!credentialsFromEnv(spec.platform, process.env);
  const { existing, checked } = await findExisting(api, spec, canList);
  const req = api.plan({ ...spec, secret }, existing);
  const action = existing ? 'updated' : 'created';
  if (opts.dryRun) return report(opts, req, { dryRun: true, action, checked, repo: spec.repo });
  const { id } = await api.send(req);
  report(opts, req, { dryRun: false, action, id: id || existing?.id, checked, repo: spec.repo });
}

/**
 * Two steps, so no webhook is ever signed with a secret the relay does not accept yet: first a new secret
 * goes into the config next to the old one (and the relay is restarted), then `--apply` puts it on the hook.
 */
async function rotate(opts: HookOptions): Promise<void> {
  const { source, api, spec } = resolve(opts);
  if (!opts.apply) {
    const next = randomBytes(32).toString('hex');
    if (opts.json) {
      printJson({ source: source.id, newSecret: next, step: 1 });
      return;
    }
    print(
      [
        `New secret for source ${source.id}:`,
        '',
        `  ${next}`,
        '',
        "1. Put it FIRST in the source's secrets and keep the current one after it, e.g.",
        `     sources: [{ id: ${source.id}, ..., secrets: ["\${BB_SECRET}", "\${BB_SECRET_OLD}"] }]`,
        `     BB_SECRET_OLD=<the current secret>  BB_SECRET=${next}`,
        '   and restart every ingress instance (they then accept both).',
        '2. Put the new secret on the Bitbucket hook:',
        `     hookrelay bitbucket rotate-secret --config ${opts.config} --source ${source.id} --repo ${opts.repo} --url ${opts.url} --apply`,
        '3. Once Bitbucket signs with the new secret, drop BB_SECRET_OLD and restart again.',
      ].join('\n'),
    );
    return;
  }
  if (source.secrets.length < 2)
    throw usage(
      `source ${source.id} lists one secret only: add the new secret first and keep the old one after it ` +
        '(step 1 of rotate-secret without --apply), so webhooks in flight are not rejected',
    );
  const canList = !!credentialsFromEnv(spec.platform, process.env);
  const { existing, checked } = await findExisting(api, spec, canList);
  if (checked && !existing)
    throw new Error(
      `no webhook with URL ${spec.url} on ${spec.repo}: use \`hookrelay bitbucket register\` first`,
    );
  const events = opts.events || !existing?.events.length ? spec.events : existing.events;
  const req = api.plan(
    { ...spec, events, active: existing?.active ?? spec.active, secret: source.secrets[0]! },
    existing,
  );
  if (opts.dryRun) return report(opts, req, { dryRun: true, action: 'updated', checked, repo: spec.repo });
  const { id } = await api.send(req);
  report(opts, req, { dryRun: false, action: 'updated', id: id || existing?.id, checked, repo: spec.repo });
  if (!opts.json)
    print('The hook now signs with the new secret. Remove the old secret from the config and restart.');
}

function hookOptions(cmd: Command): Command {
  return cmd
    .requiredOption('-c, --config <file>', 'config file (YAML)', process.env.HOOKRELAY_CONFIG)
    .requiredOption('--source <id>', 'source id in the config (its platform and secret are used)')
    .requiredOption('--repo <repo>', 'WORKSPACE/SLUG (Cloud) or PROJECT/SLUG (Data Center)')
    .requiredOption(
      '--url <url>',
      'public URL Bitbucket posts to, e.g. https://relay.example.com/hooks/<source>',
    )
    .option('--events <list>', 'comma-separated event keys (default: pushes and pull requests)')
    .option(
      '--api-url <url>',
      `REST API base URL (Cloud default ${DEFAULT_API_URL}; required for Data Center)`,
    )
    .option('--name <name>', 'hook description/name (default "hookrelay (<source>)")')
    .option('--inactive', 'create the hook disabled')
    .option('--dry-run', 'print the request (secret masked), change nothing')
    .option('--json', 'machine-readable JSON on stdout');
}

export function registerBitbucketCommands(program: Command): void {
  const bb = program.command('bitbucket').description('register the relay as a Bitbucket repository webhook');
  hookOptions(
    bb
      .command('register')
      .description("create or update (same URL) the repository webhook with the source's secret"),
  ).action((opts: HookOptions) => register(opts));
  hookOptions(
    bb
      .command('rotate-secret')
      .description('step 1: a new secret and the config change; step 2 (--apply): put it on the hook')
      .option(
        '--apply',
        'PUT the first secret of the source on the existing hook (config holds new and old)',
      ),
  ).action((opts: HookOptions) => rotate(opts));
}

export type { ExistingHook };
