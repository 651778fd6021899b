'use strict';
// middleware() (Express, served here by bare node:http, which Express's req/res extend) and
// koa() (a Koa-like ctx), against the fake bridge.
// Run: node --test clients/node/test/

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const path = require('node:path');

const { createBridge, middleware, koa } = require(path.join(__dirname, '..', 'index.js'));
const { startFakeBridge, PLATFORM_MP, MERCHANT_MP, OTHER_MP, MERCHANT_KEY } = require(
  path.join(__dirname, '..', 'test-support', 'fake-bridge.js')
);

async function setup(t, mwOptions = {}) {
  const fake = await startFakeBridge();
  t.after(() => fake.close());
  const clock = { t: Date.now() };
  const bridge = createBridge({
    base: fake.base,
    merchantKey: MERCHANT_KEY,
    translateTo: MERCHANT_MP,
    appids: [PLATFORM_MP],
    now: () => clock.t,
  });
  fake.link(PLATFORM_MP, 'o-platform-1', MERCHANT_MP, { openid: 'o-m1-1', person_id: 'pm1-1' });
  const logged = [];
  const mw = middleware(bridge, Object.assign({ onError: (err, info) => logged.push({ err, info }) }, mwOptions));
  // The merchant's API: after the middleware, a route that shows what it was given.
  let reached = 0;
  const server = http.createServer((req, res) => {
    mw(req, res, (err) => {
      if (err) {
        res.statusCode = 500;
        return res.end('next(err)');
      }
      reached += 1;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ wxbridge: req.wxbridge }));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const api = 'http://127.0.0.1:' + server.address().port;
  async function call(headers) {
    const res = await fetch(api + '/orders', { headers: headers || {} });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, body: JSON.parse(text) };
  }
  return {
    fake,
    clock,
    bridge,
    logged,
    call,
    reached: () => reached,
    sign: (c, o) => fake.sign(c, Object.assign({ nowMs: clock.t }, o)),
  };
}

function assertProblem(a, status, code) {
  assert.equal(a.status, status, a.text);
  assert.equal(a.headers.get('content-type'), 'application/problem+json');
  assert.equal(a.headers.get('cache-control'), 'no-store');
  assert.deepEqual(Object.keys(a.body).sort(), ['code', 'detail', 'status', 'title', 'type']);
  assert.equal(a.body.code, code);
  assert.equal(a.body.status, status);
  assert.equal(a.body.type, 'urn:wxbridge:problem:' + code);
  if (status === 401) assert.match(a.headers.get('www-authenticate'), /^Bearer/);
}

test('express: a good token passes and is rewritten into the merchant app', async (t) => {
  const s = await setup(t);
  const a = await s.call({ authorization: 'Bearer ' + (await s.sign()) });
  assert.equal(a.status, 200, a.text);
  assert.deepEqual(a.body.wxbridge, {
    person_id: 'pm1-1',
    openid: 'o-m1-1',
    platform: { appid: PLATFORM_MP, openid: 'o-platform-1', person: 'person-1' },
  });
  // The scheme is case-insensitive.
  assert.equal((await s.call({ authorization: 'bearer ' + (await s.sign()) })).status, 200);
  assert.equal(s.reached(), 2);
  assert.equal(s.fake.state.calls.translate, 1, 'the second request used the cache');
  assert.equal(s.logged.length, 0);
});

test('express: missing, malformed, expired, foreign, wrong-issuer, wrong-audience, tampered → 401', async (t) => {
  const s = await setup(t);
  const now = Math.floor(s.clock.t / 1000);
  const good = await s.sign();
  const [h, p, sig] = good.split('.');
  const cases = {
    missing: undefined,
    empty: '',
    'not bearer': 'Basic ' + Buffer.from('a:b').toString('base64'),
    'bearer without token': 'Bearer ',
    'two tokens': 'Bearer ' + good + ' ' + good,
    garbage: 'Bearer not-a-jwt',
    expired: 'Bearer ' + (await s.sign({ iat: now - 7300, exp: now - 100 })),
    'foreign appid': 'Bearer ' + (await s.sign({ appid: OTHER_MP })),
    'wrong issuer': 'Bearer ' + (await s.sign({ iss: 'https://evil.example.com' })),
    'wrong audience': 'Bearer ' + (await s.sign({ aud: 'not-wxbridge' })),
    'tampered signature': 'Bearer ' + [h, p, sig.slice(0, -4) + (sig.endsWith('AAAA') ? 'BBBB' : 'AAAA')].join('.'),
    'tampered payload': 'Bearer ' + [h, (await s.sign({ openid: 'o-victim' })).split('.')[1], sig].join('.'),
  };
  for (const [name, value] of Object.entries(cases)) {
    const a = await s.call(value === undefined ? {} : { authorization: value });
    assertProblem(a, 401, 'invalid_token');
    const sent = value ? value.split(' ').slice(1).join(' ').trim() : '';
    if (sent) assert.ok(!a.text.includes(sent), name + ': the token is echoed');
  }
  assert.equal(s.reached(), 0);
  assert.equal(s.fake.state.calls.translate, 0, 'nothing refused was translated');
  assert.equal(s.logged.length, 0, 'a bad token is not an operator fault');
  // An expired token says so.
  const exp = await s.call({ authorization: cases.expired });
  assert.match(exp.body.detail, /expired/);
});

