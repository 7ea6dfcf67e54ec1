import type { Platform } from '../config/types.js';

const CLOUD = [
  'repo:push',
  'repo:fork',
  'repo:updated',
  'repo:transfer',
  'repo:created',
  'repo:deleted',
  'repo:imported',
  'repo:commit_comment_created',
  'repo:commit_status_created',
  'repo:commit_status_updated',
  'pullrequest:created',
  'pullrequest:updated',
  'pullrequest:push',
  'pullrequest:approved',
  'pullrequest:unapproved',
  'pullrequest:fulfilled',
  'pullrequest:rejected',
  'pullrequest:changes_request_created',
  'pullrequest:changes_request_removed',
  'pullrequest:comment_created',
  'pullrequest:comment_updated',
  'pullrequest:comment_deleted',
  'pullrequest:comment_resolved',
  'pullrequest:comment_reopened',
  'issue:created',
  'issue:updated',
  'issue:comment_created',
  'project:updated',
  'pipeline:span_created',
] as const;

const DATACENTER = [
  'repo:refs_changed',
  'repo:modified',
  'repo:forked',
  'repo:comment:added',
  'repo:comment:edited',
  'repo:comment:deleted',
  'repo:secret_detected',
  'mirror:repo_synchronized',
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
  'pr:reviewer:changes_requested',
  'pr:reviewer:needs_work',
  'pr:reviewer:updated',
  'project:modified',
  'proj:modified',
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

/** Which payload schema family an event key belongs to. */
export type EventFamily = 'push' | 'pullrequest' | 'other';

export function eventFamily(platform: Platform, key: string): EventFamily {
  if (platform === 'cloud') {
    if (key === 'repo:push') return 'push';
    if (key.startsWith('pullrequest:')) return 'pullrequest';
    return 'other';
  }
  if (key === 'repo:refs_changed') return 'push';
  if (key.startsWith('pr:')) return 'pullrequest';
  return 'other';
}

/** The header that carries the per-request delivery id on each platform. */
export const DELIVERY_ID_HEADER: Record<Platform, string> = {
  cloud: 'x-request-uuid',
  datacenter: 'x-request-id',
};
