import { existsSync, readFileSync } from 'node:fs';
import type { StaticDecode } from '@sinclair/typebox';
import { Ajv, type ErrorObject } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parseDocument } from 'yaml';
import { SECRET_MAX_BYTES, SECRET_MIN_BYTES, secretProblem } from '../delivery/signing.js';
import { ConfigError } from '../errors/index.js';
import { DURATION_KEYWORD, type DurationRange, formatMs, toMs } from './duration.js';
import { configSchema } from './schema.js';
import { decodeTree, moveReplacedKeys, type ReplacedKey } from './schema-walk.js';
import { checkTriggerTarget } from './target-rules.js';
import type { Config } from './types.js';

// ajv-formats ships CJS with a default export that ESM sees one level down.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

// verbose: errors carry their schema, so an anyOf failure can say what it wanted (a duration, …).
const ajv = new Ajv({
  allErrors: true,
  useDefaults: true,
  discriminator: true,
  strict: false,
  verbose: true,
});
addFormats(ajv);
// A duration's shape is the schema's anyOf (a number, or a string with a unit); its range needs the value in
// milliseconds first, which JSON Schema cannot express.
const durationInRange: ((range: DurationRange, value: unknown) => boolean) & {
  errors?: Partial<ErrorObject>[];
} = (range, value) => {
  if (typeof value !== 'number' && typeof value !== 'string') return true; // the anyOf reports it
  let ms: number;
  try {
    ms = toMs(value);
  } catch {
    return true; // the anyOf reports it
  }
  const limit =
    range.minimum !== undefined && ms < range.minimum
      ? `at least ${formatMs(range.minimum)}`
      : range.maximum !== undefined && ms > range.maximum
        ? `at most ${formatMs(range.maximum)}`
        : null;
  if (limit === null) return true;
  durationInRange.errors = [
    { keyword: DURATION_KEYWORD, message: `must be a duration of ${limit}`, params: { limit } },
  ];
  return false;
};
ajv.addKeyword({ keyword: DURATION_KEYWORD, schemaType: 'object', errors: true, validate: durationInRange });
const validate = ajv.compile(configSchema);

/** `a/0/b` (JSON pointer) → `a[0].b`, the way people read config paths. */
export function pointerToPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : path ? `${path}.${part}` : part), '');
}

function describe(err: ErrorObject): { path: string; message: string } {
  const base = pointerToPath(err.instancePath);
  const join = (key: string) => (base ? `${base}.${key}` : key);
  switch (err.keyword) {
    case 'required':
      return { path: join(String(err.params.missingProperty)), message: 'is required' };
    case 'additionalProperties':
      return { path: join(String(err.params.additionalProperty)), message: 'is not a known key' };
    case 'format':
      return {
        path: base,
        message: err.params.format === 'uri' ? 'must be a URL' : `must be a ${err.params.format}`,
      };
    case 'pattern':
      // A key of a map (propertyNames), not a value: say which key.
      if (err.propertyName !== undefined) {
        return { path: base, message: `key "${err.propertyName}" must match ${err.params.pattern}` };
      }
      if (base === 'redis.url') {
        return { path: base, message: 'must be a redis://, rediss:// or unix:/// (socket path) URL' };
      }
      if (/(^|\.)(url|jwksUrl|tokenUrl)$/.test(base))
        return { path: base, message: 'must be a URL (http or https)' };
      return { path: base, message: `must match ${err.params.pattern}` };
    case 'enum':
      return { path: base, message: `must be one of: ${(err.params.allowedValues as unknown[]).join(', ')}` };
    case 'anyOf':
      if (err.parentSchema?.[DURATION_KEYWORD]) {
        return { path: base, message: 'must be a duration (milliseconds, or like "30s", "5m", "2h")' };
      }
      return { path: base, message: err.message ?? 'is invalid' };
    case 'discriminator':
      return { path: join('type'), message: 'must be one of: bearer, basic, token, oauth2' };
    default:
      return { path: base, message: err.message ?? 'is invalid' };
  }
}

/** Keep one message per path, and drop the branch noise that anyOf/oneOf produce next to their summary. */
function formatAjvErrors(errors: ErrorObject[]): string[] {
  const anyOfPaths = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  const seen = new Map<string, string>();
  for (const err of errors) {
    if (err.keyword !== 'anyOf' && anyOfPaths.has(err.instancePath)) continue;
    if (err.keyword === 'if' || err.keyword === 'oneOf') continue;
    const { path, message } = describe(err);
    if (!seen.has(path)) seen.set(path, message);
  }
  return [...seen].map(([path, message]) => `${path || '(root)'}: ${message}`);
}

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replace `${VAR}` and `${VAR:-default}` inside string values. Done on the parsed tree, not the raw text, so an
 * environment value can never inject YAML structure.
 */
