/**
 * wxbridge mini-program client kit.
 *
 * Plain CommonJS, no dependencies, no build step: copy this file into a WeChat mini program and
 * `require` it. Every call to the bridge goes through `request()`, which logs in lazily with
 * `wx.login`, keeps the bridge token (and only the token) in wx storage, refreshes it when it
 * expires or the bridge answers 401 `invalid_token`, and shares one login between concurrent calls.
 *
 * The bridge never returns WeChat's session_key, and this module never stores or logs it.
 *
 * A web-view pass links nothing by itself (a forwarded ticket URL must link nothing): it ends with a
 * one-time confirm code that the kit's confirm page hands to `finishLink(code)`, which sends
 * POST /v1/auth/confirm with this mini program's own token. The code is kept only for that call.
 *
 * Contract: see the "Mini program" and "Web-view authorization" sections of the bridge's API.md,
 * and "Confirmation by the ticket's owner (v1.1)".
 */
'use strict';

var DEFAULT_WEBVIEW_PAGE = '/pages/wxbridge/webview';
var DEFAULT_LEEWAY_SECONDS = 60;
var DEFAULT_PROFILE_DESC = 'Link your WeChat accounts';

// Confirm answers that end a link attempt as 'refused': the pass is not this identity's, the code
// is unknown/used/expired, or linking would give a person two openids of one app. Never retried.
var REFUSED_CODES = { confirm_mismatch: true, confirm_invalid: true, identity_conflict: true };

/** An error from the bridge (problem+json) or from a wx API; `code` is a stable snake_case string. */
function WxBridgeError(code, message, extra) {
  var err = new Error(message || code);
  err.name = 'WxBridgeError';
  err.code = code;
  if (extra) {
    for (var k in extra) {
      if (Object.prototype.hasOwnProperty.call(extra, k) && extra[k] !== undefined) err[k] = extra[k];
    }
  }
  return err;
}

function parseBody(data) {
  if (typeof data === 'string' && data) {
    try {
      return JSON.parse(data);
    } catch (e) {
      return data;
    }
  }
  return data;
}

/** Builds the Error for a non-2xx answer; `code` comes from the problem+json body. */
function problemError(res, url) {
  var body = parseBody(res.data);
  var problem = body && typeof body === 'object' ? body : null;
  var code = problem && typeof problem.code === 'string' ? problem.code : 'http_' + res.statusCode;
  var title = (problem && (problem.title || problem.message)) || 'Request failed';
  var message = title + ' (' + code + ', HTTP ' + res.statusCode + ')';
  if (problem && problem.detail) message += ': ' + problem.detail;
  return WxBridgeError(code, message, {
    status: res.statusCode,
    problem: problem || undefined,
    url: url,
  });
}

/** Turns a wx `fail` callback argument into an Error. */
function wxFailure(api, code) {
  return function (res) {
    var errMsg = (res && res.errMsg) || api + ':fail';
    return WxBridgeError(code, errMsg, { errMsg: errMsg, errno: res && res.errno });
  };
}

function isExpiredTokenAnswer(res) {
  if (!res || res.statusCode !== 401) return false;
  var body = parseBody(res.data);
  var code = body && typeof body === 'object' ? body.code : undefined;
  // The bridge says `invalid_token`; API Gateway's own JWT authorizer (merchant routes) answers
  // 401 `{"message":"Unauthorized"}` without a code. Both mean: get a new token.
  return code === 'invalid_token' || code === undefined;
}

function trimSlash(s) {
  return String(s).replace(/\/+$/, '');
}

