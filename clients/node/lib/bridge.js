'use strict';
/**
 * The bridge as a merchant backend sees it: bridge tokens are checked against the bridge's JWKS,
 * and the platform's openid is translated into the merchant's own app with the merchant key.
 *
 * Contract: the bridge's API.md, "Translation and look-up" and "Tenants (v1.1)".
 */

const { TtlCache } = require('./cache.js');

const DEFAULT_AUDIENCE = 'wxbridge';
const DEFAULT_TTL_MS = 60 * 1000;
const NOT_LINKED_TTL_MS = 5 * 1000;
const DEFAULT_CACHE_SIZE = 10000;
const DEFAULT_TIMEOUT_MS = 5000;
// The bridge refuses a token issued more than this far in the future; so does this module.
const IAT_LEEWAY_SECONDS = 60;
const MAX_TOKEN_LENGTH = 8192;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

// jose errors that mean "this token is not good". Any other failure of a verification (no
// answer from the JWKS URL, a JWKS that does not parse) means the bridge cannot be asked now.
const TOKEN_ERRORS = new Set([
  'ERR_JWT_EXPIRED',
  'ERR_JWT_CLAIM_VALIDATION_FAILED',
  'ERR_JWT_INVALID',
  'ERR_JWS_INVALID',
  'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
  'ERR_JOSE_ALG_NOT_ALLOWED',
  'ERR_JWKS_NO_MATCHING_KEY',
  'ERR_JWKS_MULTIPLE_MATCHING_KEYS',
]);

// Stands for a cached `not_linked` answer.
const NOT_LINKED = Symbol('not_linked');

/** An error of this module or of the bridge; `code` is a stable snake_case string. */
class BridgeError extends Error {
  constructor(code, message, extra) {
    super(message || code, extra && extra.cause !== undefined ? { cause: extra.cause } : undefined);
    this.name = 'BridgeError';
    this.code = code;
    if (extra) {
      for (const k of Object.keys(extra)) {
        if (k !== 'cause' && extra[k] !== undefined) this[k] = extra[k];
      }
    }
  }
}

/** True when the error means the bridge cannot answer now (worth a retry later): 503 material. */
function isUnavailable(err) {
  if (!err) return false;
  if (err.code === 'bridge_unavailable') return true;
  return typeof err.status === 'number' && (err.status >= 500 || err.status === 429);
}

let jose = null;
/** jose is ESM only; a dynamic import loads it from CommonJS on every Node 20. */
function loadJose() {
  if (!jose) {
    jose = import('jose');
    jose.catch(() => {
      jose = null;
    });
  }
  return jose;
}

function parseJson(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * How long a translation may be kept: `max-age=N` when the answer says so, else 60 s. Only
 * max-age counts (the bridge marks all its JSON `no-store`, which is about shared caches).
 */
function ttlFrom(cacheControl) {
  if (typeof cacheControl === 'string') {
    const m = /(?:^|[,\s])max-age\s*=\s*"?(\d+)"?/i.exec(cacheControl);
    if (m) return Number(m[1]) * 1000;
  }
  return DEFAULT_TTL_MS;
}

/** Retry-After in seconds (delay-seconds or an HTTP date), or undefined. */
function retryAfterOf(value, nowMs) {
  if (!value) return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value);
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - nowMs) / 1000));
}

function nonEmpty(s) {
  return typeof s === 'string' && s.length > 0;
}

function normalizeBase(base) {
  if (!nonEmpty(base)) throw new BridgeError('invalid_options', 'createBridge: `base` is required');
  let u;
  try {
    u = new URL(base);
  } catch {
    throw new BridgeError('invalid_options', 'createBridge: `base` is not a URL');
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') {
    throw new BridgeError('invalid_options', 'createBridge: `base` must be an http(s) origin');
  }
  return base.replace(/\/+$/, '');
}

/**
 * createBridge({ base, merchantKey, audience, appids, translateTo, fetch, ... })
 *
 * Options
 * - base         the bridge's PUBLIC_BASE, e.g. 'https://id.example.com' (required); also the
 *                expected token issuer
 * - merchantKey  the merchant credential (POST /v1/admin/merchants/{merchant}/keys) (required)
 * - translateTo  the merchant's own appid that openids are translated into (required)
 * - audience     expected `aud` (default 'wxbridge')
 * - appids       appid (or list) whose tokens are accepted, e.g. the platform mini program;
 *                tokens of any other app are refused. Default: any app.
 * - fetch        fetch implementation, for translation and JWKS (default global fetch)
 * - issuer       expected `iss` when it is not `base` (default `base`)
 * - now          clock in ms (default Date.now): token expiry and cache deadlines
 * - cacheSize    most translations kept (default 10000; the oldest goes first)
 * - timeoutMs    translation request timeout (default 5000)
 * - clockTolerance  seconds of leeway on exp/nbf (default 0, as the bridge)
 * - jwks         options for jose's createRemoteJWKSet: { timeoutDuration, cooldownDuration,
 *                cacheMaxAge } (ms; jose's defaults 5000, 30000, 600000)
 *
 * The merchant key is kept in this closure only: it is not a property of the bridge object,
 * it is sent only as `Authorization: Bearer` to `${base}/v1/translate`, and it is scrubbed from
 * any error message.
 */
