'use strict';
// Integration with a running devstack: WXBRIDGE_DEVSTACK_URL=http://127.0.0.1:8080 node --test clients/node/test/
// Skipped when WXBRIDGE_DEVSTACK_URL is not set. Plays a simulated user through the simulator's
// control surface, as tests/src/lib.rs and tests/tests/pivot.rs do: mini-program logins in the
// platform's and merchant m1's mini programs, then the web-view pass through the pivot official
// account, confirmed by each ticket's owner, which joins the two.

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const path = require('node:path');

const { createBridge, middleware } = require(path.join(__dirname, '..', 'index.js'));

const DEVSTACK = (process.env.WXBRIDGE_DEVSTACK_URL || '').replace(/\/+$/, '');
const TIMEOUT = 120 * 1000;

async function call(method, url, body, token) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = 'Bearer ' + token;
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: json, text };
}

function expectOk(a, what, status = 200) {
  assert.equal(a.status, status, what + ': ' + a.text);
  return a.body;
}

/** wx.login in the simulator, then POST /v1/mp/login: the login answer. */
async function login(user, appid) {
  const sim = expectOk(await call('POST', `${DEVSTACK}/sim/users/${user}/login`, { appid }), 'sim login');
  assert.ok(sim.code, 'sim login gave no code');
  return expectOk(await call('POST', `${DEVSTACK}/v1/mp/login`, { appid, code: sim.code }), 'mp login');
}

async function truth(user, appid) {
  return expectOk(await call('GET', `${DEVSTACK}/sim/users/${user}/identity?appid=${encodeURIComponent(appid)}`), 'sim identity');
}

/**
 * Follows redirects like a mini program's web-view, as `user` (X-WxSim-User), keeping cookies
 * (the bridge binds each authorization to its browser), until a page or a redirect that leaves
 * the bridge. Like Env::webview in tests/src/lib.rs.
 */
async function webview(user, start, inside) {
  const jar = new Map();
  const hops = [];
  let url = start.split('#')[0];
  for (let i = 0; i < 16; i++) {
    hops.push(url);
    const headers = { 'x-wxsim-user': user };
    if (jar.size) headers.cookie = Array.from(jar, ([k, v]) => k + '=' + v).join('; ');
    const res = await fetch(url, { redirect: 'manual', headers });
    for (const c of res.headers.getSetCookie()) {
      const pair = c.split(';')[0];
      const eq = pair.indexOf('=');
      if (eq > 0) jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.arrayBuffer();
      const next = new URL(location, url).href.split('#')[0];
      if (!inside.has(new URL(next).origin)) return { hops, status: res.status, leftTo: next, text: '' };
      url = next;
      continue;
    }
    return { hops, status: res.status, leftTo: null, text: await res.text() };
  }
  throw new Error('web-view redirect loop: ' + hops.join(' -> '));
}

/** The confirm code a pass ended with: `confirm=` on the redirect, or the page's meta. */
function confirmCode(walk) {
  if (walk.leftTo) {
    const c = new URL(walk.leftTo).searchParams.get('confirm');
    if (c) return c;
  }
  const m = /<meta name="wxbridge-confirm" content="([^"]+)"/.exec(walk.text);
  return m ? m[1] : null;
}

/** Ticket → web-view pass → confirm by the ticket's owner: the whole link (Env::link_via_webview). */
async function linkViaWebview(user, token, inside) {
  const ticket = expectOk(await call('POST', `${DEVSTACK}/v1/auth/tickets`, {}, token), 'ticket', 201);
  const walk = await webview(user, ticket.url, inside);
  assert.ok(walk.hops.some((h) => h.includes('/connect/oauth2/authorize')), walk.hops.join(' -> '));
  const code = confirmCode(walk);
  assert.ok(code, 'the pass ended without a confirm code: ' + walk.status + ' ' + walk.text.slice(0, 300));
  const confirmed = expectOk(await call('POST', `${DEVSTACK}/v1/auth/confirm`, { code }, token), 'confirm');
  assert.equal(confirmed.pivot_linked, true);
  return confirmed;
}

/** Runs the Express middleware on a bare request; resolves { status, body, wxbridge }. */
function runMiddleware(mw, token) {
  return new Promise((resolve, reject) => {
    const req = { headers: { authorization: 'Bearer ' + token } };
    const res = {
      statusCode: 200,
      headers: {},
      setHeader(k, v) {
        this.headers[k.toLowerCase()] = v;
      },
      end(b) {
        resolve({ status: this.statusCode, headers: this.headers, body: JSON.parse(b) });
      },
    };
    mw(req, res, (err) => (err ? reject(err) : resolve({ status: 200, wxbridge: req.wxbridge })));
  });
}

