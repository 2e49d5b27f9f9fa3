// Runs one scripted browser visit with playwright-core driving Debian's
// Chromium (no browser download), for the Python e2e tests (tests/e2e/pw.py).
//
// stdin: {"cookies": [{"name", "value", "url"}], "steps": [step, ...]}
// step:  {"goto": url} | {"click": selector} | {"text": selector}
//        | {"wait_text": text, "timeout": ms} | {"title": true}
//        | {"count": selector}
// stdout: {"results": [...one per step...], "requests": [urls],
//          "console": [types], "errors": [texts]}
// A failing step ends the run: {"error": "...", "step": i, ...}.
import { chromium } from 'playwright-core';

const input = JSON.parse(await new Promise((resolve) => {
  let s = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d) => { s += d; });
  process.stdin.on('end', () => resolve(s));
}));

const browser = await chromium.launch({
  executablePath: process.env.DD_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const out = { results: [], requests: [], console: [], errors: [] };
let code = 0;
try {
  const context = await browser.newContext();
  if (input.cookies && input.cookies.length) await context.addCookies(input.cookies);
  const page = await context.newPage();
  page.on('request', (r) => out.requests.push(r.url()));
  page.on('console', (m) => out.console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => out.errors.push(String(e)));
  for (const [i, step] of (input.steps || []).entries()) {
    try {
      if (step.goto !== undefined) {
        const r = await page.goto(step.goto, { waitUntil: 'load' });
        out.results.push(r ? r.status() : null);
      } else if (step.click !== undefined) {
        await Promise.all([
          page.waitForLoadState('load'),
          page.locator(step.click).first().click({ timeout: 10000 }),
        ]);
        out.results.push(page.url());
      } else if (step.text !== undefined) {
        out.results.push(await page.locator(step.text).first().innerText({ timeout: 10000 }));
      } else if (step.count !== undefined) {
        out.results.push(await page.locator(step.count).count());
      } else if (step.wait_text !== undefined) {
        await page.getByText(step.wait_text).first().waitFor({ timeout: step.timeout || 10000 });
        out.results.push(true);
      } else if (step.title) {
        out.results.push(await page.title());
      } else {
        throw new Error(`unknown step ${JSON.stringify(step)}`);
      }
    } catch (e) {
      out.error = String(e && e.message ? e.message : e);
      out.step = i;
      code = 1;
      break;
    }
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out));
process.exitCode = code;
