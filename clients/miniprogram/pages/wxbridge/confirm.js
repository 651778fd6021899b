// wxbridge confirm page. The end of a web-view pass opens it in place of the web-view page, with
// wx.miniProgram.redirectTo('/pages/wxbridge/confirm?confirm=<code>'): the bridge's own page does
// this when the ticket had no return_url, return.html does it for `result=pending&confirm=<code>`.
// The pass linked nothing yet; this page asks the client that made the ticket to confirm it
// (POST /v1/auth/confirm with its own token, see wxbridge.js finishLink), which reports the outcome
// through onLinkDone. Then it goes back, or to the client's `linkDonePage`.
//
// The bridge's page uses exactly '/pages/wxbridge/confirm': keep the page at that path (or, when you
// always pass a return_url, set the same path in return.html's wxbridge-confirm-page meta).
// The client is found on the App as `wxbridge` or `bridge` (getApp().bridge = createClient(...)).
'use strict';

var CLIENT_KEYS = ['wxbridge', 'bridge'];
var MAX_CODE_LENGTH = 512;

var TEXT = {
  linking: 'Linking your accounts…',
  linked: 'Your accounts are linked.',
  refused: 'Nothing was linked: this authorization does not belong to this account, or it has expired.',
  failed: 'Nothing was linked. Please try again.',
  noclient: 'Nothing was linked: the mini program has no wxbridge client.',
};

/** The code from the page query: some base library versions hand it over still encoded. */
function readCode(raw) {
  if (typeof raw !== 'string' || !raw) return '';
  var s = raw;
  if (s.indexOf('%') >= 0) {
    try {
      s = decodeURIComponent(s);
    } catch (e) {
      return '';
    }
  }
  return s.length <= MAX_CODE_LENGTH && !/[\s\u0000-\u001f]/.test(s) ? s : '';
}

/** The wxbridge client kept on the App. */
function findClient(app) {
  if (!app) return null;
  for (var i = 0; i < CLIENT_KEYS.length; i++) {
    var c = app[CLIENT_KEYS[i]];
    if (c && typeof c.finishLink === 'function') return c;
  }
  return null;
}

function nav(api, params) {
  return new Promise(function (resolve, reject) {
    var w = typeof wx !== 'undefined' ? wx : null; // eslint-disable-line no-undef
    if (!w || typeof w[api] !== 'function') {
      reject(new Error('wx.' + api + ' is not available'));
      return;
    }
    var args = {};
    for (var k in params || {}) args[k] = params[k];
    args.success = resolve;
    args.fail = reject;
    w[api](args);
  });
}

Page({
  data: { status: 'linking', text: TEXT.linking },

  // Tells the web-view page that this page reports the pass (see webview.js confirmPageOnTop).
  wxbridgeConfirm: true,
  // How long the outcome stays on screen before the page leaves.
  leaveDelayMs: 800,

  onLoad: function (query) {
    var self = this;
    var client = findClient(typeof getApp === 'function' ? getApp() : null); // eslint-disable-line no-undef
    if (!client) {
      this.setData({ status: 'failed', text: TEXT.noclient });
      this.finished = Promise.resolve({ result: null });
      return;
    }
    // Synchronously, in onLoad: finishLink marks the pass as handed over before the web-view
    // page's own (empty) report can reach onLinkDone. The code stays in this call only.
    this.finished = client.finishLink(readCode(query && query.confirm)).then(function (out) {
      var status = out.result === 'linked' || out.result === 'refused' ? out.result : 'failed';
      self.setData({ status: status, text: TEXT[status] });
      return self._leave(client).then(function () {
        return out;
      });
    });
  },

  _leave: function (client) {
    var self = this;
    var to = client.linkDonePage;
    return new Promise(function (resolve) {
      setTimeout(resolve, self.leaveDelayMs);
    })
      .then(function () {
        if (!to) return nav('navigateBack', { delta: 1 });
        return nav('redirectTo', { url: to }).then(null, function () {
          return nav('switchTab', { url: to }); // a tabBar page
        });
      })
      .then(null, function () {
        // Nowhere to go (for example the only page in the stack): stay and show the outcome.
      });
  },
});

if (typeof module !== 'undefined') module.exports = { readCode: readCode, findClient: findClient };