function originOf(url) {
  var m = /^(https?:\/\/[^/?#]+)/i.exec(url);
  return m ? m[1].toLowerCase() : null;
}

/**
 * createClient({ base, appid, webviewPage, storage, ... })
 *
 * Options
 * - base         bridge origin, e.g. 'https://id.example.com' (required)
 * - appid        this mini program's appid (required)
 * - webviewPage  the kit's web-view page path (default '/pages/wxbridge/webview')
 * - storage      object with getStorageSync/setStorageSync/removeStorageSync (default `wx`)
 * - autoLink     open the web-view when a login says pivot_linked:false (default true, at most
 *                once per client unless it failed)
 * - link         body of POST /v1/auth/tickets: { targets?, scope?, return_url? } (default {})
 * - onLinkDone   called with { result, messages, error? } when a link attempt ends: result is
 *                'linked' (confirmed), 'denied' (the user refused), 'refused' (confirm_mismatch,
 *                confirm_invalid, identity_conflict) or null (no result, or another error)
 * - linkDonePage where the kit's confirm page goes when it is done (default: navigateBack)
 * - trustedOrigins  extra origins (besides `base`) that may receive the bridge token, e.g. a
 *                merchant API behind API Gateway's JWT authorizer
 * - leewaySeconds  refresh the token this long before it expires (default 60, capped at half
 *                its life)
 * - storageKey   wx storage key (default 'wxbridge:<base>#<appid>')
 * - onError      called with errors of background work (auto link), default console.warn
 * - wx, now      for tests: the wx object (default global `wx`) and the clock (default Date.now)
 */
function createClient(options) {
  var opts = options || {};
  if (!opts.base) throw WxBridgeError('invalid_options', 'createClient: `base` is required');
  if (!opts.appid) throw WxBridgeError('invalid_options', 'createClient: `appid` is required');

  var w = opts.wx || (typeof wx !== 'undefined' ? wx : undefined); // eslint-disable-line no-undef
  if (!w) throw WxBridgeError('invalid_options', 'createClient: no `wx` object');
  var base = trimSlash(opts.base);
  var appid = String(opts.appid);
  var webviewPage = opts.webviewPage || DEFAULT_WEBVIEW_PAGE;
  var storage = opts.storage || w;
  var autoLink = opts.autoLink !== false;
  var linkBody = opts.link || {};
  var now = opts.now || Date.now;
  var leeway = opts.leewaySeconds == null ? DEFAULT_LEEWAY_SECONDS : Number(opts.leewaySeconds);
  var storageKey = opts.storageKey || 'wxbridge:' + base + '#' + appid;
  var onError =
    opts.onError ||
    function (err) {
      if (typeof console !== 'undefined') console.warn('[wxbridge]', err && err.code, err && err.message);
    };
  var trusted = [originOf(base)].concat((opts.trustedOrigins || []).map(function (o) {
    return originOf(trimSlash(o));
  }));

  // The one token flight in progress (single flight): a login, or a confirm, which also issues the
  // token. { kind: 'login' | 'confirm', promise → { answer, link } }.
  var flight = null;
  var confirming = null; // { code, promise }: the confirm in progress; the code is dropped after it
  var linkAttempt = null; // the last web-view pass opened by openLink: { handedOver }
  var autoLinkStarted = false;

  /** Calls a callback-style wx API and returns a promise. */
  function call(api, params, code) {
    return new Promise(function (resolve, reject) {
      var fn = w[api];
      if (typeof fn !== 'function') {
        reject(WxBridgeError(code, 'wx.' + api + ' is not available'));
        return;
      }
      var fail = wxFailure(api, code);
      var args = {};
      for (var k in params || {}) args[k] = params[k];
      args.success = resolve;
      args.fail = function (res) {
        reject(fail(res));
      };
      try {
        fn.call(w, args);
      } catch (e) {
        reject(WxBridgeError(code, (e && e.message) || String(e)));
      }
    });
  }

  // ---- token storage: only { token, expires_at, refresh_at } (ms since epoch) ----

  function readToken() {
    var v;
    try {
      v = storage.getStorageSync(storageKey);
    } catch (e) {
      return null;
    }
    if (!v || typeof v !== 'object' || typeof v.token !== 'string' || !v.token) return null;
    return v;
  }

  function usable(v) {
    return !!v && (typeof v.refresh_at !== 'number' || now() < v.refresh_at);
  }

  function writeToken(answer) {
    var seconds = Number(answer.expires_in);
    var t = now();
    var v = { token: answer.token, expires_at: null, refresh_at: null };
    if (isFinite(seconds) && seconds > 0) {
      v.expires_at = t + seconds * 1000;
      v.refresh_at = t + (seconds - Math.min(leeway, seconds / 2)) * 1000;
    }
    try {
      storage.setStorageSync(storageKey, v);
    } catch (e) {
      onError(WxBridgeError('storage_failed', (e && e.message) || String(e)));
    }
    return v;
  }

  function clear() {
    try {
      if (typeof storage.removeStorageSync === 'function') storage.removeStorageSync(storageKey);
      else storage.setStorageSync(storageKey, '');
    } catch (e) {
      /* nothing stored, nothing to clear */
    }
  }

  /** Keeps what the app may see of a login answer; drops anything secret-looking. */
  function cleanAnswer(body) {
    var out = {};
    for (var k in body) {
      if (Object.prototype.hasOwnProperty.call(body, k) && k !== 'session_key') out[k] = body[k];
    }
    return out;
  }

  // ---- plain HTTP ----

  function resolveUrl(url) {
    var u = String(url || '');
    if (/^https?:\/\//i.test(u)) return u;
    return base + (u.charAt(0) === '/' ? u : '/' + u);
  }

  function send(req, token) {
    var header = {};
    var k;
    for (k in req.header || {}) {
      if (String(k).toLowerCase() !== 'authorization') header[k] = req.header[k];
    }
    if (token) header.Authorization = 'Bearer ' + token;
    var params = {};
    for (k in req) {
      if (k !== 'success' && k !== 'fail' && k !== 'complete' && k !== 'header') params[k] = req[k];
    }
    params.url = req.url;
    params.method = (req.method || 'GET').toUpperCase();
    params.header = header;
    return call('request', params, 'network_error');
  }

  function answer(res) {
    return { statusCode: res.statusCode, data: parseBody(res.data), header: res.header || {} };
  }

  // ---- login and confirm (single flight) ----

  function doLogin(allowAutoLink) {
    return call('login', {}, 'wx_login_failed').then(function (r) {
      if (!r || !r.code) throw WxBridgeError('wx_login_failed', 'wx.login gave no code');
      var url = base + '/v1/mp/login';
      return send({ url: url, method: 'POST', data: { appid: appid, code: r.code } }, null).then(function (res) {
        var result = cleanAnswer(tokenAnswer(res, url, 'login'));
        return { answer: result, link: allowAutoLink ? maybeAutoLink(result) : null };
      });
    });
  }

  /** Checks a login-shaped answer (login, confirm), stores its token and returns its body. */
  function tokenAnswer(res, url, what) {
    if (res.statusCode < 200 || res.statusCode >= 300) throw problemError(res, url);
    var body = parseBody(res.data);
    if (!body || typeof body !== 'object' || typeof body.token !== 'string' || !body.token) {
      throw WxBridgeError('invalid_response', what + ' answer carries no token', { status: res.statusCode });
    }
    writeToken(body);
    return body;
  }

  function startFlight(kind, promise) {
    var f = { kind: kind, promise: promise };
    flight = f;
    var done = function () {
      if (flight === f) flight = null;
    };
    promise.then(done, done);
    return promise;
  }

  function settled(promise) {
    return promise.then(
      function () {},
      function () {}
    );
  }

  function loginShared() {
    if (!flight) return startFlight('login', doLogin(true));
    if (flight.kind === 'login') return flight.promise;
    // A confirm is issuing a token: its answer is a login answer. If it fails, log in.
    return flight.promise.then(null, function () {
      return loginShared();
    });
  }

  /** A usable token: the stored one, the one being fetched, or a new login. */
  function ensureToken() {
    if (flight) {
      if (flight.kind === 'login') return flight.promise.then(tokenOf);
      return settled(flight.promise).then(ensureToken); // the confirm's token, or the one before it
    }
    var v = readToken();
    if (usable(v)) return Promise.resolve(v.token);
    return loginShared().then(tokenOf);
  }

  function tokenOf() {
    var v = readToken();
    if (!v) throw WxBridgeError('invalid_token', 'no bridge token after login');
    return v.token;
  }

  /** After `bad` was refused: a newer token if someone already got one, else one new login. */
  function replaceToken(bad) {
    if (flight) {
      if (flight.kind === 'login') return flight.promise.then(tokenOf);
      return settled(flight.promise).then(function () {
        return replaceToken(bad);
      });
    }
    var v = readToken();
    if (v && v.token !== bad && usable(v)) return Promise.resolve(v.token);
    clear();
    return loginShared().then(tokenOf);
  }

  /** Gets a token, then runs POST /v1/auth/confirm as the token flight once no other flight runs. */
  function confirmFlight(code) {
    // With a usable token and no flight, take the flight now: a login() or request() called right
    // after waits for this confirm (and its new token) instead of starting a login of its own.
    var v = flight ? null : readToken();
    if (usable(v)) return startFlight('confirm', postConfirm(code, v.token));
    return ensureToken().then(function (token) {
      if (flight) {
        // Another login or confirm started meanwhile: one flight at a time.
        return settled(flight.promise).then(function () {
          return confirmFlight(code);
        });
      }
      return startFlight('confirm', postConfirm(code, token));
    });
  }

  /** Like replaceToken, for use inside a flight: no auto link from this login. */
  function freshToken(bad) {
    var v = readToken();
    if (v && v.token !== bad && usable(v)) return Promise.resolve(v.token);
    clear();
    return doLogin(false).then(tokenOf);
  }

  function postConfirm(code, token) {
    var url = base + '/v1/auth/confirm';
    var req = { url: url, method: 'POST', data: { code: code } };
    return send(req, token)
      .then(function (res) {
        if (!isExpiredTokenAnswer(res)) return res;
        // One re-login and one retry, inside this flight (replaceToken would wait for it).
        return freshToken(token).then(function (t) {
          return send(req, t);
        });
      })
      .then(function (res) {
        return { answer: cleanAnswer(tokenAnswer(res, url, 'confirm')), link: null };
      });
  }

  // ---- public API ----

  /**
   * request({ url, method, data, header, ...wx.request options })
   * → Promise<{ statusCode, data, header }>; rejects with an Error whose `code` is the bridge's
   * problem code (or network_error / wx_login_failed / http_<status>).
   */
  function request(req) {
    var r = req || {};
    var url = resolveUrl(r.url);
    if (trusted.indexOf(originOf(url)) < 0) {
      return Promise.reject(
        WxBridgeError('untrusted_origin', 'refusing to send the bridge token to ' + originOf(url), { url: url })
      );
    }
    var params = {};
    for (var k in r) params[k] = r[k];
    params.url = url;
    return ensureToken().then(function (token) {
      return send(params, token).then(function (res) {
        if (!isExpiredTokenAnswer(res)) return res;
        // One re-login and one retry, never more.
        return replaceToken(token).then(function (fresh) {
          return send(params, fresh);
        });
      }).then(function (res) {
        if (res.statusCode < 200 || res.statusCode >= 300) throw problemError(res, url);
        return answer(res);
      });
    });
  }

  /** Forces a login; resolves the login answer (without session_key, which the bridge never sends). */
  function login() {
    return loginShared().then(function (out) {
      return Promise.resolve(out.link).then(function () {
        return out.answer;
      });
    });
  }

  /**
   * Confirms a web-view pass: POST /v1/auth/confirm { code } with this mini program's token, after
   * any login in progress (and logging in first when there is no token). Stores the new token as a
   * login does and resolves the answer (pivot_linked: true). 401 → one re-login and one retry;
   * 403 confirm_mismatch and 400 confirm_invalid are final. Concurrent calls with the same code
   * share one request. The code is not stored, logged or put into errors.
   */
  function confirm(code) {
    if (typeof code !== 'string' || !code) {
      return Promise.reject(WxBridgeError('confirm_invalid', 'no confirm code'));
    }
    if (confirming && confirming.code === code) return confirming.promise;
    var c = { code: code, promise: null };
    c.promise = confirmFlight(code).then(function (out) {
      return out.answer;
    });
    confirming = c;
    var done = function () {
      if (confirming === c) confirming = null;
      c.code = null;
    };
    c.promise.then(done, done);
    return c.promise;
  }

  function reportLink(r) {
    if (!opts.onLinkDone) return;
    try {
      opts.onLinkDone(r);
    } catch (e) {
      onError(e);
    }
  }

  /**
   * What the kit's confirm page calls: confirm(code), then onLinkDone({ result, messages: [], error? })
   * with 'linked', 'refused' or null. Never rejects; resolves { result, answer?, error? }.
   */
  function finishLink(code) {
    if (linkAttempt) linkAttempt.handedOver = true; // the web-view page's own report is moot now
    return confirm(code)
      .then(
        function (ans) {
          return { result: 'linked', answer: ans };
        },
        function (err) {
          var refused = !!err && Object.prototype.hasOwnProperty.call(REFUSED_CODES, err.code);
          return { result: refused ? 'refused' : null, error: err };
        }
      )
      .then(function (out) {
        var r = { result: out.result, messages: [] };
        if (out.error) r.error = out.error;
        reportLink(r);
        return out;
      });
  }

  function maybeAutoLink(ans) {
    if (!autoLink || ans.pivot_linked !== false || autoLinkStarted) return null;
    autoLinkStarted = true;
    return openLink().then(null, function (err) {
      autoLinkStarted = false; // let a later login try again
      onError(err);
      return null;
    });
  }

  /**
   * Opens the web-view authorization: POST /v1/auth/tickets, then navigateTo the kit's web-view
   * page with the ticket URL. `body` overrides the `link` option. Resolves { ticket, url, expires_in }.
   * The pass links nothing until the confirm page (or the web-view page) hands its code to finishLink.
   */
  function openLink(body) {
    var payload = body || linkBody;
    return request({ url: '/v1/auth/tickets', method: 'POST', data: payload }).then(function (res) {
      var t = res.data || {};
      if (typeof t.url !== 'string' || !t.url) {
        throw WxBridgeError('invalid_response', 'ticket answer carries no url', { status: res.statusCode });
      }
      var attempt = { handedOver: false };
      linkAttempt = attempt;
      var nav = {
        url: webviewPage + '?src=' + encodeURIComponent(t.url),
        events: {
          // The web-view page closed without handing a confirm code over (denied, or no result).
          'wxbridge:done': function (r) {
            if (!attempt.handedOver) reportLink(r);
          },
          // Fallback: the return page could not redirectTo the confirm page and went back instead.
          'wxbridge:confirm': function (r) {
            finishLink(r && r.confirm);
          },
        },
      };
      return call('navigateTo', nav, 'navigate_failed').then(function () {
        return { ticket: t.ticket, url: t.url, expires_in: t.expires_in };
      });
    });
  }

  /**
   * Links the unionid, only when asked: wx.getUserProfile (if present; call linkUnionid directly
   * from a tap handler, and be logged in before the tap) or wx.getUserInfo, then
   * POST /v1/mp/userinfo { encryptedData, iv }; stores the token from the answer and resolves it.
   */
  function linkUnionid(params) {
    var p = params || {};
    var profile = null;
    if (typeof w.getUserProfile === 'function') {
      // Started synchronously: WeChat only allows getUserProfile inside the user's tap.
      profile = call('getUserProfile', { desc: p.desc || DEFAULT_PROFILE_DESC, lang: p.lang }, 'userinfo_denied');
      profile.then(null, function () {}); // handled below; avoid an "unhandled rejection" warning
    }
    return ensureToken()
      .then(function () {
        // getUserInfo after the token: encryptedData must use the session_key of the last login.
        return profile || call('getUserInfo', { withCredentials: true, lang: p.lang }, 'userinfo_denied');
      })
      .then(function (info) {
        if (!info || !info.encryptedData || !info.iv) {
          throw WxBridgeError('userinfo_denied', 'no encryptedData/iv from WeChat');
        }
        return request({
          url: '/v1/mp/userinfo',
          method: 'POST',
          data: { encryptedData: info.encryptedData, iv: info.iv },
        });
      })
      .then(function (res) {
        var body = res.data || {};
        if (typeof body.token === 'string' && body.token) writeToken(body);
        return cleanAnswer(body);
      });
  }

  /** GET /v1/me → { person_id, linked }. */
  function me() {
    return request({ url: '/v1/me', method: 'GET' }).then(function (res) {
      return res.data;
    });
  }

  return {
    request: request,
    login: login,
    linkUnionid: linkUnionid,
    me: me,
    openLink: openLink,
    confirm: confirm,
    finishLink: finishLink,
    /** Where the kit's confirm page goes when done (null: navigateBack). */
    linkDonePage: opts.linkDonePage || null,
    /** A usable bridge token (logs in when needed). */
    token: ensureToken,
    /** Forgets the stored token. */
    clear: clear,
  };
}

module.exports = { createClient: createClient };
