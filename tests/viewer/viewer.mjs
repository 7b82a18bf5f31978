// The viewer in a real browser (Debian's chromium, driven by playwright-core)
// against a real agent, checked by what is visible on the page. Started by
// tests/read/viewer.rs, which runs the agent and passes, in the environment:
//
//   LOGSHIP_VIEWER_URL           http://127.0.0.1:PORT (the agent's [api] listener)
//   LOGSHIP_VIEWER_TOKEN         the [api] token
//   LOGSHIP_VIEWER_LOGS          the directory the agent tails (app.log: tier
//                                system; builds/*.log: tier build)
//   LOGSHIP_VIEWER_SEED          JSON: the error groups already written
//                                [{"text": "...", "count": N}, ...]
//   LOGSHIP_VIEWER_SHOTS         where to save the screenshots
//   LOGSHIP_VIEWER_NODE_MODULES  the directory holding node_modules/playwright-core
//
// Every step prints a line; the first failed check throws, and the script
// exits non-zero with the reason (the Rust test shows it).

import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set (run this through cargo test --test read viewer)`);
  return v;
};
const BASE = env('LOGSHIP_VIEWER_URL');
const TOKEN = env('LOGSHIP_VIEWER_TOKEN');
const LOGS = env('LOGSHIP_VIEWER_LOGS');
const SEED = JSON.parse(env('LOGSHIP_VIEWER_SEED'));
const SHOTS = env('LOGSHIP_VIEWER_SHOTS');
const require = createRequire(join(env('LOGSHIP_VIEWER_NODE_MODULES'), 'node_modules', '/'));
const { chromium } = require('playwright-core');

const ORIGIN = new URL(BASE).origin;
const DEADLINE_MS = 20_000;

// ---- helpers -------------------------------------------------------------

let stepNo = 0;
function step(text) {
  stepNo++;
  console.log(`[viewer] ${stepNo}. ${text}`);
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Poll `fn` until it returns a truthy value, or fail naming `what`. */
async function waitFor(what, fn, timeout = DEADLINE_MS) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await sleep(100);
  }
}

let lineNo = 0;
/** Append JSON log lines to a file under the tailed directory. */
function write(file, events) {
  const text = events.map((e) => JSON.stringify({ time: new Date().toISOString(), ...e })).join('\n') + '\n';
  appendFileSync(join(LOGS, file), text);
  lineNo += events.length;
}

/** The rendered rows of a list: what a user sees. */
async function rows(page, list) {
  return page.$$eval(`${list} .row:not([hidden])`, (els) =>
    els
      .map((el) => ({
        top: el.getBoundingClientRect().top,
        lvl: el.querySelector('.l')?.textContent ?? '',
        tier: el.querySelector('.tier')?.textContent ?? '',
        src: el.querySelector('.src')?.textContent ?? '',
        ids: el.querySelector('.ids')?.textContent ?? '',
        msg: el.querySelector('.m')?.textContent ?? '',
      }))
      .sort((a, b) => a.top - b.top),
  );
}

const tailRows = (page) => rows(page, '#tail-list');

/** What a tail of a web app and its builds looks like; `tag` keeps rounds apart. */
function writeRealisticMix(tag) {
  write('app.log', [
    { level: 'info', msg: `GET /api/projects 200 in 12ms${tag}`, reqId: 'req-7f3a', userId: 'u-1001' },
    { level: 'debug', msg: `cache hit projects:list${tag}`, reqId: 'req-7f3a' },
    { level: 'info', msg: `worker started (pool=4)${tag}`, projectId: 'acme-web' },
    { level: 'warn', msg: `slow query: SELECT * FROM builds took 1840ms${tag}`, reqId: 'req-9b21' },
    { level: 'error', msg: `upstream timeout after 30000ms: POST /v1/charge${tag}`, reqId: 'req-c0de', userId: 'u-2002', retry: { attempt: 3, max: 3 } },
  ]);
  write(`builds/b-100.log`, [
    { level: 'info', msg: `Cloning repository acme/web@main${tag}`, buildId: 'b-100', projectId: 'acme-web' },
    { level: 'info', msg: `npm ci: added 1204 packages in 31s${tag}`, buildId: 'b-100', projectId: 'acme-web' },
    { level: 'warn', msg: `npm warn deprecated inflight@1.0.6${tag}`, buildId: 'b-100', projectId: 'acme-web' },
    { level: 'info', msg: `Build completed in 94s${tag}`, buildId: 'b-100', projectId: 'acme-web', durationMs: 94211 },
  ]);
}
const hasMsg = (rs, text) => rs.some((r) => r.msg.includes(text));

/**
 * The filter check: write events that should pass and events that should
 * not, until one that should pass shows up (a write can race the reconnect
 * that the filter change caused, so each round writes fresh ones); then no
 * event that should not pass may be visible, and every visible row must
 * satisfy `visibleOk`.
 */
async function expectFiltered(page, what, { pass, fail, visibleOk }) {
  let round = 0;
  const passMarks = [];
  const failMarks = [];
  await waitFor(`${what}: a matching event in the tail`, async () => {
    round++;
    const p = pass(round);
    const f = fail(round);
    for (const [file, ev] of f) write(file, [ev]);
    for (const [file, ev] of p) write(file, [ev]);
    passMarks.push(...p.map(([, ev]) => ev.msg));
    failMarks.push(...f.map(([, ev]) => ev.msg));
    const end = Date.now() + 3000;
    while (Date.now() < end) {
      const rs = await tailRows(page);
      if (passMarks.some((m) => hasMsg(rs, m))) return true;
      await sleep(100);
    }
    return false;
  });
  // Give the events written with the match their chance to arrive too.
  await sleep(500);
  const rs = await tailRows(page);
  for (const m of failMarks) check(!hasMsg(rs, m), `${what}: "${m}" must be filtered out; visible: ${rs.map((r) => r.msg).join(' | ')}`);
  for (const r of rs) check(visibleOk(r), `${what}: visible row does not match the filter: ${JSON.stringify(r)}`);
  check(rs.length > 0, `${what}: rows visible`);
}

async function setFilter(page, label, value) {
  const field = page.getByLabel(label, { exact: true });
  const tag = await field.evaluate((el) => el.tagName);
  if (tag === 'SELECT') await field.selectOption(value);
  else {
    await field.fill(value);
    await field.press('Enter');
  }
}

async function clearFilters(page) {
  await page.getByRole('button', { name: 'Clear filters' }).click();
}

// ---- the run ---------------------------------------------------------------

// A fresh profile (--user-data-dir) per run: no state from an earlier run.
const userDir = mkdtempSync(join(tmpdir(), 'logship-viewer-chromium-'));
mkdirSync(SHOTS, { recursive: true });
const ctx = await chromium.launchPersistentContext(userDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 720 },
  colorScheme: 'light',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});

const requests = []; // every request any page made: {url, headers}
const consoleErrors = [];

// Every request of every tab, service workers included.
ctx.on('request', (r) => requests.push({ url: r.url(), headers: r.headers() }));

function watchConsole(page) {
  page.on('response', async (r) => {
    if (r.status() >= 400) consoleErrors.push(`HTTP ${r.status()} for ${r.url()}: ${(await r.text().catch(() => '')).trim()}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => consoleErrors.push(`page error: ${e.message}`));
}

