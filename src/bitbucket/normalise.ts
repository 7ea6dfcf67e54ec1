import { createHash } from 'node:crypto';
import type { Platform } from '../config/types.js';
import type { CommitInfo, Envelope, Person, RefChange } from './envelope.js';
import { eventFamily } from './event-keys.js';
import {
  readArray,
  readBoolean,
  readId,
  readInteger,
  readObject,
  readString,
  type TypeProblems,
} from './read-typed.js';

const ZERO_HASH = /^0+$/;

/*
 * Objects are built whole, with `undefined` for what a payload lacks, never spread and pruned with `delete`:
 * JSON.stringify leaves undefined fields out all the same, and deleting turns V8 objects into slow dictionaries
 * that cost again when the envelope is serialised (docs/benchmarks.md).
 *
 * Every field is read through read-typed.ts, so the envelope holds only the types it declares whatever the
 * payload holds: the schema (payload-schemas.ts) checks shape, these reads check each value where it is used.
 */

type P = TypeProblems;

function rawName(raw: string | undefined, match: RegExpExecArray | null): string | undefined {
  return match ? match[1] || undefined : raw;
}

/** Where-labels of a person's fields, built once per place a person is read so a read builds none. */
function personLabels<F extends string>(where: string, fields: readonly F[]): Record<F | 'self', string> {
  return Object.fromEntries([['self', where], ...fields.map((field) => [field, `${where}.${field}`])]);
}

const CLOUD_PERSON = ['nickname', 'display_name', 'username', 'account_id', 'uuid'] as const;
const CLOUD_ACTOR = personLabels('actor', CLOUD_PERSON);
const CLOUD_PR_AUTHOR = personLabels('pullrequest.author', CLOUD_PERSON);
const DC_PERSON = ['name', 'displayName', 'emailAddress', 'id', 'slug'] as const;
const DC_ACTOR = personLabels('actor', DC_PERSON);
const DC_PR_AUTHOR = personLabels('pullRequest.author.user', DC_PERSON);

function cloudPerson(t: P, value: unknown, where = CLOUD_ACTOR): Person | undefined {
  const user = readObject(t, value, where.self);
  if (!user) return undefined;
  // Every candidate is read (and so type-checked), not only the first one present.
  const nickname = readString(t, user.nickname, where.nickname);
  const displayName = readString(t, user.display_name, where.display_name);
  const username = readString(t, user.username, where.username);
  return {
    name: nickname ?? displayName ?? username,
    email: undefined,
    accountId: readString(t, user.account_id, where.account_id),
    uuid: readString(t, user.uuid, where.uuid),
  };
}

function cloudAuthor(t: P, value: unknown): Person | undefined {
  const author = readObject(t, value, 'commit.author');
  if (!author) return undefined;
  // Cloud commit authors come as "Name <email>"; the linked account, when there is one, adds its ids.
  const raw = readString(t, author.raw, 'commit.author.raw');
  const match = raw === undefined ? null : /^(.*?)\s*<([^>]*)>\s*$/.exec(raw);
  const user = cloudPerson(t, author.user);
  return {
    name: rawName(raw, match) ?? user?.name,
    email: match ? match[2] || undefined : undefined,
    accountId: user?.accountId,
    uuid: user?.uuid,
  };
}

function dcPerson(t: P, value: unknown, where = DC_ACTOR): Person | undefined {
  const user = readObject(t, value, where.self);
  if (!user) return undefined;
  const name = readString(t, user.name, where.name);
  const displayName = readString(t, user.displayName, where.displayName);
  return {
    name: name ?? displayName,
    email: readString(t, user.emailAddress, where.emailAddress),
    accountId: readId(t, user.id, where.id),
    uuid: readString(t, user.slug, where.slug),
  };
}

/** Parent hashes of a commit: Cloud lists `{hash}`, Data Center `{id}`. */
function parentHashes(t: P, value: unknown, where: string, field: 'hash' | 'id'): string[] | undefined {
  const hashes: string[] = [];
  for (const parent of readArray(t, value, where)) {
    const hash = readString(t, readObject(t, parent, where)?.[field], `${where}.${field}`);
    if (hash !== undefined) hashes.push(hash);
  }
  return hashes.length > 0 ? hashes : undefined;
}

function cloudCommit(t: P, value: unknown): CommitInfo | undefined {
  const c = readObject(t, value, 'commit');
  const hash = c && readString(t, c.hash, 'commit.hash');
  if (!c || hash === undefined) return undefined;
  return {
    hash,
    message: readString(t, c.message, 'commit.message'),
    author: cloudAuthor(t, c.author),
    parents: parentHashes(t, c.parents, 'commit.parents', 'hash'),
  };
}

type Body = Omit<Envelope, 'platform' | 'eventKey' | 'deliveryId' | 'hookId' | 'attempt'>;

