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
 * Contract: see the "Mini program" and "Web-view authorization" sections of the bridge's API.md.
 */
'use strict';

var DEFAULT_WEBVIEW_PAGE = '/pages/wxbridge/webview';
var DEFAULT_LEEWAY_SECONDS = 60;
var DEFAULT_PROFILE_DESC = 'Link your WeChat accounts';

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
 * - onLinkDone   called with { result, messages } when the web-view page closes
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

  var inflight = null; // the one login in progress (single flight)
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

  // ---- login (single flight) ----

  function doLogin() {
    return call('login', {}, 'wx_login_failed').then(function (r) {
      if (!r || !r.code) throw WxBridgeError('wx_login_failed', 'wx.login gave no code');
      var url = base + '/v1/mp/login';
      return send({ url: url, method: 'POST', data: { appid: appid, code: r.code } }, null).then(function (res) {
        if (res.statusCode < 200 || res.statusCode >= 300) throw problemError(res, url);
        var body = parseBody(res.data);
        if (!body || typeof body !== 'object' || typeof body.token !== 'string') {
          throw WxBridgeError('invalid_response', 'login answer carries no token', { status: res.statusCode });
        }
        writeToken(body);
        var result = cleanAnswer(body);
        return { answer: result, link: maybeAutoLink(result) };
      });
    });
  }

  function loginShared() {
    if (!inflight) {
      inflight = doLogin();
      var done = function () {
        inflight = null;
      };
      inflight.then(done, done);
    }
    return inflight;
  }

  /** A usable token: the stored one, the one being fetched, or a new login. */
  function ensureToken() {
    if (inflight) return inflight.then(tokenOf);
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
    if (inflight) return inflight.then(tokenOf);
    var v = readToken();
    if (v && v.token !== bad && usable(v)) return Promise.resolve(v.token);
    clear();
    return loginShared().then(tokenOf);
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
   */
  function openLink(body) {
    var payload = body || linkBody;
    return request({ url: '/v1/auth/tickets', method: 'POST', data: payload }).then(function (res) {
      var t = res.data || {};
      if (typeof t.url !== 'string' || !t.url) {
        throw WxBridgeError('invalid_response', 'ticket answer carries no url', { status: res.statusCode });
      }
      var nav = { url: webviewPage + '?src=' + encodeURIComponent(t.url) };
      if (opts.onLinkDone) {
        nav.events = {
          'wxbridge:done': function (r) {
            try {
              opts.onLinkDone(r);
            } catch (e) {
              onError(e);
            }
          },
        };
      }
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
    /** A usable bridge token (logs in when needed). */
    token: ensureToken,
    /** Forgets the stored token. */
    clear: clear,
  };
}

module.exports = { createClient: createClient };