test('express: not linked → 403 not_linked', async (t) => {
  const s = await setup(t);
  const a = await s.call({ authorization: 'Bearer ' + (await s.sign({ openid: 'o-new-person' })) });
  assertProblem(a, 403, 'not_linked');
  assert.equal(s.reached(), 0);
});

test('express: bridge unavailable → 503 (translation down, JWKS down), Retry-After passed on', async (t) => {
  const s = await setup(t);
  s.fake.state.onTranslate = () => ({
    status: 503,
    headers: { 'content-type': 'application/problem+json', 'retry-after': '3' },
    body: { code: 'store_unavailable', status: 503 },
  });
  const a = await s.call({ authorization: 'Bearer ' + (await s.sign()) });
  assertProblem(a, 503, 'bridge_unavailable');
  assert.equal(a.headers.get('retry-after'), '3');
  assert.equal(s.logged.length, 1);
  assert.equal(s.logged[0].err.code, 'store_unavailable');
  assert.equal(s.logged[0].info.status, 503);
  // 429 from the bridge is unavailability too.
  s.fake.state.onTranslate = () => ({ status: 429, headers: {}, body: { code: 'busy', status: 429 } });
  assertProblem(await s.call({ authorization: 'Bearer ' + (await s.sign()) }), 503, 'bridge_unavailable');
  // A bridge whose JWKS cannot be fetched.
  const fresh = createBridge({ base: s.fake.base, merchantKey: MERCHANT_KEY, translateTo: MERCHANT_MP, now: () => s.clock.t });
  s.fake.state.onJwks = () => ({ status: 502, headers: {}, body: 'no' });
  const logged = [];
  const mw = middleware(fresh, { onError: (e) => logged.push(e) });
  const res = fakeRes();
  await runExpress(mw, { headers: { authorization: 'Bearer ' + (await s.sign()) } }, res);
  assert.equal(res.statusCode, 503);
  assert.equal(JSON.parse(res.body).code, 'bridge_unavailable');
  assert.equal(logged[0].code, 'bridge_unavailable');
});

test('express: the bridge refusing the merchant key → 500, and neither key nor token leaks', async (t) => {
  const s = await setup(t);
  const token = await s.sign();
  s.fake.state.onTranslate = (url, req) => ({
    status: 401,
    headers: { 'content-type': 'application/problem+json' },
    body: { code: 'invalid_token', status: 401, detail: 'no such key: ' + req.headers.authorization },
  });
  const printed = [];
  const origError = console.error;
  console.error = (...args) => printed.push(args.join(' '));
  let a;
  try {
    // The default onError logs to console.error.
    const fresh = createBridge({ base: s.fake.base, merchantKey: MERCHANT_KEY, translateTo: MERCHANT_MP, now: () => s.clock.t });
    const res = fakeRes();
    await runExpress(middleware(fresh), { headers: { authorization: 'Bearer ' + token } }, res);
    a = res;
  } finally {
    console.error = origError;
  }
  assert.equal(a.statusCode, 500);
  const body = JSON.parse(a.body);
  assert.equal(body.code, 'internal_error');
  assert.equal(printed.length, 1);
  assert.match(printed[0], /^wxbridge: answered 500, invalid_token \(bridge HTTP 401\)/);
  for (const text of [a.body, printed[0], JSON.stringify(a.headers)]) {
    assert.ok(!text.includes(MERCHANT_KEY), text);
    assert.ok(!text.includes(token), text);
  }
});

