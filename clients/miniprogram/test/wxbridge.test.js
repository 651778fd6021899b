'use strict';
// Unit tests for wxbridge.js: a stubbed global `wx` backed by a fake bridge.
// Run: node --test clients/miniprogram/test/

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const { createClient } = require(path.join(__dirname, '..', 'wxbridge.js'));

const BASE = 'https://id.example.com';
const APPID = 'wxplatformmp000001';

/** A fake bridge speaking the v1 contract, and a `wx` stub whose request() talks to it. */
function makeEnv(opts = {}) {
  const clock = { t: 1_700_000_000_000 };
  const storage = new Map();
  const log = { login: 0, requests: [], navigateTo: [], getUserInfo: 0, getUserProfile: 0, consoleWarn: [] };
  const bridge = {
    pivotLinked: opts.pivotLinked !== undefined ? opts.pivotLinked : true,
    ttl: opts.ttl || 7200,
    valid: new Map(), // token -> expires at (ms)
    seq: 0,
    codesSeen: new Set(),
    refuseAll: false, // answer every Bearer call with 401 invalid_token
    unionid: null,
    // confirm code -> the pass: whose ticket it was, and whether linking it conflicts
    confirms: new Map([
      ['C-OK', { owner: 'o-mp-1' }],
      ['C-OTHER', { owner: 'o-mp-2' }],
      ['C-CONFLICT', { owner: 'o-mp-1', conflict: true }],
    ]),
    issue(extra) {
      const token = `tok-${++this.seq}`;
      this.valid.set(token, clock.t + this.ttl * 1000);
      return {
        token,
        token_type: 'Bearer',
        expires_in: this.ttl,
        person_id: 'p-1',
        openid: 'o-mp-1',
        unionid: this.unionid,
        new_person: this.seq === 1,
        pivot_linked: this.pivotLinked,
        linked: [{ appid: APPID, kind: 'mp', owner: 'platform' }],
        ...extra,
      };
    },
    revokeAll() {
      this.valid.clear();
    },
  };

  const problem = (status, code, title) => ({
    statusCode: status,
    data: { type: `https://wxbridge.dev/problems/${code}`, title, status, detail: `${title}.`, code },
    header: { 'Content-Type': 'application/problem+json' },
  });

  function handle(req) {
    const u = new URL(req.url);
    if (u.origin === 'https://api.shop.example.com') {
      return { statusCode: 200, data: { auth: req.header.Authorization }, header: {} };
    }
    if (u.origin !== BASE) return { statusCode: 599, data: 'wrong host', header: {} };
    const route = `${req.method} ${u.pathname}`;
    if (route === 'POST /v1/mp/login') {
      const { appid, code } = req.data || {};
      if (appid !== APPID) return problem(404, 'unknown_app', 'Unknown app');
      if (!code) return problem(400, 'invalid_request', 'Missing code');
      if (bridge.codesSeen.has(code)) return problem(400, 'wechat_code_used', 'Code already used');
      bridge.codesSeen.add(code);
      return { statusCode: 200, data: bridge.issue(), header: { 'Content-Type': 'application/json' } };
    }
    const auth = (req.header && req.header.Authorization) || '';
    const token = auth.replace(/^Bearer /, '');
    const exp = bridge.valid.get(token);
    if (bridge.refuseAll || !auth.startsWith('Bearer ') || exp === undefined || clock.t >= exp) {
      return problem(401, 'invalid_token', 'Invalid token');
    }
    switch (route) {
      case 'GET /v1/me':
        return { statusCode: 200, data: { person_id: 'p-1', linked: [] }, header: { 'X-Token': token } };
      case 'POST /v1/auth/tickets':
        return {
          statusCode: 201,
          data: { ticket: 'T1', url: `${BASE}/v1/auth/start?ticket=T1&x=a b`, expires_in: 300 },
          header: {},
        };
      case 'POST /v1/mp/userinfo': {
        const { encryptedData, iv } = req.data || {};
        if (encryptedData !== 'ENC' || iv !== 'IV') return problem(400, 'decrypt_failed', 'Decrypt failed');
        bridge.unionid = 'u-1';
        return { statusCode: 200, data: bridge.issue({ session_key: 'MUST-NOT-LEAK' }), header: {} };
      }
      case 'POST /v1/auth/confirm': {
        const pass = bridge.confirms.get((req.data || {}).code);
        if (!pass) return problem(400, 'confirm_invalid', 'Confirm code invalid');
        if (pass.owner !== 'o-mp-1') return problem(403, 'confirm_mismatch', 'Not your pass');
        if (pass.conflict) return problem(409, 'identity_conflict', 'Identity conflict');
        bridge.confirms.delete(req.data.code); // single use
        bridge.pivotLinked = true;
        const linked = [
          { appid: APPID, kind: 'mp', owner: 'platform' },
          { appid: 'wxpivotoa000001', kind: 'oa', owner: 'platform' },
        ];
        return { statusCode: 200, data: bridge.issue({ linked }), header: {} };
      }
      case 'GET /v1/conflict':
        return problem(409, 'identity_conflict', 'Identity conflict');
      case 'GET /v1/plain-401':
        return { statusCode: 401, data: { message: 'Unauthorized' }, header: {} };
      default:
        return problem(404, 'not_found', 'Not found');
    }
  }

  const later = (fn) => setTimeout(fn, 1);
  const wx = {
    login({ success, fail }) {
      log.login++;
      const n = log.login;
      later(() => (opts.loginFails ? fail({ errMsg: 'login:fail auth deny' }) : success({ code: `code-${n}`, errMsg: 'login:ok' })));
    },
    request(req) {
      // Record a deep copy so later mutations by the caller can't change what we saw.
      log.requests.push(JSON.parse(JSON.stringify({ url: req.url, method: req.method, data: req.data, header: req.header })));
      if (opts.networkDown) {
        later(() => req.fail({ errMsg: 'request:fail timeout' }));
      } else {
        const res = handle(req);
        later(() => req.success({ ...res, errMsg: 'request:ok' }));
      }
      return { abort() {} };
    },
    getStorageSync(key) {
      return storage.has(key) ? JSON.parse(storage.get(key)) : '';
    },
    setStorageSync(key, value) {
      storage.set(key, JSON.stringify(value));
    },
    removeStorageSync(key) {
      storage.delete(key);
    },
    navigateTo(o) {
      log.navigateTo.push(o);
      later(() => o.success({ errMsg: 'navigateTo:ok' }));
    },
    navigateBack(o) {
      (log.navigateBack ||= []).push(o);
      later(() => o.success({ errMsg: 'navigateBack:ok' }));
    },
    getUserInfo(o) {
      log.getUserInfo++;
      later(() => o.success({ userInfo: { nickName: 'x' }, rawData: '{}', signature: 's', encryptedData: 'ENC', iv: 'IV' }));
    },
  };
  if (opts.withProfile) {
    wx.getUserProfile = (o) => {
      log.getUserProfile++;
      log.profileDesc = o.desc;
      later(() => o.success({ userInfo: {}, encryptedData: 'ENC', iv: 'IV' }));
    };
  }
  globalThis.wx = wx;

  const client = (more = {}) =>
    createClient({
      base: BASE,
      appid: APPID,
      now: () => clock.t,
      onError: (e) => log.consoleWarn.push(e),
      ...more,
    });
  const bearerCalls = (p) => log.requests.filter((r) => new URL(r.url).pathname === p);
  return { wx, bridge, clock, storage, log, client, bearerCalls };
}

