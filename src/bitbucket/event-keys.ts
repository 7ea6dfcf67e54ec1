import type { Platform } from '../config/types.js';

/*
 * The event keys Atlassian documents, each beside a public project that receives it from live servers. A key
 * not listed here is still accepted when well formed (family `other`, see isWellFormedEventKey): Bitbucket
 * never retries a 4xx, so a list that lags a Bitbucket release must not cost the events it forgot.
 */

const CLOUD = [
  // go-playground/webhooks bitbucket/bitbucket.go: push, fork, updated, commit comment and status, issue and
  // pull request events; jenkinsci/bitbucket-branch-source-plugin hooks/HookEventType.java: push and PR events.
  'repo:push',
  'repo:fork',
  'repo:updated',
  'repo:commit_comment_created',
  'repo:commit_status_created',
  'repo:commit_status_updated',
  // Atlassian's Cloud event payload page (support.atlassian.com, "Event payloads"): repository lifecycle.
  'repo:transfer',
  'repo:created',
  'repo:deleted',
  'repo:imported',
  'pullrequest:created',
  'pullrequest:updated',
  'pullrequest:approved',
  'pullrequest:unapproved',
  'pullrequest:fulfilled',
  'pullrequest:rejected',
  'pullrequest:comment_created',
  'pullrequest:comment_updated',
  'pullrequest:comment_deleted',
  // Atlassian's Cloud event payload page: later additions.
  'pullrequest:push',
  'pullrequest:changes_request_created',
  'pullrequest:changes_request_removed',
  'pullrequest:comment_resolved',
  'pullrequest:comment_reopened',
  'issue:created',
  'issue:updated',
  'issue:comment_created',
  'project:updated',
  'pipeline:span_created',
] as const;

const DATACENTER = [
  // go-playground/webhooks bitbucket-server/bitbucketserver.go (event constants and testdata/bitbucket-server/
  // captures): every repo:, pr: and diagnostics key below unless noted.
  'repo:refs_changed',
  'repo:modified',
  'repo:forked',
  'repo:comment:added',
  'repo:comment:edited',
  'repo:comment:deleted',
  'pr:opened',
  'pr:from_ref_updated',
  'pr:modified',
  'pr:merged',
  'pr:declined',
  'pr:deleted',
  'pr:comment:added',
  'pr:comment:edited',
  'pr:comment:deleted',
  'pr:reviewer:approved',
  'pr:reviewer:unapproved',
  'pr:reviewer:updated',
  // What live servers (DC 5 to 10) send for "changes requested": go-playground/webhooks' capture
  // testdata/bitbucket-server/pr-reviewer-needs-work.json (the UI label changed, the key did not).
  'pr:reviewer:needs_work',
  // The name in Atlassian's DC event list; no live capture seen, kept in case a version sends it.
  'pr:reviewer:changes_requested',
  // jenkinsci/atlassian-bitbucket-server-integration-plugin trigger/events/BitbucketWebhookEvent.java, and
  // jenkinsci/bitbucket-branch-source-plugin NativeServerMirrorRepoSynchronizedEvent (Smart Mirroring).
  'mirror:repo_synchronized',
  // Atlassian's DC 8+ event list (secret scanning) and project settings; both spellings appear in its docs.
  'repo:secret_detected',
  'project:modified',
  'proj:modified',
  // "Test connection": jenkinsci/bitbucket-branch-source-plugin HookEventType.SERVER_PING.
  'diagnostics:ping',
] as const;

const KNOWN: Record<Platform, ReadonlySet<string>> = {
  cloud: new Set(CLOUD),
  datacenter: new Set(DATACENTER),
};

export function isKnownEventKey(platform: Platform, key: string): boolean {
  return KNOWN[platform].has(key);
}

/** Event keys a webhook can subscribe to (`diagnostics:ping` is only sent by "Test connection"). */
export function subscribableEvents(platform: Platform): string[] {
  return [...KNOWN[platform]].filter((key) => key !== 'diagnostics:ping');
}

/**
 * What every Bitbucket key looks like: two to four lower-case `:`-separated words (`repo:push`,
 * `pr:reviewer:needs_work`). Anything else is not an event key but a broken or hostile header.
 */
const WELL_FORMED = /^[a-z][a-z0-9_]{0,31}(?::[a-z0-9_]{1,32}){1,3}$/;

export function isWellFormedEventKey(key: string): boolean {
  return key.length <= 64 && WELL_FORMED.test(key);
}

/** Which payload schema family an event key belongs to; a key the relay does not know is `other`. */
export type EventFamily = 'push' | 'pullrequest' | 'other';

export function eventFamily(platform: Platform, key: string): EventFamily {
  if (!KNOWN[platform].has(key)) return 'other';
  if (platform === 'cloud') {
    if (key === 'repo:push') return 'push';
    if (key.startsWith('pullrequest:')) return 'pullrequest';
    return 'other';
  }
  // A mirror's sync carries the same `changes` as a push (NativeServerMirrorRepoSynchronizedEvent).
  if (key === 'repo:refs_changed' || key === 'mirror:repo_synchronized') return 'push';
  if (key.startsWith('pr:')) return 'pullrequest';
  return 'other';
}

/** The header that carries the per-request delivery id on each platform. */
export const DELIVERY_ID_HEADER: Record<Platform, string> = {
  cloud: 'x-request-uuid',
  datacenter: 'x-request-id',
};
