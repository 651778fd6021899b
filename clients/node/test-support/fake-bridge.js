'use strict';
// A tiny fake bridge for the tests: node:http on 127.0.0.1:0 serving a JWKS (RS256 keys made
// with jose) and GET /v1/translate behind a merchant key. Not part of the package.
// (It lives outside test/ so that `node --test clients/node/test/` does not run it as a test.)

const http = require('node:http');

const PLATFORM_MP = 'wx1a2b3c4d5e6f7001';
const MERCHANT_MP = 'wx2b3c4d5e6f708101';
const OTHER_MP = 'wx3c4d5e6f7a809201';
const MERCHANT_KEY = 'mk_test_5f0c1d2e3a4b5c6d7e8f9a0b1c2d3e4f';

function problem(status, code, detail) {
  return {
    status,
    headers: { 'content-type': 'application/problem+json', 'cache-control': 'no-store' },
    body: { type: 'urn:wxbridge:problem:' + code, title: http.STATUS_CODES[status], status, detail, code },
  };
}

// RSA key generation is slow: one key pair per kid for the whole test process.
const keyPool = new Map();
function keyPair(jose, kid) {
  if (!keyPool.has(kid)) keyPool.set(kid, jose.generateKeyPair('RS256', { extractable: true }));
  return keyPool.get(kid);
}

async function startFakeBridge(options = {}) {
  const jose = await import('jose');
  const merchantKey = options.merchantKey || MERCHANT_KEY;
  const state = {
    keys: [], // public JWKs served
    signers: new Map(), // kid -> private key
    links: new Map(), // "from|openid|to" -> { answer, headers }
    calls: { jwks: 0, translate: 0 },
    requests: [], // every request: { method, url, headers }
    onTranslate: null, // (url, req) => answer | undefined (then the default applies)
    onJwks: null, // (req) => answer | undefined
  };

  async function addKey(kid) {
    const { publicKey, privateKey } = await keyPair(jose, kid);
    const jwk = await jose.exportJWK(publicKey);
    state.keys.push(Object.assign(jwk, { kid, alg: 'RS256', use: 'sig' }));
    state.signers.set(kid, privateKey);
    return privateKey;
  }
  await addKey('k1');

  function send(res, a) {
    res.statusCode = a.status;
    for (const [k, v] of Object.entries(a.headers || {})) res.setHeader(k, v);
    res.end(typeof a.body === 'string' ? a.body : JSON.stringify(a.body));
  }

  function translate(req, url) {
    state.calls.translate += 1;
    if (state.onTranslate) {
      const a = state.onTranslate(url, req);
      if (a) return a;
    }
    if (req.headers.authorization !== 'Bearer ' + merchantKey) {
      return problem(401, 'invalid_token', 'Missing or wrong service credential.');
    }
    const q = url.searchParams;
    if (!q.get('from_appid') || !q.get('openid') || !q.get('to_appid')) {
      return problem(400, 'invalid_request', 'Missing query parameter.');
    }
    const link = state.links.get([q.get('from_appid'), q.get('openid'), q.get('to_appid')].join('|'));
    if (!link) return problem(404, 'not_linked', 'No identity in the target app.');
    return {
      status: 200,
      headers: Object.assign({ 'content-type': 'application/json' }, link.headers),
      body: link.answer,
    };
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    state.requests.push({ method: req.method, url: req.url, headers: Object.assign({}, req.headers) });
    if (req.method === 'GET' && url.pathname === '/.well-known/jwks.json') {
      state.calls.jwks += 1;
      const a = (state.onJwks && state.onJwks(req)) || {
        status: 200,
        headers: { 'content-type': 'application/json', 'cache-control': 'public, max-age=300' },
        body: { keys: state.keys },
      };
      return send(res, a);
    }
    if (req.method === 'GET' && url.pathname === '/v1/translate') return send(res, translate(req, url));
    return send(res, problem(404, 'not_found', 'No such route.'));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = 'http://127.0.0.1:' + server.address().port;

  return {
    base,
    state,
    jose,
    merchantKey,
    addKey,
    /** Links (from, openid) to `to` with the answer { openid, person_id }; headers of the 200. */
    link(from, openid, to, answer, headers) {
      state.links.set([from, openid, to].join('|'), { answer, headers: headers || {} });
    },
    unlink(from, openid, to) {
      state.links.delete([from, openid, to].join('|'));
    },
    /**
     * A bridge token of the platform mini program by default. `claims` override (undefined drops a
     * claim); opts: { nowMs, kid, key (another private key), alg }.
     */
    async sign(claims = {}, opts = {}) {
      const nowS = Math.floor((opts.nowMs === undefined ? Date.now() : opts.nowMs) / 1000);
      const c = Object.assign(
        { iss: base, aud: 'wxbridge', sub: 'person-1', appid: PLATFORM_MP, openid: 'o-platform-1', iat: nowS, exp: nowS + 7200 },
        claims
      );
      for (const k of Object.keys(c)) if (c[k] === undefined) delete c[k];
      const kid = opts.kid || 'k1';
      const key = opts.key || state.signers.get(kid);
      return new jose.SignJWT(c).setProtectedHeader({ alg: opts.alg || 'RS256', kid }).sign(key);
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

module.exports = { startFakeBridge, problem, PLATFORM_MP, MERCHANT_MP, OTHER_MP, MERCHANT_KEY };
