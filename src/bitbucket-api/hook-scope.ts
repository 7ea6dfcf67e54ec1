import type { Platform } from '../config/types.js';

/**
 * Where a hook lives: a repository, or everything under a Cloud workspace / Data Center project.
 * Cloud: `/2.0/repositories/{workspace}/{repo_slug}/hooks` and `/2.0/workspaces/{workspace}/hooks`
 * (https://developer.atlassian.com/cloud/bitbucket/rest/api-group-webhooks/).
 * Data Center: `/rest/api/latest/projects/{projectKey}/repos/{repositorySlug}/webhooks` and
 * `/rest/api/latest/projects/{projectKey}/webhooks`
 * (https://developer.atlassian.com/server/bitbucket/rest/v906/api-group-repository/ and api-group-project/).
 */
export interface HookScope {
  platform: Platform;
  /** Cloud workspace or Data Center project key. */
  owner: string;
  /** Repository slug; absent for a workspace or project hook. */
  slug?: string;
}

export type HookLevel = 'repository' | 'workspace' | 'project';

export function levelOf(scope: HookScope): HookLevel {
  if (scope.slug) return 'repository';
  return scope.platform === 'cloud' ? 'workspace' : 'project';
}

/** `acme/widgets`, `workspace acme` or `project ACME`. */
export function describeScope(scope: HookScope): string {
  return scope.slug ? `${scope.owner}/${scope.slug}` : `${levelOf(scope)} ${scope.owner}`;
}

export function collectionPath(scope: HookScope): string {
  const owner = encodeURIComponent(scope.owner);
  const slug = scope.slug ? encodeURIComponent(scope.slug) : undefined;
  if (scope.platform === 'cloud')
    return slug ? `/2.0/repositories/${owner}/${slug}/hooks` : `/2.0/workspaces/${owner}/hooks`;
  return slug
    ? `/rest/api/latest/projects/${owner}/repos/${slug}/webhooks`
    : `/rest/api/latest/projects/${owner}/webhooks`;
}

/** The level above a repository hook, where a second hook to the same URL would double every event. */
export function parentScope(scope: HookScope): HookScope | undefined {
  return scope.slug ? { platform: scope.platform, owner: scope.owner } : undefined;
}

const NAME = /^[^/\s]+$/;

/**
 * The scope from the command's options: `--repo OWNER/SLUG`, or `--workspace` (Cloud) / `--project` (Data
 * Center) alone. Returns a message for anything else.
 */
export function scopeFromOptions(
  platform: Platform,
  opts: { repo?: string; workspace?: string; project?: string },
): HookScope | string {
  const given = [opts.repo && '--repo', opts.workspace && '--workspace', opts.project && '--project'].filter(
    Boolean,
  );
  if (given.length !== 1)
    return platform === 'cloud'
      ? 'give one of --repo WORKSPACE/SLUG or --workspace WORKSPACE'
      : 'give one of --repo PROJECT/SLUG or --project PROJECT';
  if (opts.repo) {
    const [owner, slug, ...rest] = opts.repo.split('/');
    if (!owner || !slug || rest.length > 0 || !NAME.test(owner) || !NAME.test(slug))
      return `--repo must be ${platform === 'cloud' ? 'WORKSPACE/SLUG' : 'PROJECT/SLUG'}, got ${opts.repo}`;
    return { platform, owner, slug };
  }
  if (opts.workspace) {
    if (platform !== 'cloud') return '--workspace is for Bitbucket Cloud; Data Center has --project';
    if (!NAME.test(opts.workspace)) return `--workspace must be a workspace slug, got ${opts.workspace}`;
    return { platform, owner: opts.workspace };
  }
  if (platform !== 'datacenter') return '--project is for Data Center; Bitbucket Cloud has --workspace';
  if (!NAME.test(opts.project!)) return `--project must be a project key, got ${opts.project}`;
  return { platform, owner: opts.project! };
}