let exitCode = 0;
try {
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: ORIGIN });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  watchConsole(page);

  // A realistic mix first, so the screenshots show what a tail looks like.
  writeRealisticMix('');

  step('the page loads and asks for the token');
  await page.goto(`${BASE}/`);
  const dialog = page.getByRole('dialog', { name: 'Connect to this agent' });
  await dialog.waitFor({ state: 'visible' });
  await page.screenshot({ path: join(SHOTS, 'token.png') });

  step('the token is entered where the page asks for it');
  await page.getByLabel('API token', { exact: true }).fill(TOKEN);
  await page.getByRole('button', { name: 'Connect' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await waitFor('the status to say live', async () => (await page.textContent('#conn')) === 'live');
  check((await page.evaluate(() => sessionStorage.getItem('logship.token'))) === TOKEN, 'token kept in sessionStorage');
  check((await page.evaluate(() => localStorage.length)) === 0, 'nothing in localStorage');

  step('live lines appear');
  await expectFiltered(page, 'live tail', {
    pass: (n) => [['app.log', { level: 'info', msg: `hello from the live tail ${n}` }]],
    fail: () => [],
    visibleOk: () => true,
  });
  await page.screenshot({ path: join(SHOTS, 'tail.png') });

  step('each event opens to its full JSON, with copy buttons');
  const target = page.locator('#tail-list .row', { hasText: 'upstream timeout' });
  await target.first().click();
  await page.locator('#detail').waitFor({ state: 'visible' });
  const json = await page.textContent('#detail-json');
  check(json.includes('"retry": {') && json.includes('"attempt": 3'), `data pretty-printed in the details: ${json}`);
  const shown = JSON.parse(json);
  check(shown.msg === 'upstream timeout after 30000ms: POST /v1/charge' && shown.lvl === 'error', `details are the event: ${json}`);
  await page.getByRole('button', { name: 'Copy JSON' }).click();
  await waitFor('the copy confirmation', async () => (await page.textContent('#copy-status')) === 'Copied');
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  check(JSON.parse(copied).seq === shown.seq, 'the clipboard holds the event JSON');
  await page.screenshot({ path: join(SHOTS, 'detail.png') });
  await page.keyboard.press('Escape');
  await page.locator('#detail').waitFor({ state: 'hidden' });

  step('level filter: at least warn');
  await setFilter(page, 'Level at least', 'warn');
  await expectFiltered(page, 'level filter', {
    pass: (n) => [['app.log', { level: 'warn', msg: `lvl-pass warn ${n}` }], ['app.log', { level: 'error', msg: `lvl-pass error ${n}` }]],
    fail: (n) => [['app.log', { level: 'info', msg: `lvl-fail info ${n}` }], ['app.log', { level: 'debug', msg: `lvl-fail debug ${n}` }]],
    visibleOk: (r) => ['WARN', 'ERROR'].includes(r.lvl.toUpperCase()),
  });
  await setFilter(page, 'Level at least', '');

  step('text filter: literal text, special characters included');
  await setFilter(page, 'Text', 'needle(1).x');
  await expectFiltered(page, 'text filter', {
    pass: (n) => [['app.log', { level: 'info', msg: `found needle(1).x round ${n}` }]],
    fail: (n) => [['app.log', { level: 'info', msg: `found needle1x round ${n}` }], ['app.log', { level: 'info', msg: `haystack round ${n}` }]],
    visibleOk: (r) => r.msg.includes('needle(1).x'),
  });

  step('text filter: a regex');
  await page.getByLabel('regex', { exact: true }).check();
  await setFilter(page, 'Text', '^re-[0-9]+ ok$');
  await expectFiltered(page, 'regex filter', {
    pass: (n) => [['app.log', { level: 'info', msg: `re-${n} ok` }]],
    fail: (n) => [['app.log', { level: 'info', msg: `re-${n} ok, not` }], ['app.log', { level: 'info', msg: `re-x${n} ok` }]],
    visibleOk: (r) => /^re-[0-9]+ ok$/.test(r.msg),
  });
  await page.getByLabel('regex', { exact: true }).uncheck();
  await clearFilters(page);

  step('tier filter');
  await setFilter(page, 'Tier', 'build');
  await expectFiltered(page, 'tier filter', {
    pass: (n) => [['builds/b-7.log', { level: 'info', msg: `tier-pass ${n}`, buildId: 'b-7' }]],
    fail: (n) => [['app.log', { level: 'info', msg: `tier-fail ${n}` }]],
    visibleOk: (r) => r.tier === 'build',
  });
  await clearFilters(page);

  for (const [label, key, short] of [
    ['Build', 'buildId', 'build'],
    ['Project', 'projectId', 'project'],
    ['User', 'userId', 'user'],
    ['Request', 'reqId', 'req'],
  ]) {
    step(`${key} filter`);
    await setFilter(page, label, `${key}-A`);
    await expectFiltered(page, `${key} filter`, {
      pass: (n) => [['app.log', { level: 'info', msg: `${key}-pass ${n}`, [key]: `${key}-A` }]],
      fail: (n) => [
        ['app.log', { level: 'info', msg: `${key}-fail ${n}`, [key]: `${key}-B` }],
        ['app.log', { level: 'info', msg: `${key}-none ${n}` }],
      ],
      visibleOk: (r) => r.ids.split(' ').includes(`${short}:${key}-A`),
    });
    await setFilter(page, label, '');
  }

  step('source filter');
  await setFilter(page, 'Source', 'builds');
  await expectFiltered(page, 'source filter', {
    pass: (n) => [['builds/b-8.log', { level: 'info', msg: `src-pass ${n}`, buildId: 'b-8' }]],
    fail: (n) => [['app.log', { level: 'info', msg: `src-fail ${n}` }]],
    visibleOk: (r) => r.src === 'builds',
  });
  await clearFilters(page);

  step('the filters live in the URL fragment, and a reload keeps the view');
  await setFilter(page, 'Level at least', 'warn');
  await setFilter(page, 'Text', 'keep');
  const hash = new URL(page.url()).hash;
  check(hash.includes('lvl=warn') && hash.includes('grep=keep'), `fragment holds the filters: ${hash}`);
  await page.reload();
  await waitFor('the status to say live after the reload', async () => (await page.textContent('#conn')) === 'live');
  check(!(await dialog.isVisible()), 'no token prompt after a reload (kept for the tab)');
  check((await page.getByLabel('Level at least', { exact: true }).inputValue()) === 'warn', 'level kept by the reload');
  check((await page.getByLabel('Text', { exact: true }).inputValue()) === 'keep', 'text kept by the reload');
  await expectFiltered(page, 'filters after the reload', {
    pass: (n) => [['app.log', { level: 'warn', msg: `keep warn ${n}` }]],
    fail: (n) => [['app.log', { level: 'info', msg: `keep info ${n}` }], ['app.log', { level: 'warn', msg: `drop warn ${n}` }]],
    visibleOk: (r) => r.msg.includes('keep') && ['WARN', 'ERROR'].includes(r.lvl.toUpperCase()),
  });
  await clearFilters(page);

  step('pause holds new lines back and shows "N new"; space resumes');
  await expectFiltered(page, 'before the pause', {
    pass: (n) => [['app.log', { level: 'info', msg: `before pause ${n}` }]],
    fail: () => [],
    visibleOk: () => true,
  });
  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  check((await page.getByRole('button', { name: 'Resume', exact: true }).getAttribute('aria-pressed')) === 'true', 'the pause button is pressed');
  write('app.log', [1, 2, 3, 4, 5].map((i) => ({ level: 'info', msg: `held back ${i}` })));
  const badge = page.locator('#new-badge');
  await waitFor('the badge to say 5 new', async () => (await badge.isVisible()) && (await badge.textContent()) === '5 new');
  for (const r of await tailRows(page)) check(!r.msg.startsWith('held back'), `paused: "${r.msg}" must be held back`);
  await page.screenshot({ path: join(SHOTS, 'paused.png') });
  await page.locator('body').click({ position: { x: 600, y: 700 } }); // focus off the buttons
  await page.keyboard.press('Space');
  await waitFor('the held lines after resume', async () => {
    const rs = await tailRows(page);
    return [1, 2, 3, 4, 5].every((i) => hasMsg(rs, `held back ${i}`));
  });
  check(!(await badge.isVisible()), 'the badge is gone after resume');
  check((await page.getByRole('button', { name: 'Pause', exact: true }).getAttribute('aria-pressed')) === 'false', 'the pause button is released');

  step('"/" focuses the text filter');
  await page.keyboard.press('/');
  check(await page.evaluate(() => document.activeElement?.id === 'grep'), '"/" focuses the text filter');
  await page.keyboard.press('Escape');

  step('auto-scroll follows, and stops when the user scrolls up');
  write('app.log', Array.from({ length: 200 }, (_, i) => ({ level: i % 10 ? 'info' : 'warn', msg: `scroll line ${i}` })));
  await waitFor('the last scroll line', async () => hasMsg(await tailRows(page), 'scroll line 199'));
  const viewport = page.locator('#tail-list .viewport');
  const atBottom = () => viewport.evaluate((v) => v.scrollTop + v.clientHeight >= v.scrollHeight - 12);
  check(await atBottom(), 'the tail follows to the bottom');
  await viewport.hover();
  await page.mouse.wheel(0, -1500);
  await waitFor('"Jump to latest" after scrolling up', () => page.getByRole('button', { name: 'Jump to latest' }).isVisible());
  const top = await viewport.evaluate((v) => v.scrollTop);
  const shownCount = async () => Number((await page.textContent('#tail-stats')).split(' ')[0].replace(/,/g, ''));
  const before = await shownCount();
  write('app.log', Array.from({ length: 50 }, (_, i) => ({ level: 'info', msg: `while scrolled ${i}` })));
  await waitFor('the stats to count the new lines', async () => (await shownCount()) >= before + 50);
  await sleep(300);
  check(Math.abs((await viewport.evaluate((v) => v.scrollTop)) - top) < 2, 'the view stays where the user scrolled');
  check(!(await atBottom()), 'not pulled back to the bottom');
  await page.getByRole('button', { name: 'Jump to latest' }).click();
  await waitFor('back at the bottom', async () => (await atBottom()) && hasMsg(await tailRows(page), 'while scrolled 49'));

  step('time-window query with a row limit');
  await page.getByRole('tab', { name: 'Query' }).click();
  await page.getByLabel('Window', { exact: true }).selectOption('15m');
  await page.getByLabel('Row limit', { exact: true }).fill('1000');
  await page.getByRole('button', { name: 'Run query' }).click();
  const qstats = page.locator('#query-stats');
  await waitFor('the query to finish', async () => / rows in /.test(await qstats.textContent()));
  check(await page.locator('#query-progress').isHidden(), 'the progress bar is gone when done');
  let qrows = await rows(page, '#query-list');
  check(hasMsg(qrows, 'Cloning repository acme/web@main'), `the query shows the first events: ${qrows.slice(0, 3).map((r) => r.msg)}`);
  await page.screenshot({ path: join(SHOTS, 'query.png') });
  await page.getByLabel('Row limit', { exact: true }).fill('3');
  await page.getByRole('button', { name: 'Run query' }).click();
  // The stats line and the rows are rendered apart: wait for both.
  await waitFor('the limited query', async () => /row limit \(3\) reached/.test(await qstats.textContent())
    && (await rows(page, '#query-list')).length > 0);
  qrows = await rows(page, '#query-list');
  check(qrows.length === 3, `3 rows with limit 3, got ${qrows.length}`);

  step('error groups: most frequent first, with the right counts');
  await page.getByRole('tab', { name: 'Error groups' }).click();
  await page.getByLabel('Since', { exact: true }).selectOption('1h');
  const groupRows = page.locator('#errors-body tr');
  const expected = [...SEED].sort((a, b) => b.count - a.count);
  const table = await waitFor('the seeded error groups', async () => {
    const t = await groupRows.evaluateAll((trs) => trs.map((tr) => ({ count: Number(tr.cells[0].textContent.replace(/,/g, '')), sig: tr.cells[1].textContent })));
    return expected.every((g) => t.some((r) => r.sig.startsWith(g.text))) ? t : null;
  });
  for (const g of expected) {
    const r = table.find((x) => x.sig.startsWith(g.text));
    check(r.count === g.count, `group "${g.text}": count ${r.count}, expected ${g.count}`);
  }
  for (let i = 1; i < table.length; i++) check(table[i - 1].count >= table[i].count, `sorted by count: ${JSON.stringify(table)}`);
  await page.screenshot({ path: join(SHOTS, 'errors.png') });

  step('an error group clicks through to its events');
  const top1 = expected[0];
  await groupRows.filter({ hasText: top1.text }).getByRole('button', { name: /^Show the events/ }).click();
  // The stats line still shows the previous query's " rows in " until the
  // new one ends: wait for the group's rows themselves.
  qrows = await waitFor('the group query', async () => {
    if (!/ rows in /.test(await qstats.textContent())) return null;
    const r = await rows(page, '#query-list');
    return r.length === top1.count ? r : null;
  });
  check(qrows.length === top1.count, `the group's ${top1.count} events, got ${qrows.length}: ${qrows.map((r) => r.msg).join(' | ')}`);
  for (const r of qrows) check(r.msg.startsWith(top1.text) && r.lvl.toUpperCase() === 'ERROR', `a group event: ${JSON.stringify(r)}`);

  step('dark theme follows the system setting');
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.getByRole('tab', { name: 'Live tail' }).click();
  await clearFilters(page);
  await expectFiltered(page, 'dark tail', {
    pass: (n) => [['app.log', { level: 'error', msg: `in the dark ${n}`, reqId: 'req-d4rk' }]],
    fail: () => [],
    visibleOk: () => true,
  });
  writeRealisticMix(' (again)');
  await waitFor('the second mix', async () => hasMsg(await tailRows(page), 'Build completed in 94s (again)'));
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  check(bg === 'rgb(15, 17, 21)', `dark background, got ${bg}`);
  await page.screenshot({ path: join(SHOTS, 'tail-dark.png') });

  step('a new tab asks for the token again; a wrong one is refused and asked for again');
  // sessionStorage is per tab. (No console watch here: chromium itself logs the 401.)
  const page2 = await ctx.newPage();
  await page2.goto(`${BASE}/`);
  await page2.getByRole('dialog').waitFor({ state: 'visible' });
  await page2.getByLabel('API token', { exact: true }).fill('not-the-token');
  await page2.getByRole('button', { name: 'Connect' }).click();
  await waitFor('the token prompt again', async () => (await page2.getByRole('dialog').isVisible()) && /rejected/.test(await page2.textContent('#token-reason')));
  await page2.close();

  step('no request left the origin, the token was sent as a header and never in a URL');
  check(requests.length > 0, 'requests were recorded');
  for (const r of requests) {
    check(new URL(r.url).origin === ORIGIN, `request to another origin: ${r.url}`);
    check(!r.url.includes(TOKEN), `token in a URL: ${r.url}`);
  }
  const api = requests.filter((r) => new URL(r.url).pathname.startsWith('/api/'));
  check(api.some((r) => r.headers.authorization === `Bearer ${TOKEN}`), 'API requests carry the Bearer header');
  check(
    api.every((r) => r.headers.authorization === `Bearer ${TOKEN}` || r.headers.authorization === 'Bearer not-the-token'),
    'every API request carries a Bearer header',
  );
  for (const p of ['/api/tail', '/api/query', '/api/errors']) check(api.some((r) => new URL(r.url).pathname === p), `the page used ${p}`);

  step('no console error');
  check(consoleErrors.length === 0, `console errors:\n${consoleErrors.join('\n')}`);
  console.log(`[viewer] all checks passed (${requests.length} requests, ${lineNo} lines written)`);
} catch (e) {
  console.error(`[viewer] FAILED at step ${stepNo}: ${e.stack || e}`);
  if (consoleErrors.length) console.error(`[viewer] console errors so far:\n${consoleErrors.join('\n')}`);
  exitCode = 1;
} finally {
  await ctx.close();
  rmSync(userDir, { recursive: true, force: true });
}
process.exit(exitCode);