function cloudRef(t: P, change: Record<string, unknown>): RefChange | undefined {
  const next = readObject(t, change.new, 'push.changes.new');
  const prev = readObject(t, change.old, 'push.changes.old');
  const state = next ?? prev;
  const name = state && readString(t, state.name, 'push.changes.name');
  if (!state || name === undefined) return undefined;
  const prevTarget = readObject(t, prev?.target, 'push.changes.old.target');
  const nextTarget = readObject(t, next?.target, 'push.changes.new.target');
  return {
    name,
    kind: readString(t, state.type, 'push.changes.type') === 'tag' ? 'tag' : 'branch',
    oldHash: readString(t, prevTarget?.hash, 'push.changes.old.target.hash') ?? null,
    newHash: readString(t, nextTarget?.hash, 'push.changes.new.target.hash') ?? null,
    created: readBoolean(t, change.created, 'push.changes.created') || change.old === null,
    deleted: readBoolean(t, change.closed, 'push.changes.closed') || change.new === null,
    forced: readBoolean(t, change.forced, 'push.changes.forced'),
    truncated: readBoolean(t, change.truncated, 'push.changes.truncated'),
  };
}

/** Where-labels of one end of a Cloud pull request, fixed strings so a read builds none. */
const SOURCE = [
  'pullrequest.source',
  'pullrequest.source.branch',
  'pullrequest.source.branch.name',
  'pullrequest.source.commit',
  'pullrequest.source.commit.hash',
  'pullrequest.source.repository',
];
const DESTINATION = SOURCE.map((x) => x.replace('source', 'destination'));

interface CloudPrEnd {
  branch?: string;
  hash?: string;
  repository?: Record<string, unknown>;
}

function cloudPrEnd(t: P, value: unknown, where: string[]): CloudPrEnd {
  const end = readObject(t, value, where[0]!);
  return {
    branch: readString(t, readObject(t, end?.branch, where[1]!)?.name, where[2]!),
    hash: readString(t, readObject(t, end?.commit, where[3]!)?.hash, where[4]!),
    repository: readObject(t, end?.repository, where[5]!),
  };
}

function normaliseCloud(t: P, eventKey: string, p: Record<string, unknown>): Body {
  const repo = readObject(t, p.repository, 'repository');
  const project = readObject(t, p.project, 'project');
  const env: Body = {
    repository: readString(t, repo?.full_name, 'repository.full_name') ?? null,
    project: readString(t, project?.key, 'project.key'),
    repositoryUuid: readString(t, repo?.uuid, 'repository.uuid'),
    refs: [],
    headCommit: undefined,
    commits: [],
    pullRequest: undefined,
    actor: cloudPerson(t, p.actor),
  };
  const family = eventFamily('cloud', eventKey);
  if (family === 'push') {
    const push = readObject(t, p.push, 'push');
    for (const value of readArray(t, push?.changes, 'push.changes')) {
      const change = readObject(t, value, 'push.changes');
      if (!change) continue;
      const ref = cloudRef(t, change);
      if (!ref) continue;
      env.refs.push(ref);
      if (!env.headCommit && ref.newHash) {
        env.headCommit = cloudCommit(t, readObject(t, change.new, 'push.changes.new')?.target);
      }
      for (const c of readArray(t, change.commits, 'push.changes.commits')) {
        const commit = cloudCommit(t, c);
        if (commit) env.commits.push(commit);
      }
    }
  } else if (family === 'pullrequest') {
    const pr = readObject(t, p.pullrequest, 'pullrequest');
    const id = readInteger(t, pr?.id, 'pullrequest.id');
    if (pr && id !== undefined) {
      const source = cloudPrEnd(t, pr.source, SOURCE);
      const destination = cloudPrEnd(t, pr.destination, DESTINATION);
      env.pullRequest = {
        id,
        title: readString(t, pr.title, 'pullrequest.title'),
        state: readString(t, pr.state, 'pullrequest.state'),
        sourceBranch: source.branch,
        sourceHash: source.hash,
        destinationBranch: destination.branch,
        destinationHash: destination.hash,
        mergeCommit: readString(
          t,
          readObject(t, pr.merge_commit, 'pullrequest.merge_commit')?.hash,
          'pullrequest.merge_commit.hash',
        ),
        author: cloudPerson(t, pr.author, CLOUD_PR_AUTHOR),
        forkRepository: cloudFork(t, source.repository, destination.repository),
      };
    }
  }
  return env;
}

