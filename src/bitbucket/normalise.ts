import { createHash } from 'node:crypto';
import type { Platform } from '../config/types.js';
import type { CommitInfo, Envelope, Person } from './envelope.js';
import { eventFamily } from './event-keys.js';

// biome-ignore lint/suspicious/noExplicitAny: payloads have been validated by ajv for the fields read here
type Json = any;

const ZERO_HASH = /^0+$/;

/*
 * Objects are built whole, with `undefined` for what a payload lacks, never spread and pruned with `delete`:
 * JSON.stringify leaves undefined fields out all the same, and deleting turns V8 objects into slow dictionaries
 * that cost again when the envelope is serialised. Normalising a push was 4 % of the ingress's CPU before.
 */

function rawName(raw: string | undefined, match: RegExpExecArray | null): string | undefined {
  return match ? match[1] || undefined : raw;
}

function cloudPerson(user: Json): Person | undefined {
  if (!user || typeof user !== 'object') return undefined;
  return {
    name: user.nickname ?? user.display_name ?? user.username,
    email: undefined,
    accountId: user.account_id,
    uuid: user.uuid,
  };
}

function cloudAuthor(author: Json): Person | undefined {
  if (!author || typeof author !== 'object') return undefined;
  // Cloud commit authors come as "Name <email>"; the linked account, when there is one, adds its ids.
  const raw = typeof author.raw === 'string' ? (author.raw as string) : undefined;
  const match = raw === undefined ? null : /^(.*?)\s*<([^>]*)>\s*$/.exec(raw);
  const user = cloudPerson(author.user);
  return {
    name: rawName(raw, match) ?? user?.name,
    email: match ? match[2] || undefined : undefined,
    accountId: user?.accountId,
    uuid: user?.uuid,
  };
}

function dcPerson(user: Json): Person | undefined {
  if (!user || typeof user !== 'object') return undefined;
  return {
    name: user.name ?? user.displayName,
    email: user.emailAddress,
    accountId: user.id === undefined ? undefined : String(user.id),
    uuid: user.slug,
  };
}

/** Parent hashes of a commit: Cloud lists `{hash}`, Data Center `{id}`. */
function parentHashes(parents: Json, field: 'hash' | 'id'): string[] | undefined {
  if (!Array.isArray(parents)) return undefined;
  const hashes = parents.map((p: Json) => p?.[field]).filter((h: unknown) => typeof h === 'string');
  return hashes.length > 0 ? hashes : undefined;
}

function cloudCommit(c: Json): CommitInfo | undefined {
  if (!c || typeof c.hash !== 'string') return undefined;
  return {
    hash: c.hash,
    message: c.message,
    author: cloudAuthor(c.author),
    parents: parentHashes(c.parents, 'hash'),
  };
}

type Body = Omit<Envelope, 'platform' | 'eventKey' | 'deliveryId' | 'hookId' | 'attempt'>;

function normaliseCloud(eventKey: string, p: Json): Body {
  const env: Body = {
    repository: p.repository?.full_name ?? null,
    repositoryUuid: p.repository?.uuid,
    refs: [],
    headCommit: undefined,
    commits: [],
    pullRequest: undefined,
    actor: cloudPerson(p.actor),
  };
  const family = eventFamily('cloud', eventKey);
  if (family === 'push') {
    for (const change of p.push.changes as Json[]) {
      const state = change.new ?? change.old;
      if (!state) continue;
      env.refs.push({
        name: state.name,
        kind: state.type === 'tag' ? 'tag' : 'branch',
        oldHash: change.old?.target?.hash ?? null,
        newHash: change.new?.target?.hash ?? null,
        created: change.created === true || change.old === null,
        deleted: change.closed === true || change.new === null,
        forced: change.forced === true,
        truncated: change.truncated === true,
      });
      if (Array.isArray(change.commits)) {
        for (const c of change.commits) {
          const commit = cloudCommit(c);
          if (commit) env.commits.push(commit);
        }
      }
    }
    const head = (p.push.changes as Json[]).find((c) => c.new?.target?.hash);
    if (head) env.headCommit = cloudCommit(head.new.target);
  } else if (family === 'pullrequest') {
    const pr = p.pullrequest;
    env.pullRequest = {
      id: pr.id,
      title: pr.title,
      state: pr.state,
      sourceBranch: pr.source?.branch?.name,
      sourceHash: pr.source?.commit?.hash,
      destinationBranch: pr.destination?.branch?.name,
      destinationHash: pr.destination?.commit?.hash,
      mergeCommit: pr.merge_commit?.hash,
      author: cloudPerson(pr.author),
      forkRepository: cloudFork(pr.source?.repository, pr.destination?.repository),
    };
  }
  return env;
}