test('first call logs in, then sends the Bearer token', async () => {
  const env = makeEnv();
  const c = env.client();
  const res = await c.request({ url: '/v1/me' });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.data, { person_id: 'p-1', linked: [] });
  assert.equal(res.header['X-Token'], 'tok-1');
  assert.equal(env.log.login, 1);
  const [login, me] = env.log.requests;
  assert.equal(login.url, `${BASE}/v1/mp/login`);
  assert.equal(login.method, 'POST');
  assert.deepEqual(login.data, { appid: APPID, code: 'code-1' });
  assert.equal(login.header.Authorization, undefined);
  assert.equal(me.header.Authorization, 'Bearer tok-1');
  // Only the token and its expiry are stored.
  const [[key, raw]] = [...env.storage];
  assert.match(key, /wxbridge/);
  const stored = JSON.parse(raw);
  assert.deepEqual(Object.keys(stored).sort(), ['expires_at', 'refresh_at', 'token']);
  assert.equal(stored.token, 'tok-1');
  assert.equal(stored.expires_at, env.clock.t + 7200 * 1000);
});

test('the token is reused, also across clients sharing wx storage', async () => {
  const env = makeEnv();
  const c = env.client();
  await c.request({ url: '/v1/me' });
  await c.me();
  await c.request({ url: `${BASE}/v1/me`, method: 'get' });
  await env.client().me(); // e.g. the next app launch
  assert.equal(env.log.login, 1);
  const me = env.bearerCalls('/v1/me');
  assert.equal(me.length, 4);
  for (const r of me) assert.equal(r.header.Authorization, 'Bearer tok-1');
  assert.equal(me[2].method, 'GET');
});

