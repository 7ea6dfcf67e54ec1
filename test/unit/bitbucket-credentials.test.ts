import { describe, expect, it } from 'vitest';
import {
  authorizationHeader,
  CredentialsError,
  credentialsFromEnv,
  unauthorizedHint,
} from '../../src/bitbucket-api/credentials.js';
import { collectionPath, parentScope, scopeFromOptions } from '../../src/bitbucket-api/hook-scope.js';
import { type Hook, updatedHookBody } from '../../src/bitbucket-api/hooks-api.js';

describe('Bitbucket API credentials', () => {
  it('sends a Cloud user API token as Basic with the email, access tokens and Data Center tokens as Bearer', () => {
    const api = credentialsFromEnv('cloud', { BITBUCKET_EMAIL: 'a@b.example', BITBUCKET_API_TOKEN: 'tok' })!;
    expect(authorizationHeader(api)).toBe(`Basic ${Buffer.from('a@b.example:tok').toString('base64')}`);
    const access = credentialsFromEnv('cloud', { BITBUCKET_ACCESS_TOKEN: 'acc' })!;
    expect(authorizationHeader(access)).toBe('Bearer acc');
    const dc = credentialsFromEnv('datacenter', { BITBUCKET_DC_TOKEN: 'dct', BITBUCKET_ACCESS_TOKEN: 'x' })!;
    expect(authorizationHeader(dc)).toBe('Bearer dct');
    expect(credentialsFromEnv('cloud', {})).toBeNull();
    expect(credentialsFromEnv('cloud', { BITBUCKET_DC_TOKEN: 'dct' })).toBeNull();
  });

  it('refuses an API token without email, two kinds at once, and the retired variables', () => {
    expect(() => credentialsFromEnv('cloud', { BITBUCKET_API_TOKEN: 't' })).toThrow(/needs BITBUCKET_EMAIL/);
    expect(() =>
      credentialsFromEnv('cloud', {
        BITBUCKET_EMAIL: 'e',
        BITBUCKET_API_TOKEN: 't',
        BITBUCKET_ACCESS_TOKEN: 'a',
      }),
    ).toThrow(/not both/);
    expect(() => credentialsFromEnv('cloud', { BITBUCKET_TOKEN: 't' })).toThrow(CredentialsError);
    expect(() => credentialsFromEnv('datacenter', { BITBUCKET_APP_PASSWORD: 'p' })).toThrow(
      /BITBUCKET_DC_TOKEN/,
    );
  });

  it('a 401 hint names what was sent and the other kind, never the token', () => {
    const bearer = unauthorizedHint({ kind: 'cloud-access-token', token: 'secret-token-value' });
    expect(bearer).toContain('BITBUCKET_ACCESS_TOKEN');
    expect(bearer).toContain('BITBUCKET_API_TOKEN with BITBUCKET_EMAIL');
    expect(bearer).not.toContain('secret-token-value');
    expect(unauthorizedHint({ kind: 'cloud-api-token', email: 'e', token: 't' })).toContain(
      'BITBUCKET_ACCESS_TOKEN instead',
    );
    expect(unauthorizedHint({ kind: 'dc-http-access-token', token: 't' })).toContain('PROJECT_ADMIN');
  });
});

describe('hook scopes', () => {
  it('maps each level to its collection and knows the level above a repository', () => {
    const repo = scopeFromOptions('cloud', { repo: 'acme/widgets' });
    expect(repo).toEqual({ platform: 'cloud', owner: 'acme', slug: 'widgets' });
    expect(collectionPath(repo as never)).toBe('/2.0/repositories/acme/widgets/hooks');
    expect(collectionPath(parentScope(repo as never)!)).toBe('/2.0/workspaces/acme/hooks');
    const project = scopeFromOptions('datacenter', { project: 'ACME' });
    expect(collectionPath(project as never)).toBe('/rest/api/latest/projects/ACME/webhooks');
    expect(parentScope(project as never)).toBeUndefined();
    expect(scopeFromOptions('cloud', { project: 'ACME' })).toMatch(/--workspace/);
    expect(scopeFromOptions('datacenter', { workspace: 'acme' })).toMatch(/--project/);
    expect(scopeFromOptions('cloud', { repo: 'acme/widgets', workspace: 'acme' })).toMatch(/one of/);
    expect(scopeFromOptions('cloud', { repo: 'acme/widgets/x' })).toMatch(/WORKSPACE\/SLUG/);
  });
});

describe('updating a hook', () => {
  const dcHook: Hook = {
    id: '7',
    name: 'Named by the admin',
    url: 'https://relay.example.com/hooks/dc',
    events: ['pr:merged'],
    active: false,
    sslVerificationRequired: false,
    raw: { configuration: { createdBy: 'x' } },
  };
  it('changes only the secret and sends every other writable field back as it was', () => {
    expect(updatedHookBody('datacenter', dcHook, { secret: 'new' })).toEqual({
      name: 'Named by the admin',
      url: 'https://relay.example.com/hooks/dc',
      events: ['pr:merged'],
      active: false,
      configuration: { createdBy: 'x', secret: 'new' },
      sslVerificationRequired: false,
    });
    expect(updatedHookBody('cloud', { ...dcHook, raw: {} }, { secret: 'new' })).toEqual({
      description: 'Named by the admin',
      url: 'https://relay.example.com/hooks/dc',
      events: ['pr:merged'],
      active: false,
      secret: 'new',
    });
  });
});
