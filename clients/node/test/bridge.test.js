'use strict';
// createBridge(): verify() against the fake bridge's JWKS, translate() and its cache.
// Run: node --test clients/node/test/

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const util = require('node:util');

const { createBridge, BridgeError } = require(path.join(__dirname, '..', 'index.js'));
const { startFakeBridge, PLATFORM_MP, MERCHANT_MP, OTHER_MP, MERCHANT_KEY } = require(
  path.join(__dirname, '..', 'test-support', 'fake-bridge.js')
);

/** A fake bridge, a clock and a bridge client on them; closed after the test. */
async function setup(t, extra = {}) {
  const fake = await startFakeBridge();
  t.after(() => fake.close());
  const clock = { t: Date.now() };
  const bridge = createBridge(
    Object.assign(
      {
        base: fake.base,
        merchantKey: MERCHANT_KEY,
        translateTo: MERCHANT_MP,
        appids: [PLATFORM_MP],
        now: () => clock.t,
      },
      extra
    )
  );
  fake.link(PLATFORM_MP, 'o-platform-1', MERCHANT_MP, { openid: 'o-m1-1', person_id: 'pm1-1' });
  return { fake, clock, bridge, sign: (c, o) => fake.sign(c, Object.assign({ nowMs: clock.t }, o)) };
}

async function rejectsWith(promise, code, reason) {
  const err = await promise.then(
    () => assert.fail('expected a rejection'),
    (e) => e
  );
  assert.ok(err instanceof BridgeError, String(err && err.stack));
  assert.equal(err.code, code, err.message);
  if (reason) assert.equal(err.reason, reason, err.message);
  return err;
}

// ---- options ----

test('createBridge needs base, merchantKey and translateTo', () => {
  const ok = { base: 'https://id.example.com', merchantKey: 'k', translateTo: MERCHANT_MP };
  assert.doesNotThrow(() => createBridge(ok));
  for (const missing of ['base', 'merchantKey', 'translateTo']) {
    const o = Object.assign({}, ok, { [missing]: undefined });
    assert.throws(() => createBridge(o), { code: 'invalid_options' });
  }
  assert.throws(() => createBridge(Object.assign({}, ok, { base: 'ftp://x' })), { code: 'invalid_options' });
  assert.throws(() => createBridge(Object.assign({}, ok, { appids: [] })), { code: 'invalid_options' });
  const b = createBridge(Object.assign({}, ok, { base: 'https://id.example.com/' }));
  assert.equal(b.base, 'https://id.example.com');
  assert.equal(b.issuer, 'https://id.example.com');
  assert.equal(b.audience, 'wxbridge');
});

test('the merchant key is not a property of the bridge object', () => {
  const b = createBridge({ base: 'https://id.example.com', merchantKey: MERCHANT_KEY, translateTo: MERCHANT_MP });
  assert.ok(!util.inspect(b, { depth: 5, showHidden: true }).includes(MERCHANT_KEY));
  assert.ok(!JSON.stringify(b).includes(MERCHANT_KEY));
});

// ---- verify ----

test('verify: a good token resolves its claims', async (t) => {
  const { bridge, sign, fake, clock } = await setup(t);
  const claims = await bridge.verify(await sign());
  assert.equal(claims.iss, fake.base);
  assert.equal(claims.aud, 'wxbridge');
  assert.equal(claims.sub, 'person-1');
  assert.equal(claims.appid, PLATFORM_MP);
  assert.equal(claims.openid, 'o-platform-1');
  assert.equal(claims.exp, Math.floor(clock.t / 1000) + 7200);
  // The JWKS is fetched once and kept.
  await bridge.verify(await sign({ openid: 'o-platform-2' }));
  assert.equal(fake.state.calls.jwks, 1);
  // The JWKS request carries no merchant key.
  const jwksReq = fake.state.requests.find((r) => r.url === '/.well-known/jwks.json');
  assert.equal(jwksReq.headers.authorization, undefined);
});

