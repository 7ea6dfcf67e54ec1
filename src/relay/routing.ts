import picomatch from 'picomatch';
import type { Envelope } from '../bitbucket/envelope.js';
import type { Config, RouteConfig } from '../config/types.js';

type Matcher = (value: string) => boolean;

interface CompiledRoute {
  route: RouteConfig;
  event: Matcher;
  repo: Matcher;
  branch?: Matcher;
  /** `repos` / `branches` hold a lone `*`: the route also takes events without a repository / a branch. */
  anyRepo: boolean;
  anyBranch: boolean;
}

/*
 * Glob semantics: `*` stays within one path segment, `**` crosses `/` (`release/*` matches `release/1.2` but not
 * `release/1.2/hotfix`), and a lone `*` matches everything. Event keys contain no `/`, so `pr:*` matches `pr:comment:added`. Repository names are
 * compared case-insensitively (Data Center project keys are upper case in payloads, often not in people's heads).
 */
export function compile(globs: readonly string[], nocase = false): Matcher {
  // A lone `*` is what people write for "all of them", branches like `feature/x` and repositories included.
  return picomatch(
    globs.map((g) => (g === '*' ? '**' : g)),
    { nocase, dot: true },
  );
}

export class Router {
  private readonly bySource = new Map<string, CompiledRoute[]>();

  constructor(config: Pick<Config, 'routes'>) {
    for (const route of config.routes) {
      const list = this.bySource.get(route.source) ?? [];
      list.push({
        route,
        event: compile(route.events),
        repo: compile(route.repos, true),
        ...(route.branches ? { branch: compile(route.branches) } : {}),
        anyRepo: route.repos.includes('*'),
        anyBranch: route.branches?.includes('*') ?? true,
      });
      this.bySource.set(route.source, list);
    }
  }

  /**
   * The targets an event goes to, each once even when several routes name it, in config order. A route with
   * `branches` matches a push when any changed ref's name matches, and a pull request event when its source or
   * destination branch matches. An event about no repository (a project event) or carrying no branch (a
   * comment, a repository rename) matches `repos` / `branches` only through a lone `*`: "every event".
   */
  match(sourceId: string, env: Envelope): { targets: string[]; routes: RouteConfig[] } {
    const targets: string[] = [];
    const routes: RouteConfig[] = [];
    for (const c of this.bySource.get(sourceId) ?? []) {
      if (!c.event(env.eventKey)) continue;
      if (env.repository === null ? !c.anyRepo : !c.repo(env.repository)) continue;
      if (c.branch && !c.anyBranch) {
        const branches = branchesOf(env);
        if (!branches.some((b) => c.branch!(b))) continue;
      }
      routes.push(c.route);
      for (const t of c.route.targets) if (!targets.includes(t)) targets.push(t);
    }
    return { targets, routes };
  }
}

function branchesOf(env: Envelope): string[] {
  if (env.refs.length > 0) return env.refs.map((r) => r.name);
  const pr = env.pullRequest;
  return pr ? [pr.sourceBranch, pr.destinationBranch].filter((b): b is string => typeof b === 'string') : [];
}