function interpolate(value: unknown, path: string, env: NodeJS.ProcessEnv, problems: string[]): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (_match, name: string, fallback: string | undefined) => {
      const found = env[name];
      if (found !== undefined) return found;
      if (fallback !== undefined) return fallback;
      problems.push(
        `${path || '(root)'}: environment variable ${name} is not set (use \${${name}:-} to allow empty)`,
      );
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((item, i) => interpolate(item, `${path}[${i}]`, env, problems));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      out[key] = interpolate(item, path ? `${path}.${key}` : key, env, problems);
    }
    return out;
  }
  return value;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const item of Object.values(value)) deepFreeze(item);
    Object.freeze(value);
  }
  return value;
}

// biome-ignore lint/suspicious/noExplicitAny: the raw tree has just been validated against the schema
type Raw = any;

function hasUserinfo(url: string): boolean {
  try {
    const parsed = new URL(url);
    return parsed.username !== '' || parsed.password !== '';
  } catch {
    return false; // reported by the schema's uri format
  }
}

function redisTlsProblems(redis: Raw): string[] {
  const tls = redis.tls;
  if (!tls) return [];
  const problems: string[] = [];
  if (!redis.url && !redis.sentinels && !redis.cluster) {
    problems.push(
      'redis.tls: needs redis.url, redis.sentinels or redis.cluster (the embedded Redis has no TLS)',
    );
  } else if (redis.url?.startsWith('unix:')) {
    problems.push('redis.tls: a unix:/// socket is not TLS; use a redis:// or rediss:// URL');
  }
  if (Boolean(tls.certFile) !== Boolean(tls.keyFile)) {
    problems.push(
      `redis.tls.${tls.certFile ? 'keyFile' : 'certFile'}: is required with redis.tls.${tls.certFile ? 'certFile' : 'keyFile'}`,
    );
  }
  for (const key of ['caFile', 'certFile', 'keyFile'] as const) {
    if (tls[key] && !existsSync(tls[key])) problems.push(`redis.tls.${key}: no such file: ${tls[key]}`);
  }
  return problems;
}

function crossCheck(raw: Raw): string[] {
  const problems: string[] = [];
  const unique = (list: { id?: string }[], name: string) => {
    const seen = new Set<string>();
    list.forEach((item, i) => {
      if (item.id === undefined) return;
      if (seen.has(item.id)) problems.push(`${name}[${i}].id: duplicate id "${item.id}"`);
      seen.add(item.id);
    });
  };
  unique(raw.sources, 'sources');
  unique(raw.targets, 'targets');
  unique(raw.routes, 'routes');
  const sources = new Set(raw.sources.map((s: Raw) => s.id));
  const targets = new Set(raw.targets.map((t: Raw) => t.id));
  raw.sources.forEach((source: Raw, i: number) => {
    if (!source.secrets.some((s: string) => s.length > 0)) {
      problems.push(`sources[${i}].secrets: needs at least one non-empty secret`);
    }
  });
  raw.routes.forEach((route: Raw, i: number) => {
    if (!sources.has(route.source)) problems.push(`routes[${i}].source: unknown source "${route.source}"`);
    route.targets.forEach((t: string, j: number) => {
      if (!targets.has(t)) problems.push(`routes[${i}].targets[${j}]: unknown target "${t}"`);
    });
  });
  raw.sources.forEach((source: Raw, i: number) => {
    if (!source.api) return;
    if (source.platform !== 'datacenter') {
      problems.push(`sources[${i}].api: only for platform datacenter (Cloud payloads carry commit messages)`);
    }
    const basic = source.api.username !== undefined || source.api.password !== undefined;
    if (source.api.token !== undefined && basic) {
      problems.push(`sources[${i}].api: set token, or username and password, not both`);
    } else if (basic && (source.api.username === undefined || source.api.password === undefined)) {
      problems.push(`sources[${i}].api: username and password go together`);
    } else if (!basic && source.api.token === undefined) {
      problems.push(`sources[${i}].api: needs a token (or username and password)`);
    }
  });
  raw.routes.forEach((route: Raw, i: number) => {
    if (route.skipSuperseded && route.coalesce === 'latest-per-ref') {
      problems.push(
        `routes[${i}].skipSuperseded: only without coalesce (latest-per-ref already sends only the newest push)`,
      );
    }
  });
  raw.targets.forEach((target: Raw, i: number) => {
    if (hasUserinfo(target.url)) {
      problems.push(
        `targets[${i}].url: must not contain user:password@ (credentials in a URL are dropped by the HTTP ` +
          `client and end up in logs); use targets[${i}].auth: { type: basic, username, password }`,
      );
    }
    if (target.type === 'teamcity' && !target.locator) {
      problems.push(`targets[${i}].locator: is required for type teamcity`);
    }
    if (target.serverUrl !== undefined && target.type !== 'jenkins-branch-source') {
      problems.push(`targets[${i}].serverUrl: only for type jenkins-branch-source`);
    }
    const badSecret = target.signingSecret === undefined ? null : secretProblem(target.signingSecret);
    if (badSecret) {
      problems.push(
        `targets[${i}].signingSecret: ${badSecret}; a Standard Webhooks secret is whsec_ + base64 of ` +
          `${SECRET_MIN_BYTES}-${SECRET_MAX_BYTES} random bytes: make one with \`hookrelay secret new --standard-webhooks\``,
      );
    }
    problems.push(...checkTriggerTarget(target, i));
  });
  // The Branch Source plugin only takes a Data Center event with ?server_url= naming a server Jenkins knows.
  const dcSources = new Set(
    raw.sources.filter((s: Raw) => s.platform === 'datacenter').map((s: Raw) => s.id),
  );
  raw.targets.forEach((target: Raw, i: number) => {
    if (target.type !== 'jenkins-branch-source' || target.serverUrl || /[?&]server_url=/.test(target.url))
      return;
    const fromDc = raw.routes.some((r: Raw) => dcSources.has(r.source) && r.targets.includes(target.id));
    if (fromDc) problems.push(`targets[${i}].serverUrl: is required for a Data Center source's events`);
  });
  const redisModes = ['url', 'sentinels', 'cluster'].filter((k) => raw.redis[k] !== undefined);
  if (redisModes.length > 1)
    problems.push(`redis: set only one of url, sentinels, cluster (got ${redisModes.join(', ')})`);
  if (raw.redis.sentinels && !raw.redis.name) problems.push('redis.name: is required with redis.sentinels');
  problems.push(...redisTlsProblems(raw.redis));
  if (raw.redis.shards !== undefined && !raw.redis.cluster)
    problems.push('redis.shards: only with redis.cluster (one Redis has one shard)');
  return problems;
}