test('an expired token triggers a new login before the call', async () => {
  const env = makeEnv({ ttl: 600 });
  const c = env.client();
  await c.me();
  env.clock.t += 500 * 1000; // still valid, outside the 60 s leeway
  await c.me();
  assert.equal(env.log.login, 1);
  env.clock.t += 50 * 1000; // within the leeway: refresh early
  await c.me();
  assert.equal(env.log.login, 2);
  env.clock.t += 601 * 1000; // past expiry
  await c.me();
  assert.equal(env.log.login, 3);
  // No call ever went out with an expired token: no 401 round trips.
  assert.deepEqual(
    env.bearerCalls('/v1/me').map((r) => r.header.Authorization),
    ['Bearer tok-1', 'Bearer tok-1', 'Bearer tok-2', 'Bearer tok-3'],
  );
});

test('a 401 invalid_token triggers one re-login and one retry', async () => {
  const env = makeEnv();
  const c = env.client();
  await c.me();
  env.bridge.revokeAll(); // e.g. signing key rotated, token revoked
  const res = await c.request({ url: '/v1/me', header: { 'X-Trace': 'abc' } });
  assert.equal(res.statusCode, 200);
  assert.equal(env.log.login, 2);
  const me = env.bearerCalls('/v1/me');
  assert.deepEqual(me.map((r) => r.header.Authorization), ['Bearer tok-1', 'Bearer tok-1', 'Bearer tok-2']);
  assert.equal(me[2].header['X-Trace'], 'abc');
});

test('a 401 is retried only once, then the error surfaces', async () => {
  const env = makeEnv();
  const c = env.client();
  env.bridge.refuseAll = true;
  await assert.rejects(c.request({ url: '/v1/me' }), (err) => {
    assert.ok(err instanceof Error);
    assert.equal(err.code, 'invalid_token');
    assert.equal(err.status, 401);
    return true;
  });
  assert.equal(env.log.login, 2); // the first login, and the one re-login
  assert.equal(env.bearerCalls('/v1/me').length, 2); // the call, and the one retry
});

test('a 401 without a problem code (API Gateway JWT authorizer) also refreshes once', async () => {
  const env = makeEnv();
  const c = env.client();
  await assert.rejects(c.request({ url: '/v1/plain-401' }), { code: 'http_401', status: 401 });
  assert.equal(env.log.login, 2);
  assert.equal(env.bearerCalls('/v1/plain-401').length, 2);
});