async function devstackContext() {
  const reg = expectOk(await call('GET', `${DEVSTACK}/sim/apps`), 'sim apps');
  const apps = Array.isArray(reg.apps) ? reg.apps : [];
  const platform = apps.find((a) => a.role === 'platform_mp' && a.owner === 'platform') || apps.find((a) => a.role === 'platform_mp');
  const m1 = apps.find((a) => a.role === 'merchant_mp' && a.owner === 'm1');
  assert.ok(platform && m1, 'the devstack registry has a platform_mp and m1 merchant_mp');
  // The issuer is PUBLIC_BASE, which may spell the origin otherwise than WXBRIDGE_DEVSTACK_URL.
  const oidc = await call('GET', `${DEVSTACK}/.well-known/openid-configuration`);
  const issuer = (oidc.status === 200 && oidc.body && oidc.body.issuer) || DEVSTACK;
  const inside = new Set([new URL(DEVSTACK).origin, new URL(issuer).origin]);
  return { reg, platform, m1, issuer, inside, user: 'node' + crypto.randomBytes(6).toString('hex') };
}

test('devstack: verify() accepts a real bridge token and refuses a tampered one', { timeout: TIMEOUT }, async (t) => {
  if (!DEVSTACK) return t.skip('WXBRIDGE_DEVSTACK_URL is not set');
  const c = await devstackContext();
  const p = await login(c.user, c.platform.appid);
  const bridge = createBridge({
    base: DEVSTACK,
    issuer: c.issuer,
    merchantKey: 'unused-for-verify',
    translateTo: c.m1.appid,
    appids: [c.platform.appid],
  });
  const claims = await bridge.verify(p.token);
  assert.equal(claims.appid, c.platform.appid);
  assert.equal(claims.openid, (await truth(c.user, c.platform.appid)).openid);
  assert.equal(claims.aud, 'wxbridge');
  assert.equal(claims.iss, c.issuer);
  const [h, body, sig] = p.token.split('.');
  const bad = [h, body, sig.slice(0, 8) + (sig[8] === 'A' ? 'B' : 'A') + sig.slice(9)].join('.');
  await assert.rejects(bridge.verify(bad), { code: 'invalid_token' });
  // A token of merchant m1's mini program is not one this service accepts: it is meant for
  // m1 (aud wxbridge:m1), and of another app.
  const m = await login(c.user, c.m1.appid);
  assert.equal(JSON.parse(Buffer.from(m.token.split('.')[1], 'base64url')).aud, 'wxbridge:m1');
  await assert.rejects(bridge.verify(m.token), { code: 'invalid_token' });
});

test('devstack: the middleware with merchant m1\'s key: 403 not_linked, then the m1 openid once linked', { timeout: TIMEOUT }, async (t) => {
  if (!DEVSTACK) return t.skip('WXBRIDGE_DEVSTACK_URL is not set');
  const c = await devstackContext();
  const keys = c.reg.merchant_keys;
  if (!keys || typeof keys !== 'object' || !keys.m1) {
    return t.skip('GET /sim/apps has no merchant_keys.m1 (merchant credentials, tenants v1.1): nothing to test with');
  }
  const p = await login(c.user, c.platform.appid);
  const m = await login(c.user, c.m1.appid);
  const clock = { offset: 0 };
  const bridge = createBridge({
    base: DEVSTACK,
    issuer: c.issuer,
    merchantKey: keys.m1,
    translateTo: c.m1.appid,
    appids: [c.platform.appid],
    now: () => Date.now() + clock.offset,
  });
  const logged = [];
  const mw = middleware(bridge, { onError: (err) => logged.push(err) });

  // Two open platforms, two unionids: the person is two people until the pivot joins them.
  const before = await runMiddleware(mw, p.token);
  assert.equal(before.status, 403, JSON.stringify(before.body));
  assert.equal(before.body.code, 'not_linked');
  // The merchant's own mini-program token is not the platform's: refused.
  const foreign = await runMiddleware(mw, m.token);
  assert.equal(foreign.status, 401);
  assert.equal(foreign.body.code, 'invalid_token');

  // Both mini programs make their web-view pass through the pivot OA, each confirmed by its owner.
  await linkViaWebview(c.user, m.token, c.inside);
  await linkViaWebview(c.user, p.token, c.inside);

  // The not_linked answer is kept 5 s: step past it.
  clock.offset += 6000;
  const after = await runMiddleware(mw, p.token);
  assert.equal(after.status, 200, JSON.stringify(after.body));
  const m1Truth = await truth(c.user, c.m1.appid);
  const platformTruth = await truth(c.user, c.platform.appid);
  assert.equal(after.wxbridge.openid, m1Truth.openid, "the merchant sees its own mini program's openid");
  assert.equal(after.wxbridge.platform.appid, c.platform.appid);
  assert.equal(after.wxbridge.platform.openid, platformTruth.openid);
  // person_id is pairwise per owner: what m1's own login answers for the same person.
  const again = await login(c.user, c.m1.appid);
  assert.equal(after.wxbridge.person_id, again.person_id);
  assert.deepEqual(logged, []);
});
