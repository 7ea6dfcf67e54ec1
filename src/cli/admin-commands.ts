import { type Command, CommanderError, Option } from 'commander';
import type { BulkAnswer } from '../admin/bulk-body.js';
import { timelineText } from '../admin/console/timeline.js';
import type { DeadLetter, DeadLetterDetail } from '../admin/dead-letters.js';
import type { AttemptView } from '../admin/event-view.js';
import type { EventDetail, EventListItem } from '../admin/events-routes.js';
import { FILTER_STATES } from '../admin/filters.js';
import type { Quarantined } from '../admin/quarantined.js';
import type { ReplayBatchStatus } from '../admin/replay-batches.js';
import type { Suppressed } from '../admin/suppressed.js';
import {
  AdminApiError,
  type AdminClient,
  type ClientOptions,
  clientFrom,
  EXIT_USAGE,
  withClientOptions,
} from './admin-client.js';
import { print, printable, printJson, shortTime, table } from './output.js';

interface FilterOptions {
  branch?: string;
  commit?: string;
  actor?: string;
  deliveryId?: string;
  eventId?: string;
  target?: string;
  source?: string;
  repo?: string;
  event?: string;
  status?: string;
  state?: string;
  reason?: string;
  since?: string;
  until?: string;
}
type Opts = ClientOptions &
  FilterOptions & {
    limit?: string;
    cursor?: string;
    all?: boolean;
    dryRun?: boolean;
    fresh?: boolean;
    wait?: boolean;
  };

function withFilters(cmd: Command, extra: ('status' | 'state' | 'reason')[] = []): Command {
  cmd
    .option('--target <id>', 'target id')
    .option('--source <id>', 'source id')
    .option('--repo <glob>', 'repository, e.g. acme/widgets or acme/*')
    .option('--branch <glob>', 'branch or tag of a changed ref or pull request, e.g. main or release/*')
    .option('--commit <prefix>', 'head commit or new ref hash, by prefix (4+ hex digits)')
    .option('--actor <glob>', 'actor name, uuid or account id')
    .option('--delivery-id <id>', "Bitbucket's delivery id (X-Request-UUID / X-Request-Id)")
    .option('--event-id <id>', "the relay's event id")
    .option('--event <glob>', 'event key, e.g. repo:push or pullrequest:*')
    .option('--since <time>', 'received at or after: ISO time, epoch ms or a duration ago (2h, 3d)')
    .option('--until <time>', 'received before: ISO time, epoch ms or a duration ago');
  if (extra.includes('status'))
    cmd.option('--status <class>', 'last attempt: 4xx, 5xx, timeout, error or a status');
  if (extra.includes('state'))
    cmd.addOption(new Option('--state <state>', 'delivery state').choices([...FILTER_STATES]));
  if (extra.includes('reason')) cmd.option('--reason <text>', 'reason contains');
  return cmd;
}

function filterOf(o: FilterOptions): Record<string, string> {
  const f: Record<string, string | undefined> = {
    target: o.target,
    source: o.source,
    repo: o.repo,
    branch: o.branch,
    commit: o.commit,
    actor: o.actor,
    deliveryId: o.deliveryId,
    eventId: o.eventId,
    eventKey: o.event,
    status: o.status,
    state: o.state,
    reason: o.reason,
    since: o.since,
    until: o.until,
  };
  return Object.fromEntries(Object.entries(f).filter(([, v]) => v !== undefined)) as Record<string, string>;
}

const usage = (message: string) => new CommanderError(EXIT_USAGE, 'usage', message);

/** Runs a command against the API; a 400 from the API is a usage error (exit 2), anything else exit 1. */
function action<A extends unknown[]>(fn: (client: AdminClient, opts: Opts, ...args: A) => Promise<void>) {
  return async (...received: unknown[]) => {
    const cmd = received.at(-1) as Command;
    const opts = cmd.opts() as Opts;
    const args = received.slice(0, -2) as A;
    const client = clientFrom(opts);
    try {
      await fn(client, opts, ...args);
    } catch (err) {
      if (err instanceof AdminApiError && err.status === 400) throw usage(err.message);
      throw err;
    }
  };
}

async function paged<T>(
  opts: Opts,
  fetchPage: (cursor?: string) => Promise<{ items: T[]; nextCursor: string | null }>,
): Promise<{ items: T[]; nextCursor: string | null }> {
  const items: T[] = [];
  let cursor = opts.cursor;
  for (;;) {
    const page = await fetchPage(cursor);
    items.push(...page.items);
    if (!opts.all || !page.nextCursor) return { items, nextCursor: page.nextCursor };
    cursor = page.nextCursor;
  }
}

type Cell = string | number | null | undefined;

