'use strict';
/**
 * The node layer in front of a merchant's API: `Authorization: Bearer <bridge token>` in, the
 * person as the merchant's own app knows them out (`req.wxbridge`, Koa: `ctx.state.wxbridge`).
 *
 * Answers it gives itself are application/problem+json, as the bridge's own:
 *   401 invalid_token       missing, malformed, expired or foreign token
 *   403 not_linked          the person has no identity in the merchant's app (never opened it)
 *   503 bridge_unavailable  the bridge (JWKS or translation) cannot answer now
 *   500 internal_error      the bridge refused this service (wrong key, translateTo not the
 *                           merchant's app, …): a configuration fault, reported to `onError`
 * Neither the token nor the merchant key is ever logged or echoed.
 */

const { isUnavailable } = require('./bridge.js');

const PROBLEMS = {
  invalid_token: {
    status: 401,
    title: 'Unauthorized',
    detail: 'A valid wxbridge token is required (Authorization: Bearer <token>).',
  },
  token_expired: {
    status: 401,
    code: 'invalid_token',
    title: 'Unauthorized',
    detail: 'The wxbridge token has expired.',
  },
  not_linked: {
    status: 403,
    title: 'Forbidden',
    detail: "This WeChat user has no identity in this merchant's app yet (they have not opened it).",
  },
  bridge_unavailable: {
    status: 503,
    title: 'Service Unavailable',
    detail: 'The identity bridge cannot be reached; try again later.',
  },
  internal_error: {
    status: 500,
    title: 'Internal Server Error',
    detail: "The identity bridge refused this service's request.",
  },
};

function defaultOnError(err, info) {
  // Only faults worth an operator's look; message and code never carry the token or the key.
  const bridgeStatus = typeof err.status === 'number' ? ' (bridge HTTP ' + err.status + ')' : '';
  console.error('wxbridge: answered ' + info.status + ', ' + err.code + bridgeStatus + ': ' + err.message);
}

/** The problem+json answer for `name`: { status, headers, body }. */
function problem(name, err) {
  const p = PROBLEMS[name];
  const code = p.code || name;
  const headers = { 'content-type': 'application/problem+json', 'cache-control': 'no-store' };
  if (p.status === 401) {
    headers['www-authenticate'] = 'Bearer error="invalid_token"';
  }
  if (p.status === 503 && err && typeof err.retryAfter === 'number') {
    headers['retry-after'] = String(err.retryAfter);
  }
  return {
    status: p.status,
    headers: headers,
    body: { type: 'urn:wxbridge:problem:' + code, title: p.title, status: p.status, detail: p.detail, code: code },
  };
}

/** The token of a header value: `Bearer <token>`; a custom header may also carry it bare. */
function tokenFrom(value, bareAllowed) {
  if (typeof value !== 'string') return null;
  const m = /^\s*Bearer[ \t]+([^\s]+)\s*$/i.exec(value);
  if (m) return m[1];
  if (bareAllowed && /^\s*[^\s]+\s*$/.test(value)) return value.trim();
  return null;
}

/** Never rejects: { who } or { answer: problem }. */
async function authenticate(bridge, value, bareAllowed, onError) {
  const token = tokenFrom(value, bareAllowed);
  if (!token) return { answer: problem('invalid_token') };
  try {
    const who = await bridge.identify(token);
    if (!who) return { answer: problem('not_linked') };
    return { who: who };
  } catch (err) {
    let answer;
    // Only a refused *token* is a 401: the bridge answering 401 to the merchant key is our fault.
    if (err && err.tokenRefused === true) {
      answer = problem(err.reason === 'ERR_JWT_EXPIRED' ? 'token_expired' : 'invalid_token');
    } else if (isUnavailable(err)) {
      answer = problem('bridge_unavailable', err);
    } else {
      answer = problem('internal_error', err);
    }
    if (answer.status >= 500 && onError) {
      try {
        onError(err, { status: answer.status });
      } catch {
        // a failing logger must not fail the request
      }
    }
    return { answer: answer };
  }
}

function settings(options) {
  const o = options || {};
  const header = String(o.header || 'authorization').toLowerCase();
  return {
    header: header,
    bareAllowed: header !== 'authorization',
    onError: o.onError === undefined ? defaultOnError : o.onError,
  };
}

/**
 * Express (or bare node:http) middleware: middleware(bridge, { header = 'authorization', onError })
 * Sets req.wxbridge = { person_id, openid, platform: { appid, openid, person } } and calls next(),
 * or answers 401/403/503/500 problem+json itself.
 */
function middleware(bridge, options) {
  if (!bridge || typeof bridge.identify !== 'function') throw new TypeError('middleware: a bridge from createBridge() is required');
  const s = settings(options);
  return function wxbridge(req, res, next) {
    authenticate(bridge, req.headers[s.header], s.bareAllowed, s.onError)
      .then((out) => {
        if (out.who) {
          req.wxbridge = out.who;
          return next();
        }
        const a = out.answer;
        res.statusCode = a.status;
        for (const k of Object.keys(a.headers)) res.setHeader(k, a.headers[k]);
        res.end(JSON.stringify(a.body));
      })
      .catch((err) => next(err));
  };
}

/**
 * Koa middleware: koa(bridge, { header = 'authorization', onError })
 * Sets ctx.state.wxbridge and awaits next(), or answers 401/403/503/500 problem+json itself.
 */
function koa(bridge, options) {
  if (!bridge || typeof bridge.identify !== 'function') throw new TypeError('koa: a bridge from createBridge() is required');
  const s = settings(options);
  return async function wxbridge(ctx, next) {
    const out = await authenticate(bridge, ctx.headers[s.header], s.bareAllowed, s.onError);
    if (!out.who) {
      const a = out.answer;
      ctx.status = a.status;
      for (const k of Object.keys(a.headers)) ctx.set(k, a.headers[k]);
      ctx.type = 'application/problem+json';
      ctx.body = JSON.stringify(a.body); // a string body keeps the problem+json type
      return;
    }
    ctx.state = ctx.state || {};
    ctx.state.wxbridge = out.who;
    await next();
  };
}

module.exports = { middleware, koa, tokenFrom };
