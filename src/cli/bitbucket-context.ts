import { type Command, CommanderError } from 'commander';
import { subscribableEvents } from '../bitbucket/event-keys.js';
import { CredentialsError, credentialsFromEnv, credentialsHelp } from '../bitbucket-api/credentials.js';
import { describeScope, type HookScope, scopeFromOptions } from '../bitbucket-api/hook-scope.js';
import { DEFAULT_API_URL, HooksApi } from '../bitbucket-api/hooks-api.js';
import { loadConfig } from '../config/load-config.js';
import type { Config, SourceConfig } from '../config/types.js';
import { EXIT_USAGE } from './admin-client.js';
import { CONFIG_OPTION, resolveConfigPath } from './config-path.js';

/** Options every `bitbucket` command shares. */
export interface BitbucketOptions {
  config?: string;
  source: string;
  repo?: string;
  workspace?: string;
  project?: string;
  url?: string;
  apiUrl?: string;
  insecure?: boolean;
  json?: boolean;
}

export const usage = (message: string) => new CommanderError(EXIT_USAGE, 'usage', message);

export interface BitbucketContext {
  /** The config file read: `--config`, HOOKRELAY_CONFIG or ./hookrelay.yaml (resolveConfigPath). */
  configPath: string;
  config: Config;
  source: SourceConfig;
  scope: HookScope;
  apiUrl: string;
  /** The relay's public webhook URL (`--url`), checked against the source. */
  relayUrl: string;
  /** Null when the environment holds no credential (only `--dry-run` of a new hook goes on without one). */
  api: HooksApi | null;
}

/** Config, source, scope, URLs and credentials, each checked before any request leaves. */
export function resolveContext(opts: BitbucketOptions, needCredentials: boolean): BitbucketContext {
  const configPath = resolveConfigPath(opts.config);
  const config = loadConfig(configPath);
  const source = config.sources.find((s) => s.id === opts.source);
  if (!source)
    throw usage(
      `no source ${opts.source} in ${configPath} (have: ${config.sources.map((s) => s.id).join(', ')})`,
    );
  const scope = scopeFromOptions(source.platform, opts);
  if (typeof scope === 'string') throw usage(scope);
  const apiUrl = checkApiUrl(opts, source);
  const relayUrl = checkRelayUrl(opts.url, source);
  let credentials: ReturnType<typeof credentialsFromEnv>;
  try {
    credentials = credentialsFromEnv(source.platform, process.env);
  } catch (err) {
    if (err instanceof CredentialsError) throw usage(err.message);
    throw err;
  }
  if (!credentials && needCredentials)
    throw usage(`no Bitbucket credentials: ${credentialsHelp(source.platform)}`);
  return {
    configPath,
    config,
    source,
    scope,
    apiUrl,
    relayUrl,
    api: credentials ? new HooksApi(apiUrl, credentials) : null,
  };
}

/** The API URL carries the token and the webhook secret: https only, unless `--insecure` says it is a test API. */
function checkApiUrl(opts: BitbucketOptions, source: SourceConfig): string {
  const raw = opts.apiUrl ?? (source.platform === 'cloud' ? DEFAULT_API_URL : undefined);
  if (!raw) throw usage('--api-url is required for Data Center (e.g. https://bitbucket.example.com)');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw usage(`--api-url is not a URL: ${raw}`);
  }
  if (url.protocol === 'http:' && !opts.insecure)
    throw usage(
      `--api-url ${raw} is plain http: the API token and the webhook secret would cross the network in clear. ` +
        'Use https://, or --insecure for a test API.',
    );
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw usage(`--api-url must be https://, got ${raw}`);
  return url.toString().replace(/\/+$/, '');
}

/**
 * The relay's ingress path is `/hooks/<source>` (a proxy may put a prefix before it): a URL that names another
 * source would have Bitbucket sign with this source's secret and the relay check it against the other's.
 */
function checkRelayUrl(raw: string | undefined, source: SourceConfig): string {
  if (!raw) throw usage('--url is required (the public URL Bitbucket posts to)');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw usage(`--url is not a URL: ${raw}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw usage(`--url must be http(s), got ${raw}`);
  const match = /\/hooks\/([^/]+)\/?$/.exec(url.pathname);
  if (!match)
    throw usage(
      `--url must end in /hooks/${source.id} (the relay's webhook path for this source), got ${url.pathname}`,
    );
  const named = decodeURIComponent(match[1]!);
  if (named !== source.id)
    throw usage(
      `--url ends in /hooks/${named}, which is source "${named}", not "${source.id}": the relay would check ` +
        `${source.id}'s signatures against ${named}'s secrets. Use .../hooks/${source.id}.`,
    );
  return url.toString();
}

/** `--events` checked against the platform's subscribable events, before any request. */
export function parseEvents(source: SourceConfig, raw: string | undefined): string[] | undefined {
  if (raw === undefined) return undefined;
  const events = [
    ...new Set(
      raw
        .split(',')
        .map((e) => e.trim())
        .filter(Boolean),
    ),
  ];
  if (events.length === 0) throw usage('--events is empty');
  const known = subscribableEvents(source.platform);
  const unknown = events.filter((e) => !known.includes(e));
  if (unknown.length > 0)
    throw usage(
      `unknown ${source.platform === 'cloud' ? 'Bitbucket Cloud' : 'Data Center'} event${unknown.length > 1 ? 's' : ''} ` +
        `${unknown.join(', ')}; known: ${known.join(', ')}`,
    );
  return events;
}

/** The source's first non-empty secret: the one the relay lists first and a hook should sign with. */
export function currentSecret(source: SourceConfig): string {
  return source.secrets.find(Boolean)!;
}

export function requireApi(ctx: BitbucketContext): HooksApi {
  if (!ctx.api) throw usage(`no Bitbucket credentials: ${credentialsHelp(ctx.source.platform)}`);
  return ctx.api;
}

export function scopeText(ctx: BitbucketContext): string {
  return describeScope(ctx.scope);
}

/** The options of every command: config, source, where the hook lives, the relay's URL, the API. */
export function commonOptions(cmd: Command): Command {
  return cmd
    .option(...CONFIG_OPTION)
    .requiredOption('--source <id>', 'source id in the config (its platform and secret are used)')
    .option('--repo <repo>', 'a repository hook: WORKSPACE/SLUG (Cloud) or PROJECT/SLUG (Data Center)')
    .option('--workspace <workspace>', 'a Cloud workspace hook (every repository of the workspace)')
    .option('--project <key>', 'a Data Center project hook (every repository of the project)')
    .requiredOption(
      '--url <url>',
      'public URL Bitbucket posts to, e.g. https://relay.example.com/hooks/<source>',
    )
    .option(
      '--api-url <url>',
      `REST API base URL (Cloud default ${DEFAULT_API_URL}; required for Data Center)`,
    )
    .option('--insecure', 'allow a plain http:// --api-url (a test API only)')
    .option('--json', 'machine-readable JSON on stdout');
}