interface ListSpec<T> {
  description: string;
  filters: ('status' | 'state' | 'reason')[];
  /** The admin API path, and the field of its answer that holds the page (also the key under --json). */
  path: string;
  field: string;
  columns: string[];
  row: (item: T) => Cell[];
}

/** `<group> list`: filters, paging (--limit, --cursor, --all), a table or --json; one shape for every list. */
function registerList<T>(parent: Command, spec: ListSpec<T>): void {
  withClientOptions(
    withFilters(parent.command('list').description(spec.description), spec.filters)
      .option('--limit <n>', 'page size (1..500)', '50')
      .option('--cursor <cursor>', 'continue after a previous page')
      .option('--all', 'follow cursors to the end'),
  ).action(
    action(async (client, opts) => {
      let total: number | undefined;
      const { items, nextCursor } = await paged(opts, async (cursor) => {
        const p = await client.get<Record<string, unknown> & { total?: number; nextCursor: string | null }>(
          spec.path,
          { ...filterOf(opts), limit: opts.limit, cursor },
        );
        total = p.total;
        return { items: p[spec.field] as T[], nextCursor: p.nextCursor };
      });
      if (opts.json) {
        printJson({ [spec.field]: items, ...(total === undefined ? {} : { total }), nextCursor });
        return;
      }
      print(table(spec.columns, items.map(spec.row)));
      if (total !== undefined) {
        print(`${items.length} of ${total}${nextCursor ? `; more: --cursor ${nextCursor}` : ''}`);
      } else if (nextCursor) {
        print(`more: --cursor ${nextCursor}`);
      }
    }),
  );
}

function attemptsTable(attempts: AttemptView[]): string {
  return table(
    ['#', 'at', 'ms', 'result', 'trigger'],
    attempts.map((a) => [a.number, shortTime(a.at), a.ms, a.status ?? a.error, a.trigger]),
  );
}

export function registerEventsCommands(program: Command): void {
  const events = program.command('events').description('trace received events (admin API)');

  withClientOptions(
    events.command('show').description('the life of one event').argument('<id>', 'event id'),
  ).action(
    action(async (client, opts, id: string) => {
      const ev = await client.get<EventDetail>(`/api/events/${encodeURIComponent(id)}`);
      if (opts.json) {
        printJson(ev);
        return;
      }
      // The console's event page and this print the same timeline (src/admin/console/timeline.ts); every value
      // from a payload or a target goes through printable() so a newline in it cannot forge a line.
      print(`event ${ev.id} (${printable(ev.state)})\n`);
      print(timelineText({ id: ev.id, found: true, entries: ev.timeline ?? [] }, printable));
    }),
  );

  registerList<EventListItem>(events, {
    description: 'received events, newest first',
    filters: ['state'],
    path: '/api/events',
    field: 'events',
    columns: ['received', 'id', 'source', 'event', 'repository', 'refs', 'targets'],
    row: (e) => [
      shortTime(e.receivedAt),
      e.id,
      e.source,
      e.eventKey,
      e.repository,
      e.refs.join(','),
      // Before the fan-out has routed it an event has no targets yet; a second hook's copy never has any.
      e.state === 'received' || e.state === 'duplicate'
        ? `(${e.state})`
        : Object.entries(e.targets)
            .map(([t, st]) => `${t}:${st}`)
            .join(' '),
    ],
  });
}

function printBulk(opts: Opts, answer: BulkAnswer, verb: string): void {
  if (opts.json) {
    printJson(answer);
    return;
  }
  if (answer.dryRun) {
    print(`dry run: ${answer.wouldBe} would be ${verb}`);
    if (answer.ids.length) print(answer.ids.join('\n'));
    return;
  }
  const done = answer.replayed ?? answer.purged ?? answer.released ?? answer.discarded ?? 0;
  print(`${done} ${verb}${answer.failed.length ? `, ${answer.failed.length} failed` : ''}`);
  for (const f of answer.failed) print(`  ${f.id}: ${f.error} ${printable(f.message)}`);
  if (answer.failed.length) process.exitCode = 1;
}

/** `ID…` acts on those ids one by one; otherwise a filter (required) makes it a bulk action. */
async function idsOrFilter(
  client: AdminClient,
  opts: Opts,
  ids: string[],
  perId: (id: string) => Promise<unknown>,
  bulkPath: string,
  verb: string,
  extraBody: Record<string, unknown> = {},
): Promise<void> {
  const filter = filterOf(opts);
  if (ids.length && Object.keys(filter).length) throw usage('give either ids or filters, not both');
  if (!ids.length && !Object.keys(filter).length)
    throw usage(
      `a filter is required (e.g. --target T --since 2h), or give ids; nothing is ${verb} by default`,
    );
  if (!ids.length) {
    const answer = await client.request<BulkAnswer>('POST', bulkPath, {
      ...filter,
      dryRun: !!opts.dryRun,
      ...extraBody,
    });
    return printBulk(opts, answer, verb);
  }
  if (opts.dryRun) {
    // Check each id exists as asked, change nothing.
    const found: string[] = [];
    const failed: BulkAnswer['failed'] = [];
    for (const id of ids) {
      try {
        await perId(`dry:${id}`);
        found.push(id);
      } catch (err) {
        if (!(err instanceof AdminApiError)) throw err;
        failed.push({ id, error: err.code, message: err.message });
      }
    }
    return printBulk(
      opts,
      { dryRun: true, matched: found.length, wouldBe: found.length, ids: found, failed },
      verb,
    );
  }
  await eachId(opts, ids, perId, verb);
}

