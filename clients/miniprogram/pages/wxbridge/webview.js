// wxbridge web-view page. Opened by wxbridge.js as `<webviewPage>?src=<encoded ticket URL>`.
// The bridge's /v1/auth/start URL redirects through the official accounts' silent authorization.
// The pass links nothing by itself: it ends with a one-time confirm code, and the return page
// (return.html, or the bridge's own page) replaces this page with the confirm page
// (wx.miniProgram.redirectTo '/pages/wxbridge/confirm?confirm=<code>'), which confirms and reports.
// For 'denied' (or no result) the return page posts { wxbridge: 'result', result } and goes back,
// and this page reports it to the opener. If the return page could not redirect, it posts
// { wxbridge: 'result', result: 'pending', confirm } and goes back: this page hands the code to the
// opener (wxbridge.js finishLink) and drops it from the messages.
'use strict';

function decodeSrc(raw) {
  if (typeof raw !== 'string' || !raw) return '';
  var s = raw;
  // Encoded once by the kit; some base library versions hand the query over decoded already.
  if (!/^https?:\/\//i.test(s)) {
    try {
      s = decodeURIComponent(s);
    } catch (e) {
      return '';
    }
  }
  return /^https?:\/\//i.test(s) ? s : '';
}

/** The confirm code of the last 'pending' message, if it carries one. */
function confirmCode(messages) {
  for (var i = messages.length - 1; i >= 0; i--) {
    var m = messages[i];
    if (m && typeof m === 'object' && m.wxbridge === 'result' && m.result === 'pending') {
      return typeof m.confirm === 'string' && m.confirm ? m.confirm : '';
    }
  }
  return '';
}

/** The messages without any confirm code: they go on to onLinkDone. */
function withoutCodes(messages) {
  return messages.map(function (m) {
    if (!m || typeof m !== 'object' || !Object.prototype.hasOwnProperty.call(m, 'confirm')) return m;
    var out = {};
    for (var k in m) if (Object.prototype.hasOwnProperty.call(m, k) && k !== 'confirm') out[k] = m[k];
    return out;
  });
}

/** True when the page now on top is a confirm page (`wxbridgeConfirm: true`): it reports instead. */
function confirmPageOnTop(self) {
  if (typeof getCurrentPages !== 'function') return false; // eslint-disable-line no-undef
  var pages = getCurrentPages(); // eslint-disable-line no-undef
  var top = pages && pages[pages.length - 1];
  return !!top && top !== self && top.wxbridgeConfirm === true;
}

function lastResult(messages) {
  for (var i = messages.length - 1; i >= 0; i--) {
    var m = messages[i];
    if (m && typeof m === 'object' && m.wxbridge === 'result' && typeof m.result === 'string') return m.result;
  }
  return null;
}

Page({
  data: { src: '', error: '' },

  onLoad: function (query) {
    this._messages = [];
    var src = decodeSrc(query && query.src);
    if (src) this.setData({ src: src });
    else this.setData({ error: 'Nothing to open.' });
  },

  // web-view messages arrive (batched) when the page goes back, is shared or is destroyed;
  // depending on the base library that is just before or just after onUnload.
  onMessage: function (e) {
    var data = (e && e.detail && e.detail.data) || [];
    if (!Array.isArray(data)) data = [data];
    var code = confirmCode(data);
    this._messages = (this._messages || []).concat(withoutCodes(data)); // the code is not kept
    if (code) {
      this._emit('wxbridge:confirm', { confirm: code });
      return;
    }
    var result = lastResult(this._messages);
    if (result !== null && result !== 'pending') this._done();
  },

  onUnload: function () {
    // Give a message that comes right after the unload a moment to arrive.
    var self = this;
    setTimeout(function () {
      self._done();
    }, 100);
  },

  // Tells the opener (wxbridge.js onLinkDone) { result: 'denied'|null, messages }, unless the pass
  // went on to the confirm page (redirectTo), which reports itself.
  _done: function () {
    var messages = this._messages || [];
    var result = lastResult(messages);
    if (result === 'pending') return;
    if (result === null && confirmPageOnTop(this)) return;
    this._emit('wxbridge:done', { result: result, messages: messages });
  },

  // Emits to the opener once: 'wxbridge:done', or 'wxbridge:confirm' { confirm } (the fallback).
  _emit: function (name, payload) {
    if (this._reported) return;
    this._reported = true;
    var channel = typeof this.getOpenerEventChannel === 'function' ? this.getOpenerEventChannel() : null;
    if (channel && typeof channel.emit === 'function') channel.emit(name, payload);
  },
});

if (typeof module !== 'undefined') {
  module.exports = { decodeSrc: decodeSrc, lastResult: lastResult, confirmCode: confirmCode, withoutCodes: withoutCodes };
}
