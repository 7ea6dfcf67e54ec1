import type { Command } from 'commander';
import type { EventPage } from '../admin/events-routes.js';
import { relayTestRequest } from '../bitbucket/relay-test-event.js';
import { describeScope, type HookScope, levelOf, parentScope } from '../bitbucket-api/hook-scope.js';
import {
  BitbucketApiError,
  type Hook,
  type HooksApi,
  maskSecret,
  planRemove,
  sameUrl,
} from '../bitbucket-api/hooks-api.js';
import { AdminApiError, clientFrom } from './admin-client.js';
import {
  type BitbucketContext,
  type BitbucketOptions,
  commonOptions,
  currentSecret,
  requireApi,
  resolveContext,
} from './bitbucket-context.js';
import { print, printJson, shortTime, table } from './output.js';

interface HooksOptions extends BitbucketOptions {
  dryRun?: boolean;
  adminUrl: string;
  since: string;
}

interface FoundHook {
  level: string;
  scope: string;
  hook: Hook;
}

/** The relay's hooks (by URL) in the scope and, for a repository, at the workspace/project level above it. */
async function relayHooks(
  api: HooksApi,
  ctx: BitbucketContext,
): Promise<{ found: FoundHook[]; notes: string[] }> {
  const found: FoundHook[] = [];
  const notes: string[] = [];
  const scopes: HookScope[] = [ctx.scope, ...(parentScope(ctx.scope) ? [parentScope(ctx.scope)!] : [])];
  for (const scope of scopes) {
    try {
      for (const hook of await api.list(scope))
        if (sameUrl(hook.url, ctx.relayUrl))
          found.push({ level: levelOf(scope), scope: describeScope(scope), hook });
    } catch (err) {
      // The level above is a courtesy check: a repository access token may not read it.
      if (scope === ctx.scope || !(err instanceof BitbucketApiError) || ![401, 403, 404].includes(err.status))
        throw err;
      notes.push(`could not read the ${levelOf(scope)} hooks of ${scope.owner} (HTTP ${err.status})`);
    }
  }
  return { found, notes };
}

function hookJson(f: FoundHook) {
  const h = f.hook;
  return {
    level: f.level,
    scope: f.scope,
    id: h.id,
    name: h.name,
    url: h.url,
    active: h.active,
    events: h.events,
    ...(h.sslVerificationRequired !== undefined
      ? { sslVerificationRequired: h.sslVerificationRequired }
      : {}),
  };
}

async function list(opts: HooksOptions): Promise<void> {
  const ctx = resolveContext(opts, true);
  const { found, notes } = await relayHooks(requireApi(ctx), ctx);
  if (opts.json) return printJson({ hooks: found.map(hookJson), notes });
  if (found.length === 0) print(`no webhook to ${ctx.relayUrl} on ${describeScope(ctx.scope)}`);
  else
    print(
      table(
        ['level', 'scope', 'id', 'name', 'active', 'events'],
        found.map((f) => [
          f.level,
          f.scope,
          f.hook.id,
          f.hook.name,
          f.hook.active ? 'yes' : 'no',
          f.hook.events.join(','),
        ]),
      ),
    );
  for (const note of notes) process.stderr.write(`note: ${note}\n`);
  if (found.length > 1)
    process.stderr.write(
      `warning: ${found.length} hooks send to ${ctx.relayUrl}: every event arrives ${found.length} times ` +
        '(the relay drops the copies, but one hook is enough)\n',
    );
}

/** Removes the relay's hook in the scope (by URL); none there is not an error, so it can be run twice. */
async function remove(opts: HooksOptions): Promise<void> {
  const ctx = resolveContext(opts, true);
  const api = requireApi(ctx);
  const hook = await api.find(ctx.scope, ctx.relayUrl);
  if (!hook) {
    if (opts.json) return printJson({ removed: false, scope: describeScope(ctx.scope), url: ctx.relayUrl });
    return print(`no webhook to ${ctx.relayUrl} on ${describeScope(ctx.scope)}: nothing to remove`);
  }
  const req = planRemove(ctx.scope, hook);
  if (!opts.dryRun) await api.send(req);
  if (opts.json)
    return printJson({
      removed: !opts.dryRun,
      dryRun: !!opts.dryRun,
      scope: describeScope(ctx.scope),
      id: hook.id,
      request: { method: req.method, url: `${ctx.apiUrl}${req.path}`, body: maskSecret(req.body) },
    });
  print(
    opts.dryRun
      ? `dry run: would remove webhook ${hook.id} ("${hook.name}") from ${describeScope(ctx.scope)}\n${req.method} ${ctx.apiUrl}${req.path}`
      : `removed webhook ${hook.id} ("${hook.name}") from ${describeScope(ctx.scope)}`,
  );
}