test('10 concurrent requests share one wx.login', async () => {
  const env = makeEnv();
  const c = env.client();
  const all = await Promise.all(Array.from({ length: 10 }, () => c.request({ url: '/v1/me' })));
  assert.equal(all.length, 10);
  for (const r of all) assert.equal(r.statusCode, 200);
  assert.equal(env.log.login, 1);
  assert.equal(env.bearerCalls('/v1/mp/login').length, 1);
  const me = env.bearerCalls('/v1/me');
  assert.equal(me.length, 10);
  for (const r of me) assert.equal(r.header.Authorization, 'Bearer tok-1');
});

test('10 concurrent requests refused with 401 share one re-login', async () => {
  const env = makeEnv();
  const c = env.client();
  await c.me();
  env.bridge.revokeAll();
  const all = await Promise.all(Array.from({ length: 10 }, () => c.me()));
  assert.equal(all.length, 10);
  assert.equal(env.log.login, 2);
  const me = env.bearerCalls('/v1/me').slice(1);
  assert.equal(me.length, 20);
  assert.equal(me.filter((r) => r.header.Authorization === 'Bearer tok-2').length, 10);
});

test('login() forces a login and returns the answer', async () => {
  const env = makeEnv();
  const c = env.client();
  await c.me();
  const ans = await c.login();
  assert.equal(env.log.login, 2);
  assert.equal(ans.token, 'tok-2');
  assert.equal(ans.person_id, 'p-1');
  assert.equal(ans.pivot_linked, true);
  assert.equal(env.log.navigateTo.length, 0);
  await c.me();
  assert.equal(env.bearerCalls('/v1/me').at(-1).header.Authorization, 'Bearer tok-2');
});

test('pivot_linked false → a ticket and navigateTo the web-view with the encoded URL, once', async () => {
  const env = makeEnv({ pivotLinked: false });
  const c = env.client({ link: { return_url: 'https://shop.example.com/wxbridge/return.html' } });
  const ans = await c.login();
  assert.equal(ans.pivot_linked, false);
  const tickets = env.bearerCalls('/v1/auth/tickets');
  assert.equal(tickets.length, 1);
  assert.equal(tickets[0].method, 'POST');
  assert.equal(tickets[0].header.Authorization, 'Bearer tok-1');
  assert.deepEqual(tickets[0].data, { return_url: 'https://shop.example.com/wxbridge/return.html' });
  assert.equal(env.log.navigateTo.length, 1);
  const ticketUrl = `${BASE}/v1/auth/start?ticket=T1&x=a b`;
  assert.equal(env.log.navigateTo[0].url, `/pages/wxbridge/webview?src=${encodeURIComponent(ticketUrl)}`);
  assert.equal(env.log.navigateTo[0].url.split('?').length, 2); // the inner ? and & are encoded
  // Later logins do not open it again.
  await c.login();
  assert.equal(env.log.navigateTo.length, 1);
  // ...unless asked to.
  const opened = await c.openLink();
  assert.equal(opened.ticket, 'T1');
  assert.equal(env.log.navigateTo.length, 2);
});

test('the implicit login of request() opens the web-view too, once for concurrent calls', async () => {
  const env = makeEnv({ pivotLinked: false });
  const c = env.client({ webviewPage: '/sub/auth/webview' });
  await Promise.all(Array.from({ length: 5 }, () => c.me()));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(env.log.navigateTo.length, 1);
  assert.ok(env.log.navigateTo[0].url.startsWith('/sub/auth/webview?src=https%3A%2F%2Fid.example.com%2Fv1%2Fauth%2Fstart'));
});

test('autoLink: false never opens the web-view', async () => {
  const env = makeEnv({ pivotLinked: false });
  const c = env.client({ autoLink: false });
  await c.login();
  await c.me();
  assert.equal(env.bearerCalls('/v1/auth/tickets').length, 0);
  assert.equal(env.log.navigateTo.length, 0);
});

