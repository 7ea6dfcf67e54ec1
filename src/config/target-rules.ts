/**
 * What each trigger target type needs from its config, checked by `config check` so that a wrong URL or a
 * missing credential is named by key instead of ending in dead letters. The URL shapes are the receivers' own
 * endpoints (docs/targets.md cites each API's reference).
 */

/** The types that start a build through a CI system's API (docs/targets.md), rather than relay a webhook. */
export const TRIGGER_TYPES = [
  'github-repository-dispatch',
  'github-workflow-dispatch',
  'gitlab-trigger',
  'bitbucket-pipelines',
  'circleci',
  'azure-pipelines',
  'bamboo',
  'jenkins-job',
] as const;

/** What a trigger target's parameter can carry, taken from the event (src/delivery/targets/trigger-ref.ts). */
export const TRIGGER_FIELDS = [
  'branch',
  'tag',
  'ref',
  'refType',
  'commit',
  'repository',
  'eventKey',
  'eventId',
  'pullRequestId',
  'pullRequestSourceBranch',
  'pullRequestDestinationBranch',
] as const;

// biome-ignore lint/suspicious/noExplicitAny: the raw tree has just been validated against the schema
type Raw = any;

const URL_SHAPES: Record<string, { path: RegExp; example: string }> = {
  'github-repository-dispatch': {
    path: /\/repos\/[^/]+\/[^/]+\/dispatches$/,
    example: 'https://api.github.com/repos/{owner}/{repo}/dispatches',
  },
  'github-workflow-dispatch': {
    path: /\/repos\/[^/]+\/[^/]+\/actions\/workflows\/[^/]+\/dispatches$/,
    example: 'https://api.github.com/repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches',
  },
  'gitlab-trigger': {
    path: /\/api\/v4\/projects\/[^/]+\/trigger\/pipeline$/,
    example: 'https://gitlab.com/api/v4/projects/{id}/trigger/pipeline',
  },
  'bitbucket-pipelines': {
    path: /\/2\.0\/repositories\/[^/]+\/[^/]+\/pipelines\/$/,
    example: 'https://api.bitbucket.org/2.0/repositories/{workspace}/{repo_slug}/pipelines/',
  },
  circleci: {
    path: /\/api\/v2\/project\/[^/]+\/[^/]+\/[^/]+\/pipeline$/,
    example: 'https://circleci.com/api/v2/project/{vcs}/{org}/{repo}/pipeline',
  },
  'azure-pipelines': {
    path: /\/_apis\/pipelines\/\d+\/runs$/,
    example: 'https://dev.azure.com/{organization}/{project}/_apis/pipelines/{id}/runs',
  },
  bamboo: {
    path: /\/rest\/api\/latest\/queue\/[A-Z0-9]+-[A-Z0-9]+$/,
    example: 'https://bamboo.example.com/rest/api/latest/queue/{PROJECT}-{PLAN}',
  },
  'jenkins-job': {
    path: /\/job\/[^/]+\/buildWithParameters$/,
    example: 'https://jenkins.example.com/job/{name}/buildWithParameters',
  },
};

// GitHub refuses more: the OpenAPI description of both dispatch bodies says "maximum number of properties is 10".
const GITHUB_MAX_PARAMETERS = 10;

export function checkTriggerTarget(target: Raw, i: number): string[] {
  const problems: string[] = [];
  const at = `targets[${i}]`;
  const shape = URL_SHAPES[target.type];
  if (shape && !shape.path.test(new URL(target.url).pathname)) {
    problems.push(`${at}.url: a ${target.type} target's url looks like ${shape.example}`);
  }
  if (target.type === 'gitlab-trigger' && target.auth?.type !== 'token') {
    problems.push(
      `${at}.auth: type gitlab-trigger needs auth { type: token, token: <pipeline trigger token> }`,
    );
  }
  if (target.type === 'circleci' && target.auth?.type !== 'token') {
    problems.push(`${at}.auth: type circleci needs auth { type: token, token: <CircleCI API token> }`);
  }
  if (
    (target.type === 'github-repository-dispatch' || target.type === 'github-workflow-dispatch') &&
    target.parameters &&
    Object.keys(target.parameters).length > GITHUB_MAX_PARAMETERS
  ) {
    problems.push(`${at}.parameters: GitHub accepts at most ${GITHUB_MAX_PARAMETERS}`);
  }
  if (target.customPipeline !== undefined && target.type !== 'bitbucket-pipelines') {
    problems.push(`${at}.customPipeline: only for type bitbucket-pipelines`);
  }
  if (target.eventType !== undefined && target.type !== 'github-repository-dispatch') {
    problems.push(`${at}.eventType: only for type github-repository-dispatch`);
  }
  if (target.defaultBranch !== undefined && target.type !== 'bamboo') {
    problems.push(`${at}.defaultBranch: only for type bamboo`);
  }
  return problems;
}