/**
 * Data Center: Bitbucket's own "Test webhook" (Bitbucket posts to the hook's URL). Cloud has no such endpoint,
 * so the CLI posts a signed `hookrelay:test` event to the public URL itself: DNS, the edge, TLS and the
 * source's secret are all on the path, and the relay answers without delivering it to any target.
 */
async function test(opts: HooksOptions): Promise<void> {
  // Cloud's test needs no Bitbucket credentials (the relay is tested directly); Data Center's asks Bitbucket.
  const ctx = resolveContext(opts, false);
  if (ctx.source.platform === 'datacenter') {
    const api = requireApi(ctx);
    const hook = await api.find(ctx.scope, ctx.relayUrl);
    if (!hook)
      throw new Error(`no webhook to ${ctx.relayUrl} on ${describeScope(ctx.scope)}: register it first`);
    const answer = await api.dcTest(ctx.scope, hook);
    const status = dcTestStatus(answer);
    const ok = status !== undefined && status >= 200 && status < 300;
    if (opts.json) printJson({ ok, via: 'bitbucket', id: hook.id, status: status ?? null, answer });
    else
      print(
        ok
          ? `ok: Bitbucket reached ${ctx.relayUrl} (HTTP ${status})`
          : `FAILED: Bitbucket's test request to ${ctx.relayUrl} got ${status ?? 'no HTTP answer'}\n${JSON.stringify(answer, null, 2)}`,
      );
    if (!ok) process.exitCode = 1;
    return;
  }
  const hook = ctx.api ? await ctx.api.find(ctx.scope, ctx.relayUrl) : undefined;
  const probe = relayTestRequest(currentSecret(ctx.source), ctx.source.id, hook?.id);
  let status: number;
  let text: string;
  try {
    const res = await fetch(ctx.relayUrl, {
      method: 'POST',
      headers: probe.headers,
      body: probe.body,
      signal: AbortSignal.timeout(30_000),
    });
    status = res.status;
    text = (await res.text()).slice(0, 500);
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(
      `cannot reach ${ctx.relayUrl}: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
    );
  }
  let answer: { test?: boolean } = {};
  try {
    answer = JSON.parse(text) as { test?: boolean };
  } catch {
    // an edge or proxy page, not the relay
  }
  const ok = status === 200 && answer.test === true;
  if (opts.json) printJson({ ok, via: 'relay', status, answer: text, ...(hook ? { id: hook.id } : {}) });
  else
    print(
      ok
        ? `ok: a signed test event reached source ${ctx.source.id} at ${ctx.relayUrl} and was accepted (not delivered to targets)`
        : `FAILED: ${ctx.relayUrl} answered HTTP ${status}: ${text}`,
    );
  if (!hook && !opts.json)
    process.stderr.write(
      ctx.api
        ? `note: no Bitbucket hook sends to ${ctx.relayUrl} on ${describeScope(ctx.scope)} yet\n`
        : 'note: no Bitbucket credentials, so whether a hook sends to this URL was not checked\n',
    );
  if (!ok) process.exitCode = 1;
}

/**
 * The status code in Data Center's test answer: the request Bitbucket made and the response it got
 * (`{"request":{...},"response":{"statusCode":...}}`, as the hook's "Test connection" dialog shows them). The
 * REST docs leave the answer's schema open, so a top-level `statusCode` or a `status` is read too.
 */
function dcTestStatus(answer: Record<string, unknown>): number | undefined {
  const response = answer.response as { statusCode?: unknown; status?: unknown } | undefined;
  const code = response?.statusCode ?? response?.status ?? answer.statusCode ?? answer.status;
  return typeof code === 'number' ? code : undefined;
}

interface RelaySide {
  events: number;
  lastReceivedAt: string | null;
  since: string;
  truncated: boolean;
}

/** What the relay received for this hook: events of the source (and, on Cloud, this X-Hook-UUID) in the window. */
async function relaySide(opts: HooksOptions, ctx: BitbucketContext, hook: Hook): Promise<RelaySide> {
  const client = clientFrom({ adminUrl: opts.adminUrl });
  const repo = ctx.scope.slug ? `${ctx.scope.owner}/${ctx.scope.slug}` : `${ctx.scope.owner}/*`;
  let events = 0;
  let last: string | null = null;
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await client.get<EventPage>('/api/events', {
      source: ctx.source.id,
      repo,
      since: opts.since,
      limit: 200,
      cursor,
    });
    for (const e of page.events) {
      if (ctx.source.platform === 'cloud' && e.hookId !== hook.id) continue;
      events += 1;
      if (!last || e.receivedAt > last) last = e.receivedAt;
    }
    cursor = page.nextCursor ?? undefined;
    pages += 1;
  } while (cursor && pages < 50);
  return { events, lastReceivedAt: last, since: opts.since, truncated: !!cursor };
}

async function status(opts: HooksOptions): Promise<void> {
  const ctx = resolveContext(opts, true);
  const api = requireApi(ctx);
  const hook = await api.find(ctx.scope, ctx.relayUrl);
  if (!hook)
    throw new Error(`no webhook to ${ctx.relayUrl} on ${describeScope(ctx.scope)}: register it first`);
  // Cloud publishes no delivery history for hooks; Data Center keeps the latest invocation and counts.
  const bitbucket = ctx.source.platform === 'datacenter' ? await api.dcHealth(ctx.scope, hook) : null;
  let relay: RelaySide | { error: string };
  if (!process.env.HOOKRELAY_ADMIN_TOKEN) relay = { error: 'HOOKRELAY_ADMIN_TOKEN is not set' };
  else
    try {
      relay = await relaySide(opts, ctx, hook);
    } catch (err) {
      // Bitbucket's side is still worth showing when the admin API cannot be asked.
      if (err instanceof AdminApiError || /admin API/.test((err as Error).message))
        relay = { error: (err as Error).message };
      else throw err;
    }
  if (opts.json)
    return printJson({
      hook: hookJson({ level: levelOf(ctx.scope), scope: describeScope(ctx.scope), hook }),
      bitbucket,
      relay,
    });
  print(
    `hook ${hook.id} ("${hook.name}") on ${describeScope(ctx.scope)}: ${hook.active ? 'active' : 'INACTIVE'}, ` +
      `events ${hook.events.join(',')}`,
  );
  if (bitbucket) {
    const latest = bitbucket.latest as {
      event?: string;
      start?: number;
      result?: { outcome?: string; description?: string };
    };
    const counts = summaryCounts(bitbucket.summary);
    print(
      latest.result
        ? `Bitbucket: latest ${latest.event ?? 'delivery'} at ${latest.start ? shortTime(new Date(latest.start).toISOString()) : '?'}: ${latest.result.outcome ?? '?'} (${latest.result.description ?? ''})`
        : 'Bitbucket: no delivery recorded for this hook',
    );
    if (counts)
      print(`Bitbucket: ${counts.successes} succeeded, ${counts.failures} failed, ${counts.errors} errors`);
  } else
    print('Bitbucket: Cloud keeps no delivery history in its API (see the hook\'s "View requests" page)');
  if ('error' in relay) print(`relay: not asked (${relay.error})`);
  else
    print(
      `relay: ${relay.events}${relay.truncated ? '+' : ''} events received since ${relay.since}` +
        (ctx.source.platform === 'cloud' ? ` with X-Hook-UUID ${hook.id}` : ` for source ${ctx.source.id}`) +
        (relay.lastReceivedAt ? `, last at ${shortTime(relay.lastReceivedAt)}` : ''),
    );
  if (bitbucket && !('error' in relay)) {
    const counts = summaryCounts(bitbucket.summary);
    if (counts && counts.successes > 0 && relay.events === 0)
      print(
        '=> Bitbucket reports successful deliveries that the relay never stored: check the URL and the edge',
      );
  }
}

/** Data Center's statistics summary: counts of successes, failures and errors in its window. */
function summaryCounts(
  summary: unknown,
): { successes: number; failures: number; errors: number } | undefined {
  const s = summary as { successes?: unknown; failures?: unknown; errors?: unknown } | null;
  if (!s || typeof s.successes !== 'number') return undefined;
  return { successes: s.successes, failures: Number(s.failures ?? 0), errors: Number(s.errors ?? 0) };
}

export function registerHooksCommands(bb: Command): void {
  const hooks = bb.command('hooks').description("the relay's webhooks in Bitbucket (found by --url)");
  commonOptions(
    hooks.command('list').description("the relay's hooks here and at the workspace/project level"),
  ).action((opts: HooksOptions) => list(opts));
  commonOptions(
    hooks.command('remove').description("remove the relay's hook (by URL); nothing there is fine"),
  )
    .option('--dry-run', 'print the request, change nothing')
    .action((opts: HooksOptions) => remove(opts));
  commonOptions(
    hooks
      .command('test')
      .description(
        "Data Center: Bitbucket's test request; Cloud: a signed test event through the public URL",
      ),
  ).action((opts: HooksOptions) => test(opts));
  commonOptions(
    hooks
      .command('status')
      .description("Bitbucket's record of the hook's deliveries beside what the relay received"),
  )
    .option(
      '--admin-url <url>',
      'admin API base URL (env HOOKRELAY_ADMIN_URL; token in HOOKRELAY_ADMIN_TOKEN)',
      process.env.HOOKRELAY_ADMIN_URL || 'http://127.0.0.1:8081',
    )
    .option('--since <when>', 'relay side: events received since (duration or ISO time)', '24h')
    .action((opts: HooksOptions) => status(opts));
}