/** Acts on each id in turn; an id the API refuses is reported (exit 1) and the rest still go ahead. */
async function eachId(
  opts: Opts,
  ids: string[],
  perId: (id: string) => Promise<unknown>,
  verb: string,
): Promise<void> {
  const done: string[] = [];
  const failed: BulkAnswer['failed'] = [];
  for (const id of ids) {
    try {
      await perId(id);
      done.push(id);
    } catch (err) {
      if (!(err instanceof AdminApiError)) throw err;
      failed.push({ id, error: err.code, message: err.message.replace(/^[A-Z_]+: /, '') });
    }
  }
  const answer: BulkAnswer = { dryRun: false, matched: ids.length, ids: done, failed };
  if (verb === 'replayed') answer.replayed = done.length;
  else if (verb === 'purged') answer.purged = done.length;
  else if (verb === 'discarded') answer.discarded = done.length;
  else answer.released = done.length;
  printBulk(opts, answer, verb);
}

const WAIT_POLL_MS = 1000;

/**
 * `dlq replay --wait`: one bulk replay (ids or filter), then its progress until every delivery has settled,
 * and the outcome: delivered / failed again. Exit 1 when any failed again.
 */
async function replayAndWait(client: AdminClient, opts: Opts, ids: string[]): Promise<void> {
  const filter = filterOf(opts);
  if (ids.length && Object.keys(filter).length) throw usage('give either ids or filters, not both');
  if (!ids.length && !Object.keys(filter).length)
    throw usage(
      'a filter is required (e.g. --target T --since 2h), or give ids; nothing is replayed by default',
    );
  const answer = await client.request<BulkAnswer & { batch?: string }>('POST', '/api/dead-letters/replay', {
    ...(ids.length ? { ids } : filter),
    fresh: !!opts.fresh,
  });
  if (!opts.json) printBulk(opts, answer, 'replayed');
  if (!answer.batch) {
    if (opts.json) printJson({ ...answer, outcome: null });
    return;
  }
  let status: ReplayBatchStatus;
  let last = '';
  for (;;) {
    status = await client.get<ReplayBatchStatus>(`/api/dead-letters/replays/${answer.batch}`);
    const line = `${status.delivered} delivered, ${status.failedAgain} failed again, ${status.waiting} waiting (of ${status.total})`;
    if (!opts.json && line !== last) process.stderr.write(`${line}\n`);
    last = line;
    if (status.done) break;
    await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
  }
  if (opts.json) printJson({ ...answer, outcome: status });
  else {
    print(`outcome: ${status.delivered} delivered, ${status.failedAgain} failed again`);
    for (const f of status.failures) print(`  ${f.id}: ${f.reason ?? 'dead'}`);
  }
  if (status.failedAgain > 0) process.exitCode = 1;
}

