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
function runReturnPage(
  search,
  { sdk = null, ua = 'Mozilla/5.0', env = { miniprogram: true }, redirect = 'ok', html: source = null } = {},
) {
  const html = source || fs.readFileSync(path.join(PAGES, 'return.html'), 'utf8');
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
    if (redirect !== 'missing') {
      window.wx.miniProgram.redirectTo = (o) => {
        calls.push(['redirectTo', o.url]);
        if (redirect === 'fail') o.fail({ errMsg: 'redirectTo:fail page not found' });
        if (redirect === 'throw') throw new Error('no');
      };
    }
  }
  const replaced = [];
  window.history = { replaceState: (state, title, url) => replaced.push(url) };
  const ctx = {
    window,
    location: { search, pathname: '/wxbridge/return.html' },
    navigator: { userAgent: ua },
    document: {
      getElementById: (id) => el(id),
      createElement: (tag) => ({ tag }),
      querySelector: (sel) => {
        const m = /^meta\[name="([^"]+)"\]$/.exec(sel);
        const found = m && new RegExp(`<meta name="${m[1]}" content="([^"]*)">`).exec(html);
        return found ? { getAttribute: (k) => (k === 'content' ? found[1] : null) } : null;
      },
      head: { appendChild: (n) => appended.push(n) },
    },
    setTimeout: (fn) => timers.push(fn),
  };
  vm.runInNewContext(script, ctx);
  for (const fn of timers.splice(0)) fn();
  return { els, calls, appended, html, replaced };
}

/** Everything the return page put on screen. */
const shown = (els) => Object.values(els).map((e) => `${e.textContent} ${JSON.stringify(e.attrs)}`).join(' ');

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

// ---- confirmation by the ticket's owner (v1.1) ----

const CODE = 'cf_Zx9-Q7';

test('return.html with result=pending hands the code to the confirm page with redirectTo', () => {
  const r = runReturnPage(`?result=pending&confirm=${CODE}`, { sdk: true });
  assert.deepEqual(r.calls, [
    ['postMessage', { data: { wxbridge: 'result', result: 'pending' } }], // tells the web-view page
    ['redirectTo', `/pages/wxbridge/confirm?confirm=${CODE}`],
  ]);
  assert.equal(r.els.title.attrs['data-result'], 'pending');
  assert.doesNotMatch(shown(r.els), new RegExp(CODE)); // never displayed
  assert.deepEqual(r.replaced, ['/wxbridge/return.html?result=pending']); // and dropped from the address

  // The code is encoded into the page URL; its confirm page comes from the meta.
  const odd = runReturnPage('?confirm=a%26b%3Dc%2F&result=pending', { sdk: true });
  assert.equal(odd.calls.at(-1)[1], '/pages/wxbridge/confirm?confirm=a%26b%3Dc%2F');
  const html = fs
    .readFileSync(path.join(PAGES, 'return.html'), 'utf8')
    .replace('content="/pages/wxbridge/confirm"', 'content="/sub/auth/confirm"');
  const moved = runReturnPage(`?result=pending&confirm=${CODE}`, { sdk: true, html });
  assert.equal(moved.calls.at(-1)[1], `/sub/auth/confirm?confirm=${CODE}`);
  const bad = runReturnPage(`?result=pending&confirm=${CODE}`, {
    sdk: true,
    html: html.replace('content="/sub/auth/confirm"', 'content="https://evil.example/x"'),
  });
  assert.equal(bad.calls.at(-1)[1], `/pages/wxbridge/confirm?confirm=${CODE}`);
});

test('return.html: if redirectTo fails or is missing, it posts the code and goes back', () => {
  for (const redirect of ['fail', 'throw', 'missing']) {
    const r = runReturnPage(`?result=pending&confirm=${CODE}`, { sdk: true, redirect });
    const tail = r.calls.filter(([name]) => name !== 'redirectTo').slice(-2);
    assert.deepEqual(
      tail,
      [['postMessage', { data: { wxbridge: 'result', result: 'pending', confirm: CODE } }], ['navigateBack']],
      redirect,
    );
    assert.doesNotMatch(shown(r.els), new RegExp(CODE));
  }
});