/** Cloud: the fork's HTTPS clone URL, from its web link (`https://bitbucket.org/ws/repo` + `.git`). */
function cloudFork(
  t: P,
  source: Record<string, unknown> | undefined,
  destination: Record<string, unknown> | undefined,
): string | undefined {
  const name = readString(t, source?.full_name, 'pullrequest.source.repository.full_name');
  const target = readString(t, destination?.full_name, 'pullrequest.destination.repository.full_name');
  if (!name || name === target) return undefined;
  const links = readObject(t, source?.links, 'pullrequest.source.repository.links');
  const html = readObject(t, links?.html, 'pullrequest.source.repository.links.html');
  const href = readString(t, html?.href, 'pullrequest.source.repository.links.html.href');
  return href === undefined ? `https://bitbucket.org/${name}.git` : `${href}.git`;
}

/** Data Center: the fork's clone link, HTTP(S) first, as the payload lists them. */
function dcFork(
  t: P,
  source: Record<string, unknown> | undefined,
  destination: Record<string, unknown> | undefined,
): string | undefined {
  const id = readId(t, source?.id, 'pullRequest.fromRef.repository.id');
  if (!source || id === undefined || id === readId(t, destination?.id, 'pullRequest.toRef.repository.id')) {
    return undefined;
  }
  const links = readObject(t, source.links, 'pullRequest.fromRef.repository.links');
  let first: string | undefined;
  for (const value of readArray(t, links?.clone, 'pullRequest.fromRef.repository.links.clone')) {
    const link = readObject(t, value, 'pullRequest.fromRef.repository.links.clone');
    const name = readString(t, link?.name, 'pullRequest.fromRef.repository.links.clone.name');
    const href = readString(t, link?.href, 'pullRequest.fromRef.repository.links.clone.href');
    if (name !== undefined && /^https?$/.test(name)) return href;
    if (first === undefined) first = href ?? '';
  }
  return first || undefined;
}

function dcRepoKey(t: P, value: unknown, where: string): string | null {
  const repo = readObject(t, value, where);
  if (!repo) return null;
  const key = readString(t, readObject(t, repo.project, `${where}.project`)?.key, `${where}.project.key`);
  const slug = readString(t, repo.slug, `${where}.slug`);
  return key && slug ? `${key}/${slug}` : null;
}

function dcCommit(t: P, value: unknown, where: string): CommitInfo | undefined {
  const c = readObject(t, value, where);
  const hash = c && readString(t, c.id, `${where}.id`);
  if (!c || hash === undefined) return undefined;
  return {
    hash,
    message: readString(t, c.message, `${where}.message`),
    author: dcPerson(t, c.author),
    parents: parentHashes(t, c.parents, `${where}.parents`, 'id'),
  };
}

function dcRef(t: P, value: unknown): RefChange | undefined {
  const change = readObject(t, value, 'changes');
  const ref = readObject(t, change?.ref, 'changes.ref');
  const name = ref && readString(t, ref.displayId, 'changes.ref.displayId');
  if (!change || !ref || name === undefined) return undefined;
  const type = readString(t, change.type, 'changes.type');
  const fromHash = readString(t, change.fromHash, 'changes.fromHash');
  const toHash = readString(t, change.toHash, 'changes.toHash');
  const created = type === 'ADD' || (fromHash !== undefined && ZERO_HASH.test(fromHash));
  const deleted = type === 'DELETE' || (toHash !== undefined && ZERO_HASH.test(toHash));
  return {
    name,
    kind: readString(t, ref.type, 'changes.ref.type') === 'TAG' ? 'tag' : 'branch',
    oldHash: created ? null : (fromHash ?? null),
    newHash: deleted ? null : (toHash ?? null),
    created,
    deleted,
    forced: false,
    truncated: false,
  };
}

/**
 * A repository-less DC event: `repo:modified` carries the repository as `old` and `new` (a rename or move: the
 * new name routes it), `project:modified` the project the same way.
 */
function dcOldNew(t: P, p: Record<string, unknown>, env: Body): void {
  env.repository = dcRepoKey(t, p.new, 'new') ?? dcRepoKey(t, p.old, 'old');
  if (env.repository) return;
  const project = readObject(t, p.project, 'project');
  env.project =
    readString(t, project?.key, 'project.key') ??
    readString(t, readObject(t, p.new, 'new')?.key, 'new.key') ??
    readString(t, readObject(t, p.old, 'old')?.key, 'old.key');
}

