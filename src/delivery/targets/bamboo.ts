import type { LookupFirst, NothingToSend, OutgoingRequest, RequestContext } from '../relay-headers.js';
import { apiRequest } from './api-request.js';
import { lower } from './http.js';
import {
  DEFAULT_PARAMETERS,
  fullCommit,
  isNotApplicable,
  type TriggerRef,
  triggerParameters,
  triggerRef,
} from './trigger-ref.js';

const QUEUE = '/rest/api/latest/queue/';
const EMPTY = Buffer.alloc(0);

/**
 * Bamboo (Data Center) REST API. `url` is the plan's queue resource, `{base}/rest/api/latest/queue/{PROJ}-{PLAN}`
 * (https://docs.atlassian.com/atlassian-bamboo/REST/latest/ "queue"; QueueResource.startBuild). A build is queued
 * by POST to it, with `bamboo.variable.{name}=value` and `customRevision` as query parameters (as the
 * atlassian-api/atlassian-python-api client does, atlassian/bamboo.py execute_build), answered 200 with the
 * queued build's key. A branch other than the plan's `defaultBranch` builds its plan branch: its key is looked
 * up first with GET `{base}/rest/api/latest/plan/{PROJ}-{PLAN}/branch/{name}` (PlanResource), where Bamboo names
 * a plan branch after the VCS branch with `/` turned into `-`. A branch without a plan branch is not applicable
 * (Bamboo creates plan branches itself, by its branch detection). Tags are not applicable: Bamboo plans build
 * branches. Accept is JSON (Bamboo answers XML otherwise). The POST has no body and no form content type, so
 * Atlassian's XSRF check for form posts does not apply; `X-Atlassian-Token: no-check` says so explicitly.
 */
export function bambooParts(url: string): { base: string; planKey: string } {
  const parsed = new URL(url);
  const at = parsed.pathname.lastIndexOf(QUEUE);
  return {
    base: `${parsed.origin}${parsed.pathname.slice(0, at)}`,
    planKey: parsed.pathname.slice(at + QUEUE.length),
  };
}

export function bambooBranchName(branch: string): string {
  return branch.replace(/\//g, '-');
}

function queueRequest(ctx: RequestContext, planKey: string, ref: TriggerRef): OutgoingRequest {
  const { base } = bambooParts(ctx.target.url);
  const url = new URL(`${base}${QUEUE}${planKey}`);
  const env = ctx.event.envelope;
  const variables = triggerParameters(ctx.target.parameters, DEFAULT_PARAMETERS, ref, env, ctx.event.id);
  for (const [name, value] of Object.entries(variables))
    url.searchParams.set(`bamboo.variable.${name}`, value);
  const commit = fullCommit(ref);
  if (commit) url.searchParams.set('customRevision', commit);
  return apiRequest(ctx, {
    url: url.toString(),
    accept: 'application/json',
    headers: { 'x-atlassian-token': 'no-check' },
    body: EMPTY,
  });
}

export function buildBambooRequest(ctx: RequestContext): OutgoingRequest | NothingToSend | LookupFirst {
  const env = ctx.event.envelope;
  const ref = triggerRef(env);
  if (isNotApplicable(ref)) return { skip: ref.notApplicable };
  if (ref.kind === 'tag') return { skip: 'Bamboo plans build branches, not tags' };
  const { base, planKey } = bambooParts(ctx.target.url);
  if (ref.name === ctx.target.defaultBranch) return queueRequest(ctx, planKey, ref);
  const branch = bambooBranchName(ref.name);
  return {
    lookup: {
      url: `${base}/rest/api/latest/plan/${planKey}/branch/${encodeURIComponent(branch)}`,
      method: 'GET',
      headers: { ...lower(ctx.target.headers), 'user-agent': 'hookrelay', accept: 'application/json' },
      body: EMPTY,
    },
    afterLookup(status, body) {
      if (status === 404) return { skip: `no Bamboo plan branch ${branch} of ${planKey}` };
      if (status < 200 || status >= 300) return undefined;
      let key: unknown;
      try {
        key = (JSON.parse(body) as { key?: unknown }).key;
      } catch {
        key = undefined;
      }
      if (typeof key !== 'string' || !/^[A-Z0-9]+-[A-Z0-9]+$/.test(key)) {
        return { refuse: `Bamboo answered no plan branch key for ${branch}` };
      }
      return queueRequest(ctx, key, ref);
    },
  };
}
