// wxbridge web-view page. Opened by wxbridge.js as `<webviewPage>?src=<encoded ticket URL>`.
// The bridge's /v1/auth/start URL redirects through the official accounts' silent authorization
// and ends on the return page (return.html), which posts { wxbridge: 'result', result } and goes back.
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
    this._messages = (this._messages || []).concat(data);
    if (lastResult(this._messages) !== null) this._done();
  },

  onUnload: function () {
    // Give a message that comes right after the unload a moment to arrive.
    var self = this;
    setTimeout(function () {
      self._done();
    }, 100);
  },

  // Tells the opener (wxbridge.js onLinkDone) once: { result: 'linked'|'denied'|null, messages }.
  _done: function () {
    if (this._reported) return;
    this._reported = true;
    var messages = this._messages || [];
    var channel = typeof this.getOpenerEventChannel === 'function' ? this.getOpenerEventChannel() : null;
    if (channel && typeof channel.emit === 'function') {
      channel.emit('wxbridge:done', { result: lastResult(messages), messages: messages });
    }
  },
});

if (typeof module !== 'undefined') module.exports = { decodeSrc: decodeSrc, lastResult: lastResult };