test('express: the header option names another header', async (t) => {
  const s = await setup(t, { header: 'X-WxBridge-Token' });
  const token = await s.sign();
  assert.equal((await s.call({ 'x-wxbridge-token': token })).status, 200);
  assert.equal((await s.call({ 'x-wxbridge-token': 'Bearer ' + token })).status, 200);
  assertProblem(await s.call({ authorization: 'Bearer ' + token }), 401, 'invalid_token');
});

test('express: an error thrown downstream goes to next(err), not into a problem answer', async () => {
  const bridge = {
    identify: async () => ({ person_id: 'p', openid: 'o', platform: { appid: 'a', openid: 'b', person: 'c' } }),
  };
  const mw = middleware(bridge);
  const seen = [];
  let calls = 0;
  await new Promise((resolve) => {
    mw({ headers: { authorization: 'Bearer a.b.c' } }, fakeRes(), (err) => {
      calls += 1;
      seen.push(err);
      if (calls === 1) {
        setImmediate(resolve);
        throw new Error('route failed');
      }
    });
  });
  await new Promise((r) => setImmediate(r));
  assert.equal(seen[0], undefined);
  assert.equal(seen[1].message, 'route failed');
});

// ---- Koa ----

/** A Koa-like context: ctx.headers, ctx.state, ctx.status, ctx.type, ctx.body, ctx.set(). */
function koaCtx(headers) {
  const set = {};
  return {
    headers: headers || {},
    state: {},
    status: 404,
    type: '',
    body: undefined,
    responseHeaders: set,
    set(k, v) {
      set[k.toLowerCase()] = v;
    },
  };
}

test('koa: a good token sets ctx.state.wxbridge and awaits next', async (t) => {
  const s = await setup(t);
  const mw = koa(s.bridge);
  const ctx = koaCtx({ authorization: 'Bearer ' + (await s.sign()) });
  let after = false;
  await mw(ctx, async () => {
    await new Promise((r) => setImmediate(r));
    after = true;
    ctx.status = 200;
  });
  assert.ok(after, 'next was awaited');
  assert.deepEqual(ctx.state.wxbridge, {
    person_id: 'pm1-1',
    openid: 'o-m1-1',
    platform: { appid: PLATFORM_MP, openid: 'o-platform-1', person: 'person-1' },
  });
  // Errors from downstream propagate to Koa.
  await assert.rejects(
    mw(koaCtx({ authorization: 'Bearer ' + (await s.sign()) }), async () => {
      throw new Error('downstream');
    }),
    /downstream/
  );
});

test('koa: 401, 403 and 503 answers are problem+json and next is not called', async (t) => {
  const s = await setup(t);
  const logged = [];
  const mw = koa(s.bridge, { onError: (e) => logged.push(e) });
  const next = () => assert.fail('next must not run');
  const cases = [
    [{}, 401, 'invalid_token'],
    [{ authorization: 'Bearer ' + (await s.sign({ appid: OTHER_MP })) }, 401, 'invalid_token'],
    [{ authorization: 'Bearer ' + (await s.sign({ openid: 'o-unlinked' })) }, 403, 'not_linked'],
  ];
  for (const [headers, status, code] of cases) {
    const ctx = koaCtx(headers);
    await mw(ctx, next);
    assert.equal(ctx.status, status);
    assert.equal(ctx.type, 'application/problem+json');
    assert.equal(typeof ctx.body, 'string');
    const body = JSON.parse(ctx.body);
    assert.equal(body.code, code);
    assert.equal(body.status, status);
    assert.equal(ctx.state.wxbridge, undefined);
    if (status === 401) assert.match(ctx.responseHeaders['www-authenticate'], /^Bearer/);
  }
  s.fake.state.onTranslate = () => ({ status: 500, headers: {}, body: { code: 'internal', status: 500 } });
  const ctx = koaCtx({ authorization: 'Bearer ' + (await s.sign({ openid: 'o-other' })) });
  await mw(ctx, next);
  assert.equal(ctx.status, 503);
  assert.equal(JSON.parse(ctx.body).code, 'bridge_unavailable');
  assert.equal(logged.length, 1);
});

// ---- helpers for calling the Express middleware without a server ----

function fakeRes() {
  return {
    statusCode: 200,
    headers: {},
    body: undefined,
    setHeader(k, v) {
      this.headers[k.toLowerCase()] = v;
    },
    end(b) {
      this.body = b;
      if (this.onEnd) this.onEnd();
    },
  };
}

function runExpress(mw, req, res) {
  return new Promise((resolve, reject) => {
    res.onEnd = resolve;
    mw(req, res, (err) => (err ? reject(err) : reject(new Error('next() was called'))));
  });
}