/** Cloud: the fork's HTTPS clone URL, from its web link (`https://bitbucket.org/ws/repo` + `.git`). */
function cloudFork(source: Json, destination: Json): string | undefined {
  if (!source?.full_name || source.full_name === destination?.full_name) return undefined;
  const html = source.links?.html?.href;
  return typeof html === 'string' ? `${html}.git` : `https://bitbucket.org/${source.full_name}.git`;
}

/** Data Center: the fork's clone link, HTTP(S) first, as the payload lists them. */
function dcFork(source: Json, destination: Json): string | undefined {
  if (!source || source.id === undefined || source.id === destination?.id) return undefined;
  const clone: Json[] = Array.isArray(source.links?.clone) ? source.links.clone : [];
  const link = clone.find((c) => /^https?$/.test(c?.name)) ?? clone[0];
  return typeof link?.href === 'string' ? link.href : undefined;
}

function dcRepoKey(repo: Json): string | null {
  return repo?.project?.key && repo?.slug ? `${repo.project.key}/${repo.slug}` : null;
}

function dcCommit(c: Json): CommitInfo | undefined {
  if (!c || typeof c.id !== 'string') return undefined;
  return {
    hash: c.id,
    message: c.message,
    author: dcPerson(c.author),
    parents: parentHashes(c.parents, 'id'),
  };
}

function normaliseDc(eventKey: string, p: Json): Body {
  const family = eventFamily('datacenter', eventKey);
  const env: Body = {
    repository: dcRepoKey(p.repository) ?? dcRepoKey(p.pullRequest?.toRef?.repository),
    repositoryUuid: undefined,
    refs: [],
    headCommit: undefined,
    commits: [],
    pullRequest: undefined,
    actor: dcPerson(p.actor),
  };
  if (family === 'push') {
    for (const change of p.changes as Json[]) {
      const created = change.type === 'ADD' || ZERO_HASH.test(change.fromHash);
      const deleted = change.type === 'DELETE' || ZERO_HASH.test(change.toHash);
      env.refs.push({
        name: change.ref.displayId,
        kind: change.ref.type === 'TAG' ? 'tag' : 'branch',
        oldHash: created ? null : change.fromHash,
        newHash: deleted ? null : change.toHash,
        created,
        deleted,
        forced: false,
        truncated: false,
      });
    }
    if (Array.isArray(p.commits)) {
      for (const c of p.commits) {
        const commit = dcCommit(c);
        if (commit) env.commits.push(commit);
      }
    }
    env.headCommit = dcCommit(p.toCommit) ?? env.commits[0];
  } else if (family === 'pullrequest') {
    const pr = p.pullRequest;
    env.pullRequest = {
      id: pr.id,
      title: pr.title,
      state: pr.state,
      sourceBranch: pr.fromRef?.displayId,
      sourceHash: pr.fromRef?.latestCommit,
      destinationBranch: pr.toRef?.displayId,
      destinationHash: pr.toRef?.latestCommit,
      mergeCommit: pr.properties?.mergeCommit?.id,
      author: dcPerson(pr.author?.user),
      forkRepository: dcFork(pr.fromRef?.repository, pr.toRef?.repository),
    };
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

export function normalise(input: NormaliseInput): Envelope {
  const body =
    input.platform === 'cloud'
      ? normaliseCloud(input.eventKey, input.payload)
      : normaliseDc(input.eventKey, input.payload);
  return {
    platform: input.platform,
    eventKey: input.eventKey,
    deliveryId: input.deliveryId,
    hookId: input.hookId,
    attempt: input.attempt,
    repository: body.repository,
    repositoryUuid: body.repositoryUuid,
    refs: body.refs,
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
 * the PR and its merge commit; everything else on the body bytes (a PR update or comment may repeat its state).
 */
export function contentKeys(sourceId: string, env: Envelope, body: Buffer): ContentKey[] {
  const digest = (...parts: (string | Buffer)[]) => {
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
  return [{ key: digest(sourceId, env.eventKey, repo, body), tag: '' }];
}
