// The devstack demo page, clicked through in Debian's headless Chromium (driven by playwright-core).
//
//   DEVSTACK_URL=http://127.0.0.1:8080 node --test tests/browser/
//
// scripts/browser-test installs what this needs, starts devstack and runs it. A screenshot of the
// page goes to test-artifacts/demo.png (or $WXBRIDGE_ARTIFACTS/demo.png), pass or fail.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const BASE = (process.env.DEVSTACK_URL || "").replace(/\/+$/, "");
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const ARTIFACTS = process.env.WXBRIDGE_ARTIFACTS || join(ROOT, "test-artifacts");
const SCREENSHOT = join(ARTIFACTS, "demo.png");
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
// Without the background-networking flags Chromium keeps calling home on a closed network.
const ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync"];
const WAIT = 15_000;
const PLATFORM_MP = "wx1a2b3c4d5e6f7001";

describe("devstack demo page", () => {
  let context, page, profile;
  let broken = false;           // a failed step skips the ones after it (they build on it)
  const pageErrors = [];

  before(async () => {
    assert.ok(BASE, "DEVSTACK_URL is required (e.g. http://127.0.0.1:8080); scripts/browser-test sets it");
    profile = mkdtempSync(join(tmpdir(), "wxbridge-chromium-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport: { width: 1360, height: 900 },
    });
    page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(WAIT);
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    page.on("console", (m) => { if (m.type() === "error") pageErrors.push(m.text()); });
  });

  after(async () => {
    try {
      if (page) {
        mkdirSync(ARTIFACTS, { recursive: true });
        await page.evaluate(() => window.scrollTo(0, 0));   // the log panel is sticky
        await page.screenshot({ path: SCREENSHOT, fullPage: true });
        console.log(`screenshot: ${SCREENSHOT}`);
      }
    } finally {
      if (context) await context.close();
      if (profile) rmSync(profile, { recursive: true, force: true });
    }
  });

  // A step of the walk: skipped once an earlier one failed.
  const step = (name, fn) => it(name, async (t) => {
    if (broken) return t.skip("an earlier step failed");
    try { await fn(); } catch (e) { broken = true; throw e; }
  });

  // Waits until the element's visible text matches, then returns that text.
  async function textOf(selector, pattern) {
    const loc = page.locator(selector);
    await loc.waitFor({ state: "visible" });
    const deadline = Date.now() + WAIT;
    let text = "";
    while (Date.now() < deadline) {
      text = await loc.innerText();
      if (!pattern || pattern.test(text)) return text;
      await page.waitForTimeout(100);
    }
    assert.fail(`${selector}: ${JSON.stringify(text)} does not match ${pattern}`);
  }

  async function runWebview(which, label) {
    await page.selectOption("#webview-app", which);
    await page.click("#run-webview");
    await textOf("#webview-status", new RegExp(`Linked: ${label} now says pivot_linked true`));
    assert.equal(await page.getAttribute("#webview-status", "data-state"), "linked");
    // The pass itself ends pending, with a code only the mini program that asked may confirm.
    const h1 = page.frameLocator("#webview-frame").locator("h1");
    assert.equal(await h1.getAttribute("data-result"), "pending");
    await textOf("#log", /POST\s+\/v1\/auth\/confirm\s+200/);
  }

  const personOf = (which) => page.locator(`#mp-row-${which} .person`).innerText();

  step("opens at / as alice and loads the demo tenant", async () => {
    const resp = await page.goto(`${BASE}/`);
    assert.equal(resp.status(), 200);
    assert.match(resp.headers()["content-type"], /^text\/html/);
    assert.equal(await page.title(), "wxbridge devstack demo");
    assert.equal(await page.inputValue("#user"), "alice");
    await textOf("#log", /GET\s+\/sim\/apps\s+200/);
  });

  step("opens the platform mini program: a person, not yet pivot-linked", async () => {
    await page.click("#open-platform-mp");
    const text = await textOf("#mp-result", /the platform mini program: person \S+, pivot_linked false/);
    assert.match(text, /run its web-view/);
    assert.match(await personOf("platform"), /^[0-9a-f-]{36}$/);
    await textOf("#log", /POST\s+\/v1\/mp\/login\s+200/);
  });

  step("opens merchant 1's mini program: another person so far", async () => {
    await page.click("#open-merchant-mp");
    await textOf("#mp-result", /merchant 1's mini program: person \S+, pivot_linked false/);
    assert.notEqual(await personOf("merchant"), await personOf("platform"));
    assert.equal(await page.inputValue("#webview-app"), "merchant", "the web-view is for the current mini program");
  });

  step("runs the web-view for each mini program: one person, shown to each owner as its own id", async () => {
    await runWebview("merchant", "merchant 1's mini program");
    await textOf("#webview-status", /Next: the platform mini program still says pivot_linked false/);
    await runWebview("platform", "the platform mini program");
    // Merchant 1 is a tenant: it sees its pairwise id, never the platform's (translation
    // below shows they are one person).
    assert.notEqual(await personOf("platform"), await personOf("merchant"));
    assert.match(await personOf("merchant"), /^[0-9a-f-]{36}$/);
    assert.equal(await page.locator("#mp-row-platform .linked").innerText(), "true");
    assert.equal(await page.locator("#mp-row-merchant .linked").innerText(), "true");
    await textOf("#log", /POST\s+\/v1\/auth\/tickets\s+201/);
    await textOf("#log", /\/v1\/auth\/callback\?code=/);
    // The browser holds the pass's cookie: HttpOnly, SameSite=Lax, host-only (plain HTTP here,
    // so no __Host- prefix).
    const pass = (await context.cookies()).filter((c) => /^wxb_/.test(c.name));
    assert.ok(pass.length > 0, "a pass cookie");
    for (const c of pass) {
      assert.equal(c.httpOnly, true);
      assert.equal(c.sameSite, "Lax");
      assert.equal(c.path, "/");
    }
  });

  step("lists the person's linked identities: at least three", async () => {
    await page.click("#show-me");
    const head = await textOf("#me-count", /\d+ linked identities/);
    const items = await page.locator("#me-list li").allInnerTexts();
    assert.ok(items.length >= 3, `${head}: ${items.join(" | ")}`);
    assert.equal(Number(head.match(/(\d+) linked identities/)[1]), items.length);
    for (const name of ["Platform mini program", "Platform official account (pivot)", "Merchant 1 mini program"]) {
      assert.ok(items.some((i) => i.startsWith(name)), `${name} missing from ${items.join(" | ")}`);
    }
    assert.match(head, new RegExp(await personOf("platform")));
  });

  step("translates the platform's openid to merchant 1's", async () => {
    await page.click("#translate");
    const text = await textOf("#translate-result", /merchant 1 openid \S+/);
    const openid = text.match(/merchant 1 openid (\S+)/)[1];
    assert.match(openid, /^[A-Za-z0-9_-]{6,64}$/);
    assert.equal(openid, await page.locator("#mp-row-merchant .openid").innerText());
    await textOf("#log", /GET\s+\/v1\/translate\?from_appid=\S+\s+200/);
  });

  step("binds a website user by scanning the scene QR code and confirming in WeChat", async () => {
    await page.click("#qr-bind");
    const text = await textOf("#qr-status", /: (bound|expired|refused)/);
    assert.equal(await page.frameLocator("#wechat-frame").locator("h1").getAttribute("data-result"), "bound");
    assert.match(text, /: bound — site user web-user-1/);
    // The site is a tenant too: its own pairwise id of the person.
    assert.match(text, /person [0-9a-f-]{36}/);
    assert.doesNotMatch(text, new RegExp(await personOf("platform")));
    await textOf("#log", /POST\s+\/sim\/users\/alice\/scan\s+200/);
  });

  step("gets a login link from the official account menu and redeems it", async () => {
    await page.click("#menu-link");
    await textOf("#menu-reply", /The pivot replied: .+/);
    const url = await textOf("#menu-url", /^https?:\/\/\S+signature=/);
    assert.match(url, /openid=[A-Za-z0-9_-]+/);
    assert.ok(await page.isEnabled("#menu-bind"));
    await page.click("#menu-bind");
    const text = await textOf("#bind-result", /bound to person/);
    assert.match(text, /Site user web-user-1 bound to person [0-9a-f-]{36}: \d+ linked/);
    assert.doesNotMatch(text, new RegExp(await personOf("platform")));
    await textOf("#log", /POST\s+\/v1\/site\/bind\s+200/);
    await textOf("#log", /\/site\/login\?wxbridge_code=/);
  });

  step("onboards merchant 4 through WeChat's authorization page and logs a person into its mini program", async () => {
    await page.click("#onboard-m4");
    const text = await textOf("#component-result", /merchant 4 (authorized|error)/);
    assert.match(text, /merchant 4 authorized: wx/);
    assert.equal(await page.frameLocator("#merchant-frame").locator("h1").getAttribute("data-result"), "authorized");
    await page.click("#open-m4-mp");
    const login = await textOf("#component-result", /logged into merchant 4's mini program|HTTP/);
    assert.match(login, /through the platform: person [0-9a-f-]{36}, openid \S+/);
    await textOf("#log", /POST\s+\/v1\/admin\/merchants\/m4\/onboarding\s+201/);
  });

  step("a WeChat authorize URL forwarded to another browser links nothing", async () => {
    // Mallory's pass: in this browser, up to WeChat's authorize URL.
    const api = context.request;
    const sim = await (await api.post(`${BASE}/sim/users/mallory/login`, { data: { appid: PLATFORM_MP } })).json();
    const login = await (await api.post(`${BASE}/v1/mp/login`, { data: { appid: PLATFORM_MP, code: sim.code } })).json();
    const headers = { authorization: `Bearer ${login.token}` };
    const ticket = await (await api.post(`${BASE}/v1/auth/tickets`, { data: {}, headers })).json();
    const start = await api.get(ticket.url, { maxRedirects: 0 });
    assert.equal(start.status(), 302);
    const authorize = start.headers().location.split("#")[0];
    // Another person's browser: no cookie of that pass; WeChat sends it back as that person.
    const other = await context.newPage();
    try {
      await context.clearCookies();
      await context.addCookies([{ name: "wxsim_user", value: "bob", url: BASE }]);
      await other.goto(authorize);
      const body = await other.locator("body").innerText();
      assert.match(body, /"code":"state_invalid"/, body);
      assert.match(other.url(), /\/v1\/auth\/callback\?code=/);
    } finally {
      await other.close();
    }
    const me = await (await api.get(`${BASE}/v1/me`, { headers })).json();
    assert.equal(me.linked.length, 1, "Mallory gained nothing");
  });

  step("showed no script errors", async () => {
    assert.deepEqual(pageErrors, []);
  });
});