test('return.html: pending without a code, or outside a mini program, links nothing and shows no code', () => {
  const noCode = runReturnPage('?result=pending', { sdk: true });
  assert.equal(noCode.els.title.textContent, 'unknown');
  assert.deepEqual(noCode.calls.map(([n]) => n), ['postMessage', 'navigateBack']);
  assert.equal(noCode.calls[0][1].data.result, 'unknown');

  const browser = runReturnPage(`?result=pending&confirm=${CODE}`);
  assert.deepEqual(browser.calls, []);
  assert.equal(browser.els.title.textContent, 'not linked');
  assert.doesNotMatch(shown(browser.els), new RegExp(CODE));

  const oa = runReturnPage(`?result=pending&confirm=${CODE}`, { sdk: true, env: { miniprogram: false } });
  assert.deepEqual(oa.calls, []);
  assert.equal(oa.els.title.textContent, 'not linked');

  // A code next to another result is ignored.
  const denied = runReturnPage(`?result=denied&confirm=${CODE}`, { sdk: true });
  assert.deepEqual(denied.calls, [['postMessage', { data: { wxbridge: 'result', result: 'denied' } }], ['navigateBack']]);
});

test('webview.js reports nothing when the pass went on to the confirm page', async () => {
  // The return page said 'pending' before its redirectTo.
  const said = loadPage();
  said.page.onLoad({ src: encodeURIComponent(TICKET_URL) });
  said.page.onUnload();
  said.page.onMessage({ detail: { data: [{ wxbridge: 'result', result: 'pending' }] } });
  // The bridge's own page says nothing, but the confirm page is now on top of the stack.
  const stack = loadPage();
  stack.page.onLoad({ src: encodeURIComponent(TICKET_URL) });
  globalThis.getCurrentPages = () => [{ route: 'pages/index/index' }, { route: 'pages/wxbridge/confirm', wxbridgeConfirm: true }];
  try {
    stack.page.onUnload();
    await new Promise((r) => setTimeout(r, 150));
  } finally {
    delete globalThis.getCurrentPages;
  }
  assert.deepEqual(said.emitted, []);
  assert.deepEqual(stack.emitted, []);

  // The user went back by hand: the opener is on top, so it reports null as before.
  const back = loadPage();
  back.page.onLoad({ src: encodeURIComponent(TICKET_URL) });
  globalThis.getCurrentPages = () => [{ route: 'pages/index/index' }];
  try {
    back.page.onUnload();
    await new Promise((r) => setTimeout(r, 150));
  } finally {
    delete globalThis.getCurrentPages;
  }
  assert.deepEqual(back.emitted.map(([n, p]) => [n, p.result]), [['wxbridge:done', null]]);
});

test('webview.js hands a posted confirm code to the opener once and keeps no copy', async () => {
  const { page, emitted } = loadPage();
  page.onLoad({ src: encodeURIComponent(TICKET_URL) });
  page.onMessage({
    detail: {
      data: [
        { wxbridge: 'result', result: 'pending' },
        { wxbridge: 'result', result: 'pending', confirm: CODE },
      ],
    },
  });
  page.onUnload();
  await new Promise((r) => setTimeout(r, 150));
  assert.deepEqual(emitted, [['wxbridge:confirm', { confirm: CODE }]]);
  assert.doesNotMatch(JSON.stringify(page._messages), new RegExp(CODE));
});