test('onLinkDone hears the web-view result through the event channel', async () => {
  const env = makeEnv({ pivotLinked: false });
  const seen = [];
  const c = env.client({ onLinkDone: (r) => seen.push(r) });
  await c.login();
  const nav = env.log.navigateTo[0];
  assert.equal(typeof nav.events['wxbridge:done'], 'function');
  nav.events['wxbridge:done']({ result: 'linked', messages: [] });
  assert.deepEqual(seen, [{ result: 'linked', messages: [] }]);
});

test('linkUnionid posts encryptedData/iv and stores the new token', async () => {
  const env = makeEnv();
  const c = env.client();
  await c.me();
  assert.equal(env.log.getUserInfo, 0); // only when asked
  const ans = await c.linkUnionid();
  assert.equal(env.log.getUserInfo, 1);
  const [post] = env.bearerCalls('/v1/mp/userinfo');
  assert.equal(post.method, 'POST');
  assert.equal(post.header.Authorization, 'Bearer tok-1');
  assert.deepEqual(post.data, { encryptedData: 'ENC', iv: 'IV' });
  assert.equal(ans.unionid, 'u-1');
  assert.equal(ans.token, 'tok-2');
  assert.equal('session_key' in ans, false);
  for (const raw of env.storage.values()) assert.doesNotMatch(raw, /MUST-NOT-LEAK|session_key/);
  await c.me();
  assert.equal(env.bearerCalls('/v1/me').at(-1).header.Authorization, 'Bearer tok-2');
  assert.equal(env.log.login, 1);
});

test('linkUnionid prefers wx.getUserProfile when present', async () => {
  const env = makeEnv({ withProfile: true });
  const c = env.client();
  await c.login();
  const ans = await c.linkUnionid({ desc: 'Link accounts' });
  assert.equal(env.log.getUserProfile, 1);
  assert.equal(env.log.getUserInfo, 0);
  assert.equal(env.log.profileDesc, 'Link accounts');
  assert.equal(ans.unionid, 'u-1');
});

test('errors carry the problem code, status and problem body', async () => {
  const env = makeEnv();
  const c = env.client();
  await assert.rejects(c.request({ url: '/v1/conflict' }), (err) => {
    assert.ok(err instanceof Error);
    assert.equal(err.code, 'identity_conflict');
    assert.equal(err.status, 409);
    assert.equal(err.problem.title, 'Identity conflict');
    assert.match(err.message, /identity_conflict/);
    return true;
  });
  assert.equal(env.bearerCalls('/v1/conflict').length, 1); // not a token problem: no retry
  assert.equal(env.log.login, 1);
});

test('a refused login rejects with the bridge code; a failed wx.login with wx_login_failed', async () => {
  const env = makeEnv();
  const c = env.client({ appid: 'wxunknown' });
  await assert.rejects(c.me(), { code: 'unknown_app', status: 404 });
  await assert.rejects(c.login(), { code: 'unknown_app' });

  const env2 = makeEnv({ loginFails: true });
  await assert.rejects(env2.client().me(), { code: 'wx_login_failed', errMsg: 'login:fail auth deny' });
  assert.equal(env2.log.requests.length, 0);
});

test('network failures reject with network_error; a failed login is not cached', async () => {
  const env = makeEnv({ networkDown: true });
  const c = env.client();
  await assert.rejects(c.me(), { code: 'network_error', errMsg: 'request:fail timeout' });
  await assert.rejects(c.me(), { code: 'network_error' });
  assert.equal(env.log.login, 2);
});

test('the token is never sent to another origin', async () => {
  const env = makeEnv();
  const c = env.client();
  await assert.rejects(c.request({ url: 'https://evil.example.net/v1/me' }), { code: 'untrusted_origin' });
  await assert.rejects(c.request({ url: 'https://id.example.com.evil.net/v1/me' }), { code: 'untrusted_origin' });
  assert.equal(env.log.requests.length, 0);
  assert.equal(env.log.login, 0);
});

