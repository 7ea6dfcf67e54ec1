import { describe, expect, it } from 'vitest';
import { captureLogs } from '../helpers/logs.js';

describe('log redaction', () => {
  it('blanks secrets at the top level, in known header paths and one level down, and leaves the rest', () => {
    const { log, raw, lines } = captureLogs();
    const body = Buffer.from('BODY-BYTES');
    log.info(
      {
        token: 'TOP-TOKEN',
        password: 'TOP-PASSWORD',
        body: 'BODY-TEXT',
        payload: { repository: 'PAYLOAD-REPO' },
        headers: {
          authorization: 'Bearer HEADER-AUTH',
          'x-hub-signature': 'sha256=HEADER-SIG',
          accept: '*/*',
        },
        req: { headers: { authorization: 'Basic REQ-AUTH', cookie: 'REQ-COOKIE' } },
        target: { id: 'ci', signingSecret: 'NESTED-SIGNING', auth: { type: 'bearer' } },
        auth: { type: 'oauth2', clientSecret: 'NESTED-CLIENT', token: 'NESTED-TOKEN', password: 'NESTED-PW' },
        source: { id: 'cloud', secrets: ['NESTED-SECRETS'] },
        raw: body,
      },
      'careless',
    );
    const text = raw();
    for (const secret of [
      'TOP-TOKEN',
      'TOP-PASSWORD',
      'BODY-TEXT',
      'PAYLOAD-REPO',
      'HEADER-AUTH',
      'HEADER-SIG',
      'REQ-AUTH',
      'REQ-COOKIE',
      'NESTED-SIGNING',
      'NESTED-CLIENT',
      'NESTED-TOKEN',
      'NESTED-PW',
      'NESTED-SECRETS',
    ]) {
      expect(text).not.toContain(secret);
    }
    const line = lines[0] as Record<string, Record<string, unknown>>;
    expect(line.target).toEqual({ id: 'ci', signingSecret: '[redacted]', auth: { type: 'bearer' } });
    expect(line.auth!.type).toBe('oauth2');
    expect(line.headers!.accept).toBe('*/*');
    expect(line.raw).toEqual(JSON.parse(JSON.stringify(body)));
  });

  it('blanks them in the bindings of child loggers too, at any depth', () => {
    const { log, raw } = captureLogs();
    log
      .child({ target: { id: 'ci', token: 'CHILD-TOKEN' } })
      .child({ auth: { password: 'GRANDCHILD-PW' } })
      .info('bound');
    expect(raw()).not.toContain('CHILD-TOKEN');
    expect(raw()).not.toContain('GRANDCHILD-PW');
    expect(raw()).toContain('"id":"ci"');
  });

  it('keeps an Error an Error for the err serializer when it blanks one of its fields', () => {
    const { log, lines } = captureLogs();
    const err = Object.assign(new Error('upstream refused'), { password: 'ERR-PW' });
    log.warn({ err }, 'failed');
    const logged = lines[0]!.err as Record<string, unknown>;
    expect(logged).toMatchObject({ type: 'Error', message: 'upstream refused', password: '[redacted]' });
    expect(String(logged.stack)).toContain('upstream refused');
    expect(err.password).toBe('ERR-PW');
  });

  it('does not touch the objects it was given, frozen ones included', () => {
    const { log, raw } = captureLogs();
    const target = { id: 'ci', signingSecret: 'kept-in-memory' };
    const frozen = Object.freeze({ id: 'jenkins', token: 'FROZEN-TOKEN' });
    log.info({ target, frozen }, 'x');
    expect(target.signingSecret).toBe('kept-in-memory');
    expect(raw()).not.toContain('FROZEN-TOKEN');
    expect(raw()).toContain('"id":"jenkins"');
  });
});