/** Loads confirm.js with stubbed Page(), getApp() and wx; returns a page instance. */
function loadConfirmPage(app, { nav = {} } = {}) {
  let def = null;
  globalThis.Page = (d) => {
    def = d;
  };
  const file = path.join(PAGES, 'confirm.js');
  delete require.cache[require.resolve(file)];
  const mod = require(file);
  delete globalThis.Page;
  const navs = [];
  const api = (name) => (o) => {
    navs.push([name, o.url || o.delta]);
    setTimeout(() => (nav[name] === 'fail' ? o.fail({ errMsg: `${name}:fail` }) : o.success({})), 1);
  };
  globalThis.wx = { navigateBack: api('navigateBack'), redirectTo: api('redirectTo'), switchTab: api('switchTab') };
  globalThis.getApp = () => app;
  const page = Object.assign(Object.create(def), {
    data: { ...def.data },
    leaveDelayMs: 0,
    setData(patch) {
      Object.assign(this.data, patch);
    },
  });
  return { page, navs, def, mod };
}

/** A client stub: records finishLink calls and answers with `result`. */
function stubClient(result, more = {}) {
  const calls = [];
  return {
    calls,
    finishLink: (code) => {
      calls.push(code);
      return Promise.resolve({ result, error: result === 'linked' ? undefined : { code: 'confirm_mismatch' } });
    },
    ...more,
  };
}

test('confirm.wxml shows the status; confirm.json is valid; the page marks itself for webview.js', () => {
  const wxml = fs.readFileSync(path.join(PAGES, 'confirm.wxml'), 'utf8');
  assert.match(wxml, /\{\{text\}\}/);
  assert.doesNotMatch(wxml, /confirm\}\}|\{\{code/);
  const json = JSON.parse(fs.readFileSync(path.join(PAGES, 'confirm.json'), 'utf8'));
  assert.equal(typeof json.navigationBarTitleText, 'string');
  assert.equal(loadConfirmPage(null).def.wxbridgeConfirm, true);
});

test('confirm.js asks the client to confirm the code from its options, then goes back', async () => {
  const client = stubClient('linked');
  const { page, navs } = loadConfirmPage({ bridge: client });
  page.onLoad({ confirm: CODE });
  assert.deepEqual(client.calls, [CODE]); // synchronously, in onLoad
  assert.equal(page.data.status, 'linking');
  const out = await page.finished;
  assert.equal(out.result, 'linked');
  assert.equal(page.data.status, 'linked');
  assert.deepEqual(navs, [['navigateBack', 1]]);
  assert.doesNotMatch(JSON.stringify(page.data), new RegExp(CODE));

  // Still encoded by the base library: decoded once. `wxbridge` is found before `bridge`.
  const enc = stubClient('linked');
  const second = loadConfirmPage({ wxbridge: enc, bridge: client });
  second.page.onLoad({ confirm: encodeURIComponent('a&b=c') });
  await second.page.finished;
  assert.deepEqual(enc.calls, ['a&b=c']);
});

test('confirm.js shows a refusal, and goes to linkDonePage when the client has one', async () => {
  const refused = loadConfirmPage({ bridge: stubClient('refused', { linkDonePage: '/pages/home/home' }) });
  refused.page.onLoad({ confirm: CODE });
  await refused.page.finished;
  assert.equal(refused.page.data.status, 'refused');
  assert.deepEqual(refused.navs, [['redirectTo', '/pages/home/home']]);

  // A tabBar page: redirectTo fails, switchTab works.
  const tab = loadConfirmPage({ bridge: stubClient(null, { linkDonePage: '/pages/tab/tab' }) }, { nav: { redirectTo: 'fail' } });
  tab.page.onLoad({ confirm: CODE });
  await tab.page.finished;
  assert.equal(tab.page.data.status, 'failed');
  assert.deepEqual(tab.navs, [['redirectTo', '/pages/tab/tab'], ['switchTab', '/pages/tab/tab']]);

  // No client on the App: nothing to confirm with, nowhere to report.
  const none = loadConfirmPage({});
  none.page.onLoad({ confirm: CODE });
  assert.equal((await none.page.finished).result, null);
  assert.equal(none.page.data.status, 'failed');
  assert.deepEqual(none.navs, []);
  delete globalThis.getApp;
});
