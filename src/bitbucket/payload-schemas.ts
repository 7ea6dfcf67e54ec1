import { Ajv, type ValidateFunction } from 'ajv';
import type { Platform } from '../config/types.js';
import type { EventFamily } from './event-keys.js';

/*
 * Schemas check what the relay reads (routing, dedupe, loop guard) and leave the rest open: Bitbucket adds
 * fields between versions, and targets receive the original bytes anyway. A signed body that fails its
 * family's schema is not refused but quarantined (see docs/inbound.md): the reason names the field, never
 * its value.
 */

const str = { type: 'string' } as const;
const nullableObject = { type: ['object', 'null'] } as const;

const cloudRepository = {
  type: 'object',
  required: ['full_name'],
  properties: { full_name: { type: 'string', minLength: 3, pattern: '/' }, uuid: str },
} as const;

const cloudRefState = {
  type: ['object', 'null'],
  required: ['type', 'name'],
  properties: {
    type: { enum: ['branch', 'tag', 'named_branch', 'bookmark'] },
    name: { type: 'string', minLength: 1 },
    target: { type: 'object', properties: { hash: str, message: str } },
  },
} as const;

const cloudPush = {
  type: 'object',
  required: ['push', 'repository'],
  properties: {
    repository: cloudRepository,
    actor: nullableObject,
    push: {
      type: 'object',
      required: ['changes'],
      properties: {
        changes: {
          type: 'array',
          maxItems: 1000,
          items: {
            type: 'object',
            properties: {
              old: cloudRefState,
              new: cloudRefState,
              created: { type: 'boolean' },
              closed: { type: 'boolean' },
              forced: { type: 'boolean' },
              truncated: { type: 'boolean' },
              commits: { type: 'array' },
            },
          },
        },
      },
    },
  },
} as const;

const cloudPullRequest = {
  type: 'object',
  required: ['pullrequest', 'repository'],
  properties: {
    repository: cloudRepository,
    actor: nullableObject,
    pullrequest: {
      type: 'object',
      required: ['id', 'source', 'destination'],
      properties: {
        id: { type: 'integer' },
        state: str,
        merge_commit: nullableObject,
        source: { type: 'object', properties: { branch: { type: 'object' }, commit: nullableObject } },
        destination: { type: 'object', properties: { branch: { type: 'object' }, commit: nullableObject } },
      },
    },
  },
} as const;

// Project events (`project:updated`) and keys the relay does not know may carry no repository.
const cloudOther = {
  type: 'object',
  properties: { repository: cloudRepository, actor: nullableObject },
} as const;

const dcRepository = {
  type: 'object',
  required: ['slug', 'project'],
  properties: {
    slug: { type: 'string', minLength: 1 },
    project: { type: 'object', required: ['key'], properties: { key: { type: 'string', minLength: 1 } } },
  },
} as const;

const dcRefsChanged = {
  type: 'object',
  required: ['repository', 'changes'],
  properties: {
    eventKey: str,
    repository: dcRepository,
    actor: nullableObject,
    changes: {
      type: 'array',
      maxItems: 1000,
      items: {
        type: 'object',
        required: ['ref', 'fromHash', 'toHash', 'type'],
        properties: {
          ref: {
            type: 'object',
            required: ['id', 'displayId', 'type'],
            properties: { id: str, displayId: str, type: { enum: ['BRANCH', 'TAG'] } },
          },
          fromHash: { type: 'string', pattern: '^[0-9a-f]{7,64}$' },
          toHash: { type: 'string', pattern: '^[0-9a-f]{7,64}$' },
          type: { enum: ['ADD', 'UPDATE', 'DELETE'] },
        },
      },
    },
    commits: { type: 'array' },
    toCommit: nullableObject,
  },
} as const;

const dcRef = {
  type: 'object',
  required: ['displayId', 'repository'],
  properties: { displayId: str, latestCommit: str, repository: dcRepository },
} as const;

const dcPullRequest = {
  type: 'object',
  required: ['pullRequest'],
  properties: {
    actor: nullableObject,
    pullRequest: {
      type: 'object',
      required: ['id', 'fromRef', 'toRef'],
      properties: { id: { type: 'integer' }, state: str, fromRef: dcRef, toRef: dcRef },
    },
  },
} as const;

const dcOther = { type: 'object', properties: { actor: nullableObject } } as const;

const ajv = new Ajv({ allErrors: false, strict: false });

const validators: Record<Platform, Record<EventFamily, ValidateFunction>> = {
  cloud: {
    push: ajv.compile(cloudPush),
    pullrequest: ajv.compile(cloudPullRequest),
    other: ajv.compile(cloudOther),
  },
  datacenter: {
    push: ajv.compile(dcRefsChanged),
    pullrequest: ajv.compile(dcPullRequest),
    other: ajv.compile(dcOther),
  },
};

/** Returns null when valid, else a short reason naming the first bad field. */
export function validatePayload(platform: Platform, family: EventFamily, payload: unknown): string | null {
  const check = validators[platform][family];
  if (check(payload)) return null;
  const err = check.errors?.[0];
  if (!err) return 'invalid payload';
  const where = err.instancePath ? err.instancePath.slice(1).replace(/\//g, '.') : 'body';
  const what = err.keyword === 'required' ? `${String(err.params.missingProperty)} is required` : err.message;
  return `${where}: ${what}`;
}