test('trustedOrigins may receive the token (merchant API behind a JWT authorizer)', async () => {
  const env = makeEnv();
  const c = env.client({ trustedOrigins: ['https://api.shop.example.com/'] });
  const res = await c.request({ url: 'https://api.shop.example.com/orders' });
  assert.deepEqual(res.data, { auth: 'Bearer tok-1' });
});

test('createClient needs base and appid', () => {
  makeEnv();
  assert.throws(() => createClient({ appid: APPID }), { code: 'invalid_options' });
  assert.throws(() => createClient({ base: BASE }), { code: 'invalid_options' });
});

// ---- confirmation by the ticket's owner (v1.1) ----

/** Loads a kit page (pages/wxbridge/<name>.js) with stubbed Page() and getApp(); returns an instance. */
function loadKitPage(name, app, extra = {}) {
  let def = null;
  globalThis.Page = (d) => {
    def = d;
  };
  globalThis.getApp = () => app;
  const file = path.join(__dirname, '..', 'pages', 'wxbridge', `${name}.js`);
  delete require.cache[require.resolve(file)];
  require(file);
  delete globalThis.Page;
  const emitted = [];
  const page = Object.assign(Object.create(def), {
    data: { ...def.data },
    setData(patch) {
      Object.assign(this.data, patch);
    },
    ...extra,
  });
  return { page, emitted };
}

const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));
const storedToken = (env) => JSON.parse([...env.storage.values()][0]).token;

test('confirm posts the code with the Bearer token and stores the new token as login does', async () => {
  const env = makeEnv({ pivotLinked: false });
  const c = env.client({ autoLink: false });
  await c.login();
  const ans = await c.confirm('C-OK');
  const [post] = env.bearerCalls('/v1/auth/confirm');
  assert.equal(post.method, 'POST');
  assert.equal(post.header.Authorization, 'Bearer tok-1');
  assert.deepEqual(post.data, { code: 'C-OK' });
  assert.equal(ans.token, 'tok-2');
  assert.equal(ans.pivot_linked, true);
  assert.equal(ans.linked.length, 2);
  const stored = JSON.parse([...env.storage.values()][0]);
  assert.deepEqual(Object.keys(stored).sort(), ['expires_at', 'refresh_at', 'token']);
  assert.equal(stored.token, 'tok-2');
  assert.equal(stored.expires_at, env.clock.t + 7200 * 1000);
  await c.me();
  assert.equal(env.bearerCalls('/v1/me').at(-1).header.Authorization, 'Bearer tok-2');
  assert.equal(env.log.login, 1);
});

test('finishLink reports linked through onLinkDone', async () => {
  const env = makeEnv();
  const seen = [];
  const c = env.client({ onLinkDone: (r) => seen.push(r) });
  const out = await c.finishLink('C-OK');
  assert.equal(out.result, 'linked');
  assert.equal(out.answer.token, 'tok-2');
  assert.deepEqual(seen, [{ result: 'linked', messages: [] }]);
  assert.equal(storedToken(env), 'tok-2');
});

test('confirm_mismatch (403), confirm_invalid (400) and identity_conflict are refused, never retried', async () => {
  for (const [code, problemCode, status] of [
    ['C-OTHER', 'confirm_mismatch', 403],
    ['C-UNKNOWN', 'confirm_invalid', 400],
    ['C-CONFLICT', 'identity_conflict', 409],
  ]) {
    const env = makeEnv();
    const seen = [];
    const c = env.client({ onLinkDone: (r) => seen.push(r) });
    await c.me();
    await assert.rejects(c.confirm(code), (err) => {
      assert.equal(err.code, problemCode);
      assert.equal(err.status, status);
      assert.doesNotMatch(`${err.message} ${JSON.stringify(err)}`, new RegExp(code)); // the code stays out
      return true;
    });
    assert.equal(env.bearerCalls('/v1/auth/confirm').length, 1, code);
    const out = await c.finishLink(code);
    assert.equal(out.result, 'refused', code);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].result, 'refused');
    assert.equal(seen[0].error.code, problemCode);
    assert.equal(env.bearerCalls('/v1/auth/confirm').length, 2, code); // one per call, no retry
    assert.equal(env.log.login, 1); // no re-login either
    assert.equal(storedToken(env), 'tok-1'); // the token is untouched
  }
});