export function registerDlqCommands(program: Command): void {
  const dlq = program.command('dlq').description('dead letters: deliveries that failed for good (admin API)');

  registerList<DeadLetter>(dlq, {
    description: 'dead letters, newest failure first',
    filters: ['status', 'reason'],
    path: '/api/dead-letters',
    field: 'deadLetters',
    columns: ['failed', 'id', 'event', 'repository', 'attempts', 'last', 'reason'],
    row: (d) => [
      shortTime(d.failedAt),
      d.id,
      d.eventKey,
      d.expired ? '(expired)' : d.repository,
      d.attemptsMade,
      d.status ?? d.statusClass,
      d.reason,
    ],
  });

  withClientOptions(
    dlq
      .command('show')
      .description('one dead letter with its attempts')
      .argument('<id>', 'dead-letter id <eventId>.<targetId>'),
  ).action(
    action(async (client, opts, id: string) => {
      const d = await client.get<DeadLetterDetail>(`/api/dead-letters/${encodeURIComponent(id)}`);
      if (opts.json) {
        printJson(d);
        return;
      }
      print(
        [
          `dead letter     ${d.id}`,
          `target          ${d.target}`,
          `event           ${printable(d.eventKey ?? '-')} on ${printable(d.repository ?? '-')} (received ${shortTime(d.receivedAt)})`,
          `failed          ${shortTime(d.failedAt)} after ${d.attemptsMade} attempts`,
          `reason          ${printable(d.reason ?? '-')}`,
          `idempotency key ${d.idempotencyKey}`,
        ].join('\n'),
      );
      if (d.attempts.length) print(`\n${attemptsTable(d.attempts)}`);
      if (d.excerpt) print(`last response: ${printable(d.excerpt)}`);
    }),
  );

  withClientOptions(
    withFilters(
      dlq
        .command('replay')
        .description('deliver dead letters again (same Idempotency-Key unless --fresh); ids or a filter')
        .argument('[ids...]', 'dead-letter ids'),
      ['status', 'reason'],
    )
      .option('--dry-run', 'only count what would be replayed')
      .option('--fresh', 'new Idempotency-Key (for targets that must rebuild)')
      .option('--wait', 'follow the replayed deliveries until each is delivered or dead again'),
  ).action(
    action(async (client, opts, ids: string[]) => {
      if (opts.wait && !opts.dryRun) return replayAndWait(client, opts, ids);
      await idsOrFilter(
        client,
        opts,
        ids,
        (id) =>
          id.startsWith('dry:')
            ? client.get(`/api/dead-letters/${encodeURIComponent(id.slice(4))}`)
            : client.request('POST', `/api/dead-letters/${encodeURIComponent(id)}/replay`, {
                fresh: !!opts.fresh,
              }),
        '/api/dead-letters/replay',
        'replayed',
        { fresh: !!opts.fresh },
      );
    }),
  );

  withClientOptions(
    withFilters(
      dlq
        .command('purge')
        .description('delete dead letters for good; ids or a filter')
        .argument('[ids...]', 'dead-letter ids'),
      ['status', 'reason'],
    ).option('--dry-run', 'only count what would be purged'),
  ).action(
    action(async (client, opts, ids: string[]) => {
      await idsOrFilter(
        client,
        opts,
        ids,
        (id) =>
          id.startsWith('dry:')
            ? client.get(`/api/dead-letters/${encodeURIComponent(id.slice(4))}`)
            : client.request('DELETE', `/api/dead-letters/${encodeURIComponent(id)}`),
        '/api/dead-letters/purge',
        'purged',
      );
    }),
  );
}

export function registerSuppressedCommands(program: Command): void {
  const sup = program.command('suppressed').description('deliveries held back by the loop guard (admin API)');

  registerList<Suppressed>(sup, {
    description: 'suppressed deliveries, newest first',
    filters: ['reason'],
    path: '/api/suppressed',
    field: 'suppressed',
    columns: ['suppressed', 'id', 'event', 'repository', 'refs', 'reason'],
    row: (x) => [
      shortTime(x.suppressedAt),
      x.id,
      x.eventKey,
      x.expired ? '(expired)' : x.repository,
      x.refs?.join(','),
      x.reason,
    ],
  });

  withClientOptions(
    withFilters(
      sup
        .command('release')
        .description('deliver suppressed deliveries now (skips the loop guard); ids or a filter')
        .argument('[ids...]', 'ids <eventId>.<targetId>'),
      ['reason'],
    ).option('--dry-run', 'only count what would be released'),
  ).action(
    action(async (client, opts, ids: string[]) => {
      await idsOrFilter(
        client,
        opts,
        ids,
        async (id) => {
          if (!id.startsWith('dry:'))
            return client.request('POST', `/api/suppressed/${encodeURIComponent(id)}/release`);
          const real = id.slice(4);
          const found = await client.request<BulkAnswer>('POST', '/api/suppressed/release', {
            ids: [real],
            dryRun: true,
          });
          return found;
        },
        '/api/suppressed/release',
        'released',
      );
    }),
  );
}

export function registerQuarantinedCommands(program: Command): void {
  const q = program
    .command('quarantined')
    .description('signed events held back for an unexpected shape, not delivered (admin API)');

  registerList<Quarantined>(q, {
    description: 'quarantined events, newest first',
    filters: [],
    path: '/api/quarantined',
    field: 'quarantined',
    columns: ['received', 'id', 'source', 'event', 'repository', 'reason'],
    row: (x) => [
      shortTime(x.quarantinedAt),
      x.id,
      x.source,
      x.eventKey,
      x.expired ? '(expired)' : x.repository,
      x.reason,
    ],
  });

  for (const [name, verb, description] of [
    ['release', 'released', 'route and deliver quarantined events as if they had arrived well formed'],
    ['discard', 'discarded', 'never deliver these quarantined events (they stay readable until retention)'],
  ] as const) {
    withClientOptions(q.command(name).description(description).argument('<ids...>', 'event ids')).action(
      action(async (client, opts, ids: string[]) => {
        await eachId(
          opts,
          ids,
          (id) => client.request('POST', `/api/quarantined/${encodeURIComponent(id)}/${name}`),
          verb,
        );
      }),
    );
  }
}
