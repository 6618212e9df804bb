// Drives the escale dashboard in Debian's headless Chromium. Run by
// tests/admin_dashboard.rs, which owns the proxy and the dynamic file:
//   env DASHBOARD_URL  the dashboard (http://127.0.0.1:PORT/dashboard/)
//   env SHOT_DIR       where screenshots go (under target/)
// Protocol on stdio: prints "STEP ready-for-route" and waits for a line
// "route-added <router name>" on stdin; prints "PASS" at the end. Any
// failure throws, which exits non-zero with the reason.
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const url = process.env.DASHBOARD_URL;
const shots = process.env.SHOT_DIR;
if (!url || !shots) throw new Error("DASHBOARD_URL and SHOT_DIR are required");
mkdirSync(shots, { recursive: true });

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function expectLine(prefix) {
  const { value, done } = await lines.next();
  if (done || !value.startsWith(prefix)) throw new Error(`expected "${prefix}" on stdin, got ${value}`);
  return value.slice(prefix.length).trim();
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  console.log(`ok - ${what}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
try {
  // A new, empty profile per run (Playwright's launch makes one).
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  const outside = [];
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (u.origin !== new URL(url).origin) outside.push(r.url());
  });
  const consoleErrors = [];
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
  page.on("pageerror", (e) => consoleErrors.push(String(e)));

  await page.goto(url + "#routers", { waitUntil: "domcontentloaded" });
  await page.locator("#live.on").waitFor({ timeout: 10000 });
  check(true, "live stream connected");

  // A router and its servers.
  const web = page.locator('tr.row[data-name="web@file"]');
  await web.waitFor({ timeout: 10000 });
  check((await web.innerText()).includes("Host(`a.test`)"), "router web@file shows its rule");
  check((await web.innerText()).includes("app@file"), "router web@file shows its service");
  await web.focus();
  await page.keyboard.press("Enter");
  const detail = page.locator("tr.detail table.servers");
  await detail.waitFor({ timeout: 5000 });
  const serverText = await detail.innerText();
  const servers = JSON.parse(process.env.SERVERS || "[]");
  for (const s of servers) check(serverText.includes(s), `server ${s} listed under its router`);
  check(serverText.includes("UP"), "server health shown");
  await page.screenshot({ path: join(shots, "dashboard-routers.png"), fullPage: true });

  // Services view, reached with the keyboard.
  await page.keyboard.press("3");
  await page.locator('section[data-service="app@file"]').waitFor({ timeout: 5000 });
  const svc = await page.locator('section[data-service="app@file"]').innerText();
  for (const s of servers) check(svc.includes(s), `service card lists ${s}`);
  check(/In flight/i.test(svc) && /p99/i.test(svc), "live columns shown");
  const canary = await page.locator('section[data-service="canary@file"]').innerText();
  check(/weighted/i.test(canary), "a weighted service shows its type");
  check(canary.includes("app") && canary.includes("weight 3"), "a weighted service lists its children and weights");
  await page.screenshot({ path: join(shots, "dashboard-services.png"), fullPage: true });

  // The configuration error stands out: banner, router row and issues view.
  check(await page.locator("#banner:not([hidden])").isVisible(), "error banner visible");
  await page.keyboard.press("6");
  const issue = page.locator("tr.has-error", { hasText: "broken@file" });
  await issue.waitFor({ timeout: 5000 });
  const issueText = await issue.innerText();
  check(issueText.includes("rule"), "issue shows the key at fault");
  check(issueText.includes("Hots"), "issue shows the reason");
  await page.screenshot({ path: join(shots, "dashboard-issues.png"), fullPage: true });

  // Search with the keyboard.
  await page.keyboard.press("2");
  await page.keyboard.press("/");
  await page.keyboard.type("a.test");
  await page.waitForFunction(() => document.querySelectorAll("tr.row").length === 1);
  check((await page.locator("tr.row").first().getAttribute("data-name")) === "web@file", "search filters routers");
  await page.keyboard.press("Escape");

  // Live update: no reload, the new router appears by itself.
  await page.evaluate(() => (window.__sameDocument = true));
  console.log("STEP ready-for-route");
  const added = await expectLine("route-added ");
  await page.locator(`tr.row[data-name="${added}"]`).waitFor({ timeout: 15000 });
  check(await page.evaluate(() => window.__sameDocument === true), `router ${added} appeared without a reload`);
  await page.keyboard.press("1");
  await page.locator(".feed li", { hasText: added }).waitFor({ timeout: 5000 });
  check(true, "recent changes list the new router");
  await page.screenshot({ path: join(shots, "dashboard-overview.png"), fullPage: true });

  check(outside.length === 0, `no request leaves the proxy's origin (${outside.join(", ")})`);
  check(consoleErrors.length === 0, `no console errors (${consoleErrors.join("; ")})`);
  console.log("PASS");
} finally {
  await browser.close();
}
process.exit(0);