test('a used code is final: the second confirm is refused with confirm_invalid', async () => {
  const env = makeEnv();
  const c = env.client();
  await c.confirm('C-OK');
  await assert.rejects(c.confirm('C-OK'), { code: 'confirm_invalid', status: 400 });
  assert.equal(env.bearerCalls('/v1/auth/confirm').length, 2);
  // No code at all: refused without a request.
  await assert.rejects(c.confirm(''), { code: 'confirm_invalid' });
  assert.equal((await c.finishLink(undefined)).result, 'refused');
  assert.equal(env.bearerCalls('/v1/auth/confirm').length, 2);
});

test('confirm without a token logs in first; with a login in flight it waits for it (single flight)', async () => {
  const env = makeEnv();
  const c = env.client();
  const [ans] = await Promise.all([c.confirm('C-OK'), c.me(), c.me()]);
  assert.equal(env.log.login, 1);
  assert.equal(ans.token, 'tok-2');
  const [post] = env.bearerCalls('/v1/auth/confirm');
  assert.equal(post.header.Authorization, 'Bearer tok-1');
  const paths = env.log.requests.map((r) => new URL(r.url).pathname);
  assert.ok(paths.indexOf('/v1/mp/login') < paths.indexOf('/v1/auth/confirm'));

  // A login() in flight: confirm waits for it and uses its token.
  const env2 = makeEnv();
  const c2 = env2.client();
  const login = c2.login();
  const confirm = c2.confirm('C-OK');
  assert.equal((await login).token, 'tok-1');
  assert.equal((await confirm).token, 'tok-2');
  assert.equal(env2.log.login, 1);
  assert.equal(env2.bearerCalls('/v1/auth/confirm')[0].header.Authorization, 'Bearer tok-1');
});

test('calls made during a confirm share its flight and its new token', async () => {
  const env = makeEnv();
  const c = env.client();
  await c.me();
  const confirm = c.confirm('C-OK');
  const again = c.confirm('C-OK'); // the same code: one request
  const login = c.login(); // shares the confirm's answer instead of a second token flight
  const me = c.me();
  const [a, b, l] = await Promise.all([confirm, again, login, me]);
  assert.equal(a.token, 'tok-2');
  assert.equal(b.token, 'tok-2');
  assert.equal(l.token, 'tok-2');
  assert.equal(env.log.login, 1);
  assert.equal(env.bearerCalls('/v1/auth/confirm').length, 1);
  assert.equal(env.bearerCalls('/v1/me').at(-1).header.Authorization, 'Bearer tok-2');

  // A failed confirm does not fail the calls that waited for it.
  const pending = c.confirm('C-OTHER');
  const meAfter = c.me();
  await assert.rejects(pending, { code: 'confirm_mismatch' });
  assert.equal((await meAfter).person_id, 'p-1');
  assert.equal(env.bearerCalls('/v1/me').at(-1).header.Authorization, 'Bearer tok-2');
});