function normaliseDc(t: P, eventKey: string, p: Record<string, unknown>): Body {
  const family = eventFamily('datacenter', eventKey);
  const pr = family === 'pullrequest' ? readObject(t, p.pullRequest, 'pullRequest') : undefined;
  const toRef = readObject(t, pr?.toRef, 'pullRequest.toRef');
  const env: Body = {
    repository:
      dcRepoKey(t, p.repository, 'repository') ??
      dcRepoKey(t, toRef?.repository, 'pullRequest.toRef.repository'),
    project: undefined,
    repositoryUuid: undefined,
    refs: [],
    headCommit: undefined,
    commits: [],
    pullRequest: undefined,
    actor: dcPerson(t, p.actor),
  };
  if (!env.repository) dcOldNew(t, p, env);
  if (family === 'push') {
    for (const value of readArray(t, p.changes, 'changes')) {
      const ref = dcRef(t, value);
      if (ref) env.refs.push(ref);
    }
    for (const c of readArray(t, p.commits, 'commits')) {
      const commit = dcCommit(t, c, 'commits');
      if (commit) env.commits.push(commit);
    }
    env.headCommit = dcCommit(t, p.toCommit, 'toCommit') ?? env.commits[0];
  } else if (pr) {
    const id = readInteger(t, pr.id, 'pullRequest.id');
    if (id !== undefined) {
      const fromRef = readObject(t, pr.fromRef, 'pullRequest.fromRef');
      const properties = readObject(t, pr.properties, 'pullRequest.properties');
      env.pullRequest = {
        id,
        title: readString(t, pr.title, 'pullRequest.title'),
        state: readString(t, pr.state, 'pullRequest.state'),
        sourceBranch: readString(t, fromRef?.displayId, 'pullRequest.fromRef.displayId'),
        sourceHash: readString(t, fromRef?.latestCommit, 'pullRequest.fromRef.latestCommit'),
        destinationBranch: readString(t, toRef?.displayId, 'pullRequest.toRef.displayId'),
        destinationHash: readString(t, toRef?.latestCommit, 'pullRequest.toRef.latestCommit'),
        mergeCommit: readString(
          t,
          readObject(t, properties?.mergeCommit, 'pullRequest.properties.mergeCommit')?.id,
          'pullRequest.properties.mergeCommit.id',
        ),
        author: dcPerson(t, readObject(t, pr.author, 'pullRequest.author')?.user, DC_PR_AUTHOR),
        forkRepository: dcFork(
          t,
          readObject(t, fromRef?.repository, 'pullRequest.fromRef.repository'),
          readObject(t, toRef?.repository, 'pullRequest.toRef.repository'),
        ),
      };
    }
  }
  return env;
}

export interface NormaliseInput {
  platform: Platform;
  eventKey: string;
  deliveryId: string;
  hookId?: string;
  attempt?: number;
  payload: unknown;
}

/**
 * The envelope of any parsed payload; never throws. A field of an unexpected type is left out of the envelope
 * and, when `problems` is given, the first one is named there (the ingress quarantines such an event).
 */
export function normalise(input: NormaliseInput, problems: TypeProblems = {}): Envelope {
  const payload = readObject(problems, input.payload, 'body') ?? {};
  const body =
    input.platform === 'cloud'
      ? normaliseCloud(problems, input.eventKey, payload)
      : normaliseDc(problems, input.eventKey, payload);
  return {
    platform: input.platform,
    eventKey: input.eventKey,
    deliveryId: input.deliveryId,
    hookId: input.hookId,
    attempt: input.attempt,
    repository: body.repository,
    project: body.project,
    repositoryUuid: body.repositoryUuid,
    refs: body.refs,
    repeatedRefs: undefined,
    headCommit: body.headCommit,
    commits: body.commits,
    pullRequest: body.pullRequest,
    actor: body.actor,
  };
}

/** A content dedupe key and the value it must hold for a new event to count as a copy. */
export interface ContentKey {
  key: string;
  /** Empty: any holder makes a copy. A push's ref key holds the ref's last transition: a copy has the same. */
  tag: string;
}

/**
 * Keys for "the same change": a repository hook and a project hook firing for one push carry different request
 * ids but the same ref transitions. A push keys on each ref, tagged with its transition, so only a repeat of the
 * ref's LAST transition is a copy: A→B, then a force-push back B→A, then A→B again is three events. Merges key on
 * the PR and its merge commit; everything else on the body bytes, by their SHA-256 `bodyHash` (a PR update or
 * comment may repeat its state).
 */
export function contentKeys(sourceId: string, env: Envelope, bodyHash: string): ContentKey[] {
  const digest = (...parts: string[]) => {
    const hash = createHash('sha256');
    for (const part of parts) hash.update(part).update('\0');
    return hash.digest('base64url');
  };
  const repo = env.repository ?? '';
  const pr = env.pullRequest;
  if (env.refs.length > 0) {
    return env.refs.map((r) => ({
      key: digest(sourceId, env.eventKey, repo, `${r.kind}:${r.name}`),
      tag: `${r.oldHash ?? '-'}>${r.newHash ?? '-'}`,
    }));
  }
  if (pr && (env.eventKey === 'pullrequest:fulfilled' || env.eventKey === 'pr:merged')) {
    return [{ key: digest(sourceId, env.eventKey, repo, `pr:${pr.id}:${pr.mergeCommit ?? ''}`), tag: '' }];
  }
  return [{ key: digest(sourceId, env.eventKey, repo, bodyHash), tag: '' }];
}
