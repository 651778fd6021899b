'use strict';
// Tests for the web-view page (pages/wxbridge/webview.*) and the return page (return.html).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

const PAGES = path.join(__dirname, '..', 'pages', 'wxbridge');
const TICKET_URL = 'https://id.example.com/v1/auth/start?ticket=T1&x=a b';

/** Loads webview.js with a stubbed `Page()` and returns a page instance. */
function loadPage() {
  let def = null;
  globalThis.Page = (d) => {
    def = d;
  };
  const file = path.join(PAGES, 'webview.js');
  delete require.cache[require.resolve(file)];
  const mod = require(file);
  delete globalThis.Page;
  const emitted = [];
  const page = Object.assign(Object.create(def), {
    data: { ...def.data },
    setData(patch) {
      Object.assign(this.data, patch);
    },
    getOpenerEventChannel() {
      return { emit: (name, payload) => emitted.push([name, payload]) };
    },
  });
  return { page, emitted, mod };
}

test('webview.wxml binds src and onMessage; webview.json is valid', () => {
  const wxml = fs.readFileSync(path.join(PAGES, 'webview.wxml'), 'utf8');
  assert.match(wxml, /<web-view[^>]*\ssrc="\{\{src\}\}"[^>]*\sbindmessage="onMessage"[^>]*\/>/);
  const json = JSON.parse(fs.readFileSync(path.join(PAGES, 'webview.json'), 'utf8'));
  assert.equal(typeof json.navigationBarTitleText, 'string');
});

test('webview.js decodes src from the query', () => {
  const { page } = loadPage();
  page.onLoad({ src: encodeURIComponent(TICKET_URL) });
  assert.equal(page.data.src, TICKET_URL);

  const again = loadPage().page;
  again.onLoad({ src: TICKET_URL }); // already decoded by the base library
  assert.equal(again.data.src, TICKET_URL);

  for (const bad of [undefined, '', 'javascript%3Aalert(1)', '%E0%A4%A']) {
    const p = loadPage().page;
    p.onLoad({ src: bad });
    assert.equal(p.data.src, '', String(bad));
    assert.ok(p.data.error);
  }
});

test('webview.js reports the result from the return page to the opener once', async () => {
  const { page, emitted } = loadPage();
  page.onLoad({ src: encodeURIComponent(TICKET_URL) });
  page.onMessage({ detail: { data: [{ wxbridge: 'result', result: 'linked' }] } });
  page.onUnload();
  await new Promise((r) => setTimeout(r, 150));
  assert.deepEqual(emitted, [
    ['wxbridge:done', { result: 'linked', messages: [{ wxbridge: 'result', result: 'linked' }] }],
  ]);
});

test('webview.js waits a moment after unload for a late message, else reports null', async () => {
  const late = loadPage();
  late.page.onLoad({ src: encodeURIComponent(TICKET_URL) });
  late.page.onUnload();
  late.page.onMessage({ detail: { data: [{ wxbridge: 'result', result: 'denied' }] } });
  await new Promise((r) => setTimeout(r, 150));
  assert.deepEqual(late.emitted.map(([, p]) => p.result), ['denied']);

  const none = loadPage();
  none.page.onLoad({ src: encodeURIComponent(TICKET_URL) });
  none.page.onUnload();
  await new Promise((r) => setTimeout(r, 150));
  assert.deepEqual(none.emitted.map(([, p]) => p.result), [null]);
});

/** Runs return.html's inline script against a minimal DOM. */
function runReturnPage(search, { sdk = null, ua = 'Mozilla/5.0', env = { miniprogram: true } } = {}) {
  const html = fs.readFileSync(path.join(PAGES, 'return.html'), 'utf8');
  const script = /<script>([\s\S]*?)<\/script>/.exec(html)[1];
  const els = {};
  const el = (id) =>
    (els[id] ||= {
      id,
      attrs: {},
      textContent: '',
      hidden: true,
      setAttribute(k, v) {
        this.attrs[k] = v;
      },
    });
  for (const id of ['title', 'text', 'back']) el(id);
  const appended = [];
  const calls = [];
  const timers = [];
  const window = {};
  if (sdk) {
    window.wx = {
      miniProgram: {
        getEnv: (cb) => cb(env),
        postMessage: (m) => calls.push(['postMessage', JSON.parse(JSON.stringify(m))]),
        navigateBack: () => calls.push(['navigateBack']),
      },
    };
  }
  const ctx = {
    window,
    location: { search },
    navigator: { userAgent: ua },
    document: {
      getElementById: (id) => el(id),
      createElement: (tag) => ({ tag }),
      head: { appendChild: (n) => appended.push(n) },
    },
    setTimeout: (fn) => timers.push(fn),
  };
  vm.runInNewContext(script, ctx);
  for (const fn of timers.splice(0)) fn();
  return { els, calls, appended, html };
}

test('return.html shows linked/denied from ?result= and goes back with the JSSDK', () => {
  const linked = runReturnPage('?result=linked', { sdk: true });
  assert.equal(linked.els.title.textContent, 'linked');
  assert.equal(linked.els.title.attrs['data-result'], 'linked');
  assert.deepEqual(linked.calls, [
    ['postMessage', { data: { wxbridge: 'result', result: 'linked' } }],
    ['navigateBack'],
  ]);

  const denied = runReturnPage('?foo=1&result=denied', { sdk: true });
  assert.equal(denied.els.title.textContent, 'denied');
  assert.equal(denied.calls.at(-1)[0], 'navigateBack');

  // Anything else is not echoed into the page.
  const odd = runReturnPage('?result=%3Cimg%20src%3Dx%3E', { sdk: true });
  assert.equal(odd.els.title.textContent, 'unknown');
});

test('return.html outside a mini program: shows the result, no navigateBack', () => {
  const browser = runReturnPage('?result=linked');
  assert.equal(browser.els.title.textContent, 'linked');
  assert.deepEqual(browser.calls, []);
  assert.equal(browser.appended.length, 0);

  const oa = runReturnPage('?result=linked', { sdk: true, env: { miniprogram: false } });
  assert.deepEqual(oa.calls, []);

  // In WeChat without the SDK yet: it loads the JSSDK.
  const inWechat = runReturnPage('?result=denied', { ua: 'Mozilla/5.0 MicroMessenger/8.0 miniProgram' });
  assert.equal(inWechat.appended.length, 1);
  assert.match(inWechat.appended[0].src, /^https:\/\/res\.wx\.qq\.com\/open\/js\/jweixin-1\.6\.0\.js$/);
  assert.equal(typeof inWechat.appended[0].onload, 'function');
});