test('verify: expired token', async (t) => {
  const { bridge, sign, clock } = await setup(t);
  const token = await sign({ iat: Math.floor(clock.t / 1000) - 7200, exp: Math.floor(clock.t / 1000) - 1 });
  await rejectsWith(bridge.verify(token), 'invalid_token', 'ERR_JWT_EXPIRED');
  // And by the injected clock: valid now, expired two hours later.
  const fresh = await sign();
  await bridge.verify(fresh);
  clock.t += 7200 * 1000;
  const err = await rejectsWith(bridge.verify(fresh), 'invalid_token', 'ERR_JWT_EXPIRED');
  assert.equal(err.status, 401);
  assert.equal(err.tokenRefused, true);
});

test('verify: wrong issuer, wrong audience, missing claims, future iat', async (t) => {
  const { bridge, sign, clock } = await setup(t);
  await rejectsWith(bridge.verify(await sign({ iss: 'https://evil.example.com' })), 'invalid_token');
  await rejectsWith(bridge.verify(await sign({ aud: 'someone-else' })), 'invalid_token');
  await rejectsWith(bridge.verify(await sign({ sub: undefined })), 'invalid_token');
  await rejectsWith(bridge.verify(await sign({ openid: undefined })), 'invalid_token');
  await rejectsWith(bridge.verify(await sign({ appid: undefined })), 'invalid_token');
  await rejectsWith(bridge.verify(await sign({ iat: undefined })), 'invalid_token');
  await rejectsWith(bridge.verify(await sign({ iat: Math.floor(clock.t / 1000) + 120 })), 'invalid_token');
});

test('verify: a custom audience and issuer are checked', async (t) => {
  const { fake, clock } = await setup(t);
  const b = createBridge({
    base: fake.base,
    issuer: 'https://id.example.com',
    audience: 'merchant-api',
    merchantKey: MERCHANT_KEY,
    translateTo: MERCHANT_MP,
    now: () => clock.t,
  });
  const good = await fake.sign({ iss: 'https://id.example.com', aud: 'merchant-api' }, { nowMs: clock.t });
  assert.equal((await b.verify(good)).appid, PLATFORM_MP);
  await rejectsWith(b.verify(await fake.sign({}, { nowMs: clock.t })), 'invalid_token');
});

test('verify: a token of another app is refused when appids is given', async (t) => {
  const { bridge, sign, fake, clock } = await setup(t);
  await rejectsWith(bridge.verify(await sign({ appid: OTHER_MP })), 'invalid_token', 'foreign_appid');
  // Without appids, any app's token verifies.
  const open = createBridge({ base: fake.base, merchantKey: MERCHANT_KEY, translateTo: MERCHANT_MP, now: () => clock.t });
  assert.equal((await open.verify(await sign({ appid: OTHER_MP }))).appid, OTHER_MP);
  // appids may be a single string.
  const one = createBridge({ base: fake.base, merchantKey: 'k', translateTo: MERCHANT_MP, appids: OTHER_MP, now: () => clock.t });
  assert.equal((await one.verify(await sign({ appid: OTHER_MP }))).appid, OTHER_MP);
  await rejectsWith(one.verify(await sign()), 'invalid_token', 'foreign_appid');
});