// Enough shards to spread over a few primaries without a worker needing hundreds of queues.
const DEFAULT_CLUSTER_SHARDS = 12;

/** The validated tree in memory: durations in milliseconds, and what the file may leave out filled in. */
function normalise(raw: Raw): Config {
  const decoded = decodeTree(configSchema, raw) as StaticDecode<typeof configSchema>;
  return {
    ...decoded,
    redis: {
      ...decoded.redis,
      shards: decoded.redis.cluster ? (decoded.redis.shards ?? DEFAULT_CLUSTER_SHARDS) : 1,
    },
    worker: {
      ...decoded.worker,
      // A request cut off by shutdown is sent again with the same key, which a target without idempotency may
      // take for a second build: by default wait as long as the slowest target may take.
      shutdownGrace:
        decoded.worker.shutdownGrace ?? Math.max(...decoded.targets.map((t) => t.timeout)) + 2000,
    },
    sources: decoded.sources.map((s) => ({ ...s, secrets: s.secrets.filter((x) => x.length > 0) })),
    routes: decoded.routes.map((r, i) => ({ ...r, id: r.id ?? `route-${i}` })),
  };
}

/** An error at a key the file spelled the old way names the key the file has. */
function atOldKeys(problems: string[], moved: ReplacedKey[]): string[] {
  return problems.map((problem) => {
    const match = moved.find(({ newPath }) => problem.startsWith(`${newPath}: `));
    return match ? match.oldPath + problem.slice(match.newPath.length) : problem;
  });
}

/** How the loader says that a file uses an old key name (once per key, at load). */
export type DeprecationWarn = (message: string) => void;

const warnOnStderr: DeprecationWarn = (message) => process.emitWarning(message, 'DeprecationWarning');

/** Validate an already-parsed config tree. Throws ConfigError listing every problem by path. */
export function buildConfig(
  tree: unknown,
  env: NodeJS.ProcessEnv = process.env,
  file?: string,
  warn: DeprecationWarn = warnOnStderr,
): Config {
  const problems: string[] = [];
  const raw = interpolate(tree ?? {}, '', env, problems);
  const moved = moveReplacedKeys(configSchema, raw, problems);
  if (!validate(raw)) problems.push(...atOldKeys(formatAjvErrors(validate.errors ?? []), moved));
  if (problems.length > 0) throw new ConfigError(problems, file);
  const cross = crossCheck(raw);
  if (cross.length > 0) throw new ConfigError(cross, file);
  for (const { oldPath, newPath } of moved) {
    warn(`${oldPath} is deprecated: use ${newPath} (a duration such as "10s", or milliseconds)`);
  }
  return deepFreeze(normalise(raw));
}

export function parseConfigText(
  text: string,
  env: NodeJS.ProcessEnv = process.env,
  file?: string,
  warn: DeprecationWarn = warnOnStderr,
): Config {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map(
        (e) => `YAML ${e.linePos?.[0] ? `line ${e.linePos[0].line}` : ''}: ${e.message.split('\n')[0]}`,
      ),
      file,
    );
  }
  return buildConfig(doc.toJS(), env, file, warn);
}

export function loadConfig(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
  warn: DeprecationWarn = warnOnStderr,
): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`cannot read file: ${(err as Error).message}`], file);
  }
  return parseConfigText(text, env, file, warn);
}