test('confirm: a 401 invalid_token triggers one re-login and one retry', async () => {
  const env = makeEnv();
  const c = env.client();
  await c.me();
  env.bridge.revokeAll();
  const ans = await c.confirm('C-OK');
  assert.equal(ans.token, 'tok-3');
  assert.equal(env.log.login, 2);
  assert.deepEqual(
    env.bearerCalls('/v1/auth/confirm').map((r) => [r.header.Authorization, r.data.code]),
    [
      ['Bearer tok-1', 'C-OK'],
      ['Bearer tok-2', 'C-OK'],
    ],
  );
  assert.equal(storedToken(env), 'tok-3');

  // Only once: a second 401 surfaces.
  const env2 = makeEnv();
  const seen = [];
  const c2 = env2.client({ onLinkDone: (r) => seen.push(r) });
  env2.bridge.refuseAll = true;
  const out = await c2.finishLink('C-OK');
  assert.equal(out.result, null);
  assert.equal(out.error.code, 'invalid_token');
  assert.equal(env2.log.login, 2);
  assert.equal(env2.bearerCalls('/v1/auth/confirm').length, 2);
  assert.equal(seen[0].result, null);
});

test('the confirm code is never stored or logged', async () => {
  const env = makeEnv();
  const c = env.client();
  const warned = [];
  const orig = { log: console.log, warn: console.warn, error: console.error, info: console.info };
  for (const k of Object.keys(orig)) console[k] = (...a) => warned.push(a.join(' '));
  try {
    await c.confirm('C-OK');
    await c.finishLink('C-OTHER');
  } finally {
    Object.assign(console, orig);
  }
  for (const raw of env.storage.values()) assert.doesNotMatch(raw, /C-OK|C-OTHER/);
  assert.deepEqual(warned, []);
  assert.deepEqual(env.log.consoleWarn, []);
});

test('web-view pass end to end: the confirm page confirms, goes back, and onLinkDone hears linked once', async () => {
  const env = makeEnv({ pivotLinked: false });
  const seen = [];
  const c = env.client({ onLinkDone: (r) => seen.push(r) });
  await c.login(); // pivot_linked:false → ticket → web-view
  const nav = env.log.navigateTo[0];
  const events = [];
  const channel = {
    emit: (name, payload) => {
      events.push(name);
      nav.events[name](payload);
    },
  };
  const webview = loadKitPage('webview', null, { getOpenerEventChannel: () => channel }).page;
  webview.onLoad({ src: nav.url.split('?src=')[1] });

  // The return page replaced the web-view with the confirm page (redirectTo): the web-view page
  // unloads (its messages say 'pending'), the confirm page loads with the code.
  const confirmPage = loadKitPage('confirm', { bridge: c }, { leaveDelayMs: 0 }).page;
  globalThis.getCurrentPages = () => [{ route: 'pages/index/index' }, confirmPage];
  try {
    webview.onUnload();
    confirmPage.onLoad({ confirm: 'C-OK' });
    webview.onMessage({ detail: { data: [{ wxbridge: 'result', result: 'pending' }] } });
    const out = await confirmPage.finished;
    await tick(150);
    assert.equal(out.result, 'linked');
  } finally {
    delete globalThis.getCurrentPages;
    delete globalThis.getApp;
  }
  assert.deepEqual(events, []); // the web-view page reported nothing: the confirm page did
  assert.deepEqual(seen, [{ result: 'linked', messages: [] }]);
  assert.equal(confirmPage.data.status, 'linked');
  assert.equal(JSON.stringify(confirmPage.data).includes('C-OK'), false);
  assert.equal(env.log.navigateBack.length, 1);
  assert.equal(storedToken(env), 'tok-2');
  assert.equal(env.bearerCalls('/v1/auth/confirm')[0].header.Authorization, 'Bearer tok-1');
});

test('fallback: a web-view page that hands the code over its event channel gets it confirmed', async () => {
  const env = makeEnv({ pivotLinked: false });
  const seen = [];
  const c = env.client({ onLinkDone: (r) => seen.push(r) });
  await c.login();
  const nav = env.log.navigateTo[0];
  nav.events['wxbridge:confirm']({ confirm: 'C-OK' });
  nav.events['wxbridge:done']({ result: null, messages: [] }); // a late empty report is ignored
  await tick();
  assert.deepEqual(seen, [{ result: 'linked', messages: [] }]);
  assert.equal(storedToken(env), 'tok-2');
});