test('verify: tampered signature, tampered payload, foreign key, other algorithms', async (t) => {
  const { bridge, sign, fake } = await setup(t);
  const token = await sign();
  const [h, p, s] = token.split('.');
  const flipped = s.slice(0, 10) + (s[10] === 'A' ? 'B' : 'A') + s.slice(11);
  await rejectsWith(bridge.verify([h, p, flipped].join('.')), 'invalid_token', 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
  // Another payload under the first signature (another openid).
  const other = (await sign({ openid: 'o-someone-else' })).split('.')[1];
  await rejectsWith(bridge.verify([h, other, s].join('.')), 'invalid_token', 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
  // Signed by a key the bridge does not publish, under the bridge's kid.
  const { privateKey } = await fake.jose.generateKeyPair('RS256');
  await rejectsWith(bridge.verify(await sign({}, { key: privateKey })), 'invalid_token');
  // HS256 and alg none are refused before any key is used.
  const hs = await new fake.jose.SignJWT({ iss: fake.base, aud: 'wxbridge', sub: 'x', appid: PLATFORM_MP, openid: 'o' })
    .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode('0123456789abcdef0123456789abcdef'));
  await rejectsWith(bridge.verify(hs), 'invalid_token');
  const none = [Buffer.from('{"alg":"none","kid":"k1"}').toString('base64url'), p, ''].join('.');
  await rejectsWith(bridge.verify(none), 'invalid_token');
  // Garbage.
  for (const bad of ['', 'abc', 'a.b', 'a.b.c.d', 'x'.repeat(9000), null, 42]) {
    await rejectsWith(bridge.verify(bad), 'invalid_token');
  }
});

test('verify: an unknown kid makes the JWKS be fetched again (key rotation)', async (t) => {
  const { bridge, sign, fake } = await setup(t, { jwks: { cooldownDuration: 0 } });
  await bridge.verify(await sign());
  assert.equal(fake.state.calls.jwks, 1);
  await fake.addKey('k2');
  const rotated = await sign({}, { kid: 'k2' });
  assert.equal((await bridge.verify(rotated)).openid, 'o-platform-1');
  assert.equal(fake.state.calls.jwks, 2);
  // A kid that is still unknown after the refetch is refused.
  await rejectsWith(bridge.verify(await sign({}, { kid: 'k3', key: fake.state.signers.get('k2') })), 'invalid_token', 'ERR_JWKS_NO_MATCHING_KEY');
});

test('verify: JWKS unreachable or broken → bridge_unavailable, not invalid_token', async (t) => {
  const { sign, fake, clock } = await setup(t);
  fake.state.onJwks = () => ({ status: 500, headers: {}, body: 'oops' });
  const b = createBridge({ base: fake.base, merchantKey: MERCHANT_KEY, translateTo: MERCHANT_MP, now: () => clock.t });
  await rejectsWith(b.verify(await sign()), 'bridge_unavailable');
  fake.state.onJwks = () => ({ status: 200, headers: {}, body: '{"not":"a jwks"}' });
  await rejectsWith(b.verify(await sign()), 'bridge_unavailable');
  // Once it answers, tokens verify.
  fake.state.onJwks = null;
  assert.equal((await b.verify(await sign())).appid, PLATFORM_MP);
  // Nothing listening at all.
  const token = await sign();
  await fake.close();
  const gone = createBridge({ base: fake.base, merchantKey: MERCHANT_KEY, translateTo: MERCHANT_MP, now: () => clock.t });
  await rejectsWith(gone.verify(token), 'bridge_unavailable');
});

test('verify: the token never appears in an error', async (t) => {
  const { bridge, sign, clock } = await setup(t);
  const token = await sign({ exp: Math.floor(clock.t / 1000) - 10, iat: Math.floor(clock.t / 1000) - 100 });
  const err = await rejectsWith(bridge.verify(token), 'invalid_token');
  const all = util.inspect(err, { depth: 10, showHidden: true }) + JSON.stringify(err) + err.message;
  assert.ok(!all.includes(token));
  assert.ok(!all.includes(token.split('.')[2]));
});

// ---- translate ----

test('translate: answers, sends the merchant key only as Authorization', async (t) => {
  const { bridge, fake } = await setup(t);
  assert.deepEqual(await bridge.translate(PLATFORM_MP, 'o-platform-1'), { openid: 'o-m1-1', person_id: 'pm1-1' });
  const reqs = fake.state.requests.filter((r) => r.url.startsWith('/v1/translate'));
  assert.equal(reqs.length, 1);
  const u = new URL(reqs[0].url, 'http://x');
  assert.deepEqual(Object.fromEntries(u.searchParams), {
    from_appid: PLATFORM_MP,
    openid: 'o-platform-1',
    to_appid: MERCHANT_MP,
  });
  assert.equal(reqs[0].headers.authorization, 'Bearer ' + MERCHANT_KEY);
  for (const [name, value] of Object.entries(reqs[0].headers)) {
    if (name !== 'authorization') assert.ok(!String(value).includes(MERCHANT_KEY), name);
  }
  assert.ok(!reqs[0].url.includes(MERCHANT_KEY));
});

test('translate: not_linked → null; other errors throw with status and code', async (t) => {
  const { bridge, fake } = await setup(t);
  assert.equal(await bridge.translate(PLATFORM_MP, 'o-stranger'), null);
  fake.state.onTranslate = () => ({
    status: 403,
    headers: { 'content-type': 'application/problem+json' },
    body: { type: 'urn:wxbridge:problem:forbidden', title: 'Forbidden', status: 403, detail: 'Not your app.', code: 'forbidden' },
  });
  const err = await rejectsWith(bridge.translate(PLATFORM_MP, 'o-x'), 'forbidden');
  assert.equal(err.status, 403);
  assert.equal(err.problem.code, 'forbidden');
  assert.match(err.message, /403 forbidden: Not your app\./);
  // 404 not_found (no such identity) is an error, not null.
  fake.state.onTranslate = () => ({ status: 404, headers: {}, body: { code: 'not_found', status: 404 } });
  const nf = await rejectsWith(bridge.translate(PLATFORM_MP, 'o-y'), 'not_found');
  assert.equal(nf.status, 404);
  // No problem body: http_<status>.
  fake.state.onTranslate = () => ({ status: 502, headers: {}, body: '<html>bad gateway</html>' });
  const bg = await rejectsWith(bridge.translate(PLATFORM_MP, 'o-z'), 'http_502');
  assert.equal(bg.status, 502);
  // 503 with Retry-After.
  fake.state.onTranslate = () => ({
    status: 503,
    headers: { 'content-type': 'application/problem+json', 'retry-after': '7' },
    body: { code: 'store_unavailable', status: 503 },
  });
  const su = await rejectsWith(bridge.translate(PLATFORM_MP, 'o-w'), 'store_unavailable');
  assert.equal(su.retryAfter, 7);
  // A 200 without the fields.
  fake.state.onTranslate = () => ({ status: 200, headers: {}, body: { openid: 'x' } });
  await rejectsWith(bridge.translate(PLATFORM_MP, 'o-v'), 'invalid_response');
  // Bad arguments.
  await rejectsWith(bridge.translate('', 'o'), 'invalid_request');
  await rejectsWith(bridge.translate(PLATFORM_MP), 'invalid_request');
});

test('translate: a wrong merchant key is a 401 error that does not show the key', async (t) => {
  const { fake, clock } = await setup(t);
  const wrongKey = 'mk_wrong_0123456789abcdef0123456789ab';
  fake.link(PLATFORM_MP, 'o-1', MERCHANT_MP, { openid: 'o-m1', person_id: 'p' });
  const b = createBridge({ base: fake.base, merchantKey: wrongKey, translateTo: MERCHANT_MP, now: () => clock.t });
  const err = await rejectsWith(b.translate(PLATFORM_MP, 'o-1'), 'invalid_token');
  assert.equal(err.status, 401);
  assert.equal(err.tokenRefused, undefined, 'the bridge refused the key, not a user token');
  const all = util.inspect(err, { depth: 10, showHidden: true }) + JSON.stringify(err) + err.message;
  assert.ok(!all.includes(wrongKey));
});

test('translate: a bridge that echoes the key gets it scrubbed from errors', async (t) => {
  const { bridge, fake } = await setup(t);
  fake.state.onTranslate = (url, req) => ({
    status: 400,
    headers: { 'content-type': 'application/problem+json' },
    body: { code: 'invalid_request', status: 400, detail: 'bad header ' + req.headers.authorization },
  });
  const err = await rejectsWith(bridge.translate(PLATFORM_MP, 'o-1'), 'invalid_request');
  const all = util.inspect(err, { depth: 10, showHidden: true }) + JSON.stringify(err) + err.message;
  assert.ok(!all.includes(MERCHANT_KEY), all);
  assert.match(err.message, /\[redacted\]/);
});

test('translate: network failure and timeout → bridge_unavailable', async (t) => {
  const { fake, clock } = await setup(t);
  fake.state.onTranslate = () => ({ status: 200, headers: {}, body: { openid: 'o', person_id: 'p' } });
  // A fetch that never answers: the timeout aborts it.
  const slow = createBridge({
    base: fake.base,
    merchantKey: MERCHANT_KEY,
    translateTo: MERCHANT_MP,
    now: () => clock.t,
    timeoutMs: 50,
    fetch: (url, init) =>
      new Promise((resolve, reject) => {
        init.signal.addEventListener('abort', () => reject(init.signal.reason));
      }),
  });
  const te = await rejectsWith(slow.translate(PLATFORM_MP, 'o-1'), 'bridge_unavailable');
  assert.match(te.message, /in time/);
  await fake.close();
  const gone = createBridge({ base: fake.base, merchantKey: MERCHANT_KEY, translateTo: MERCHANT_MP, now: () => clock.t });
  const err = await rejectsWith(gone.translate(PLATFORM_MP, 'o-1'), 'bridge_unavailable');
  assert.equal(err.status, undefined);
  assert.ok(!err.message.includes(MERCHANT_KEY));
});

test('translate: a redirect is not followed (the key goes nowhere else)', async (t) => {
  const { bridge, fake } = await setup(t);
  fake.state.onTranslate = () => ({ status: 302, headers: { location: 'http://127.0.0.1:1/steal' }, body: '' });
  const err = await rejectsWith(bridge.translate(PLATFORM_MP, 'o-1'), 'http_302');
  assert.equal(err.status, 302);
  assert.equal(fake.state.calls.translate, 1);
});

// ---- cache ----

test('cache: a second call does not hit the bridge; concurrent calls share one request', async (t) => {
  const { bridge, fake } = await setup(t);
  const a = await bridge.translate(PLATFORM_MP, 'o-platform-1');
  const b = await bridge.translate(PLATFORM_MP, 'o-platform-1');
  assert.deepEqual(a, b);
  assert.equal(fake.state.calls.translate, 1);
  // Callers get copies: changing one does not change the cache.
  a.openid = 'tampered';
  assert.equal((await bridge.translate(PLATFORM_MP, 'o-platform-1')).openid, 'o-m1-1');
  // Ten at once for a new pair: one request.
  fake.link(PLATFORM_MP, 'o-platform-2', MERCHANT_MP, { openid: 'o-m1-2', person_id: 'pm1-2' });
  const all = await Promise.all(Array.from({ length: 10 }, () => bridge.translate(PLATFORM_MP, 'o-platform-2')));
  assert.ok(all.every((x) => x.openid === 'o-m1-2'));
  assert.equal(fake.state.calls.translate, 2);
  // Keys are per (fromAppid, openid).
  assert.equal(await bridge.translate(OTHER_MP, 'o-platform-1'), null);
  assert.equal(fake.state.calls.translate, 3);
});

test('cache: 60 s without max-age', async (t) => {
  const { bridge, fake, clock } = await setup(t);
  await bridge.translate(PLATFORM_MP, 'o-platform-1');
  clock.t += 59 * 1000;
  await bridge.translate(PLATFORM_MP, 'o-platform-1');
  assert.equal(fake.state.calls.translate, 1);
  clock.t += 1000;
  await bridge.translate(PLATFORM_MP, 'o-platform-1');
  assert.equal(fake.state.calls.translate, 2);
});

test('cache: Cache-Control max-age is honoured', async (t) => {
  const { bridge, fake, clock } = await setup(t);
  fake.link(PLATFORM_MP, 'o-long', MERCHANT_MP, { openid: 'o-m1-long', person_id: 'p' }, { 'cache-control': 'private, max-age=120' });
  fake.link(PLATFORM_MP, 'o-zero', MERCHANT_MP, { openid: 'o-m1-zero', person_id: 'p' }, { 'cache-control': 'max-age=0' });
  fake.link(PLATFORM_MP, 'o-short', MERCHANT_MP, { openid: 'o-m1-short', person_id: 'p' }, { 'Cache-Control': 'no-store, max-age=2' });
  await bridge.translate(PLATFORM_MP, 'o-long');
  await bridge.translate(PLATFORM_MP, 'o-zero');
  await bridge.translate(PLATFORM_MP, 'o-short');
  assert.equal(fake.state.calls.translate, 3);
  clock.t += 1000;
  await bridge.translate(PLATFORM_MP, 'o-long'); // kept
  await bridge.translate(PLATFORM_MP, 'o-zero'); // max-age=0: never kept
  await bridge.translate(PLATFORM_MP, 'o-short'); // kept 2 s
  assert.equal(fake.state.calls.translate, 4);
  clock.t += 1000;
  await bridge.translate(PLATFORM_MP, 'o-short');
  assert.equal(fake.state.calls.translate, 5);
  clock.t += 100 * 1000; // 102 s
  await bridge.translate(PLATFORM_MP, 'o-long');
  assert.equal(fake.state.calls.translate, 5, 'still within max-age=120');
  clock.t += 18 * 1000; // 120 s
  await bridge.translate(PLATFORM_MP, 'o-long');
  assert.equal(fake.state.calls.translate, 6);
});

test('cache: not_linked is kept 5 s only', async (t) => {
  const { bridge, fake, clock } = await setup(t);
  assert.equal(await bridge.translate(PLATFORM_MP, 'o-late'), null);
  clock.t += 4 * 1000;
  // Linked meanwhile, but the not_linked answer is still kept.
  fake.link(PLATFORM_MP, 'o-late', MERCHANT_MP, { openid: 'o-m1-late', person_id: 'p-late' });
  assert.equal(await bridge.translate(PLATFORM_MP, 'o-late'), null);
  assert.equal(fake.state.calls.translate, 1);
  clock.t += 1000; // 5 s
  assert.deepEqual(await bridge.translate(PLATFORM_MP, 'o-late'), { openid: 'o-m1-late', person_id: 'p-late' });
  assert.equal(fake.state.calls.translate, 2);
});

test('cache: errors are never kept', async (t) => {
  const { bridge, fake } = await setup(t);
  let fail = 2;
  fake.state.onTranslate = () => (fail-- > 0 ? { status: 503, headers: {}, body: { code: 'store_unavailable' } } : undefined);
  await rejectsWith(bridge.translate(PLATFORM_MP, 'o-platform-1'), 'store_unavailable');
  await rejectsWith(bridge.translate(PLATFORM_MP, 'o-platform-1'), 'store_unavailable');
  assert.equal((await bridge.translate(PLATFORM_MP, 'o-platform-1')).openid, 'o-m1-1');
  assert.equal(fake.state.calls.translate, 3);
});

test('cache: bounded, the oldest entry goes first', async (t) => {
  const { bridge, fake } = await setup(t, { cacheSize: 3 });
  for (const n of [1, 2, 3, 4]) fake.link(PLATFORM_MP, 'o-' + n, MERCHANT_MP, { openid: 'm-' + n, person_id: 'p' + n });
  for (const n of [1, 2, 3, 4]) await bridge.translate(PLATFORM_MP, 'o-' + n);
  assert.equal(fake.state.calls.translate, 4);
  for (const n of [2, 3, 4]) await bridge.translate(PLATFORM_MP, 'o-' + n); // still there
  assert.equal(fake.state.calls.translate, 4);
  await bridge.translate(PLATFORM_MP, 'o-1'); // evicted: asked again (and now 2 goes)
  assert.equal(fake.state.calls.translate, 5);
  await bridge.translate(PLATFORM_MP, 'o-2');
  assert.equal(fake.state.calls.translate, 6);
  bridge.clearCache();
  await bridge.translate(PLATFORM_MP, 'o-2');
  assert.equal(fake.state.calls.translate, 7);
});

test('identify: verify, then translate into the merchant app', async (t) => {
  const { bridge, sign, fake } = await setup(t);
  assert.deepEqual(await bridge.identify(await sign()), {
    person_id: 'pm1-1',
    openid: 'o-m1-1',
    platform: { appid: PLATFORM_MP, openid: 'o-platform-1', person: 'person-1' },
  });
  assert.equal(await bridge.identify(await sign({ openid: 'o-stranger' })), null);
  // An identity the bridge no longer knows (erased): the token is refused.
  fake.state.onTranslate = () => ({ status: 404, headers: {}, body: { code: 'not_found', status: 404 } });
  await rejectsWith(bridge.identify(await sign({ openid: 'o-erased' })), 'invalid_token', 'unknown_identity');
  // A foreign token is refused before any translation.
  const before = fake.state.calls.translate;
  await rejectsWith(bridge.identify(await sign({ appid: OTHER_MP })), 'invalid_token', 'foreign_appid');
  assert.equal(fake.state.calls.translate, before);
});