function createBridge(options) {
  const opts = options || {};
  const base = normalizeBase(opts.base);
  if (!nonEmpty(opts.merchantKey)) throw new BridgeError('invalid_options', 'createBridge: `merchantKey` is required');
  if (!nonEmpty(opts.translateTo)) throw new BridgeError('invalid_options', 'createBridge: `translateTo` is required');
  const merchantKey = opts.merchantKey;
  const translateTo = opts.translateTo;
  const issuer = opts.issuer || base;
  const audience = opts.audience === undefined ? DEFAULT_AUDIENCE : opts.audience;
  let appids = null;
  if (opts.appids !== undefined && opts.appids !== null) {
    const list = [].concat(opts.appids);
    if (!list.length || !list.every(nonEmpty)) {
      throw new BridgeError('invalid_options', 'createBridge: `appids` must be a non-empty list of appids');
    }
    appids = new Set(list);
  }
  const fetchImpl = opts.fetch || globalThis.fetch;
  if (typeof fetchImpl !== 'function') throw new BridgeError('invalid_options', 'createBridge: no fetch available');
  const now = opts.now || Date.now;
  const timeoutMs = opts.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : opts.timeoutMs;
  const clockTolerance = opts.clockTolerance || 0;
  const jwksUrl = new URL(base + '/.well-known/jwks.json');
  const jwksOptions = Object.assign({}, opts.jwks);
  const cache = new TtlCache(opts.cacheSize === undefined ? DEFAULT_CACHE_SIZE : opts.cacheSize, now);
  const inflight = new Map();
  let keySet = null;

  /** Never let the merchant key into a message, whatever the other side echoed. */
  function redact(text) {
    return String(text).split(merchantKey).join('[redacted]');
  }

  /** The presented bridge token is not acceptable (as opposed to the bridge refusing us). */
  function invalidToken(message, reason) {
    return new BridgeError('invalid_token', message, { status: 401, reason: reason, tokenRefused: true });
  }

  async function keys() {
    if (!keySet) {
      keySet = loadJose().then((j) => {
        const o = Object.assign({}, jwksOptions);
        if (opts.fetch) o[j.customFetch] = fetchImpl;
        return { j: j, set: j.createRemoteJWKSet(jwksUrl, o) };
      });
      keySet.catch(() => {
        keySet = null;
      });
    }
    return keySet;
  }

  /**
   * Checks a bridge token: RS256, signed by a key of the bridge's JWKS (fetched once, kept, and
   * fetched again for an unknown kid), issuer, audience, expiry, and `appid` among `appids`.
   * Resolves its claims { iss, aud, sub, appid, openid, iat, exp }. Rejects with a BridgeError:
   * `invalid_token` (status 401, `tokenRefused: true`, `reason` says why) or
   * `bridge_unavailable` (no JWKS).
   * The token itself is never put into an error.
   */
  async function verify(token) {
    if (typeof token !== 'string' || !token) throw invalidToken('no bridge token', 'missing');
    if (token.length > MAX_TOKEN_LENGTH || !JWT_SHAPE.test(token)) throw invalidToken('malformed bridge token', 'malformed');
    const { j, set } = await keys();
    let header;
    try {
      header = j.decodeProtectedHeader(token);
    } catch {
      throw invalidToken('malformed bridge token header', 'malformed');
    }
    if (header.alg !== 'RS256' || !nonEmpty(header.kid)) {
      throw invalidToken('bridge tokens are RS256 with a kid', 'ERR_JOSE_ALG_NOT_ALLOWED');
    }
    const nowMs = now();
    let payload;
    try {
      const out = await j.jwtVerify(token, set, {
        algorithms: ['RS256'],
        issuer: issuer,
        audience: audience,
        currentDate: new Date(nowMs),
        clockTolerance: clockTolerance,
        requiredClaims: ['iss', 'aud', 'sub', 'exp', 'iat'],
      });
      payload = out.payload;
    } catch (err) {
      if (err && TOKEN_ERRORS.has(err.code)) {
        throw invalidToken('bridge token refused: ' + err.message, err.code);
      }
      const timeout = err && err.code === 'ERR_JWKS_TIMEOUT';
      throw new BridgeError(
        'bridge_unavailable',
        redact(timeout ? 'the bridge JWKS did not answer in time' : 'cannot get the bridge JWKS: ' + (err && err.message)),
        { cause: err }
      );
    }
    if (!nonEmpty(payload.sub) || !nonEmpty(payload.appid) || !nonEmpty(payload.openid)) {
      throw invalidToken('bridge token lacks sub, appid or openid', 'ERR_JWT_CLAIM_VALIDATION_FAILED');
    }
    if (payload.iat > Math.floor(nowMs / 1000) + IAT_LEEWAY_SECONDS) {
      throw invalidToken('bridge token issued in the future', 'ERR_JWT_CLAIM_VALIDATION_FAILED');
    }
    if (appids && !appids.has(payload.appid)) {
      throw invalidToken('bridge token of an app this service does not accept', 'foreign_appid');
    }
    return Object.assign({}, payload);
  }

  async function fetchTranslation(key, fromAppid, openid) {
    const query = new URLSearchParams({ from_appid: fromAppid, openid: openid, to_appid: translateTo });
    const url = base + '/v1/translate?' + query.toString();
    let res;
    let text;
    try {
      res = await fetchImpl(url, {
        method: 'GET',
        headers: { authorization: 'Bearer ' + merchantKey, accept: 'application/json' },
        redirect: 'manual', // never carry the key anywhere else
        signal: AbortSignal.timeout(timeoutMs),
      });
      text = await res.text();
    } catch (err) {
      const timeout = err && (err.name === 'TimeoutError' || err.name === 'AbortError');
      throw new BridgeError(
        'bridge_unavailable',
        timeout ? 'the bridge did not answer in time' : redact('cannot reach the bridge: ' + (err && err.message)),
        { cause: err }
      );
    }
    const body = parseJson(text);
    if (res.status === 200) {
      if (!body || !nonEmpty(body.openid) || !nonEmpty(body.person_id)) {
        throw new BridgeError('invalid_response', 'translation answer lacks openid or person_id', { status: 200 });
      }
      const value = { openid: body.openid, person_id: body.person_id };
      cache.set(key, value, ttlFrom(res.headers.get('cache-control')));
      return value;
    }
    const problem = body && typeof body === 'object' ? JSON.parse(redact(JSON.stringify(body))) : undefined;
    const code = problem && nonEmpty(problem.code) ? problem.code : 'http_' + res.status;
    if (res.status === 404 && code === 'not_linked') {
      cache.set(key, NOT_LINKED, NOT_LINKED_TTL_MS);
      return null;
    }
    let message = 'bridge answered ' + res.status + ' ' + code;
    if (problem && typeof problem.detail === 'string' && problem.detail) message += ': ' + problem.detail;
    throw new BridgeError(code, redact(message), {
      status: res.status,
      problem: problem,
      retryAfter: retryAfterOf(res.headers.get('retry-after'), Date.now()),
    });
  }

  /**
   * GET /v1/translate?from_appid&openid&to_appid=<translateTo> with the merchant key.
   * Resolves { openid, person_id } (the person in the merchant's own app), or null when the
   * person has no identity there (404 not_linked). Other answers reject with a BridgeError
   * carrying the bridge's `status` and `code`; no answer rejects with `bridge_unavailable`.
   * Answers are kept per (fromAppid, openid): max-age of the answer or 60 s; not_linked 5 s;
   * errors never. Concurrent calls for one pair share one request.
   */
  async function translate(fromAppid, openid) {
    if (!nonEmpty(fromAppid) || !nonEmpty(openid)) {
      throw new BridgeError('invalid_request', 'translate: fromAppid and openid are required', { status: 400 });
    }
    const key = fromAppid + '\u0000' + openid;
    const hit = cache.get(key);
    if (hit !== undefined) return hit === NOT_LINKED ? null : Object.assign({}, hit);
    let pending = inflight.get(key);
    if (!pending) {
      pending = fetchTranslation(key, fromAppid, openid);
      inflight.set(key, pending);
      const done = () => {
        if (inflight.get(key) === pending) inflight.delete(key);
      };
      pending.then(done, done);
    }
    const value = await pending;
    return value === null ? null : Object.assign({}, value);
  }

  /**
   * verify(token), then translate its openid into `translateTo`. Resolves
   * { person_id, openid, platform: { appid, openid, person } }, or null when not linked.
   * A token whose identity the bridge no longer knows (404 not_found: erased, unlinked) is
   * refused as `invalid_token`, as the bridge's own routes do.
   */
  async function identify(token) {
    const claims = await verify(token);
    let t;
    try {
      t = await translate(claims.appid, claims.openid);
    } catch (err) {
      if (err && err.code === 'not_found' && err.status === 404) {
        throw invalidToken('the bridge no longer knows this token\'s identity', 'unknown_identity');
      }
      throw err;
    }
    if (!t) return null;
    return {
      person_id: t.person_id,
      openid: t.openid,
      platform: { appid: claims.appid, openid: claims.openid, person: claims.sub },
    };
  }

  return {
    verify: verify,
    translate: translate,
    identify: identify,
    /** Forgets every cached translation. */
    clearCache: function () {
      cache.clear();
    },
    base: base,
    issuer: issuer,
    audience: audience,
    translateTo: translateTo,
    appids: appids ? Array.from(appids) : null,
  };
}

module.exports = { createBridge, BridgeError, isUnavailable, ttlFrom };
