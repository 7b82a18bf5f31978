// Benchmark: the viewer's live tail under a steady stream of events.
//
//   cargo build --release
//   bash .ci/install-viewer-deps.sh
//   node bench/viewer.mjs --bin target/release/logship --rate 1000 --seconds 20
//
// Starts the agent with `[api]` on a loopback port, appends JSON lines to a
// tailed file at --rate lines/s, opens the page in Debian's chromium
// (headless, via playwright-core from the CI cache) and measures, inside the
// page, over --seconds: animation frames (rate and the longest gaps), long
// tasks (main-thread work over 50 ms), events shown, DOM size (the list is
// virtualised: it must not grow with the events) and JS heap. Prints one
// markdown table row for BENCHMARKS.md. Numbers only; nothing is asserted.

import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const args = Object.fromEntries(
  process.argv
    .slice(2)
    .reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const BIN = resolve(args.bin ?? 'target/release/logship');
const RATE = Number(args.rate ?? 1000);
const SECONDS = Number(args.seconds ?? 20);
const cache = process.env.LOGSHIP_CI_CACHE ?? join(homedir(), '.cache/logship-ci');
const require = createRequire(join(cache, 'viewer-node/node_modules/'));
const { chromium } = require('playwright-core');

const TOKEN = 'bench-token';
const dir = mkdtempSync(join(tmpdir(), 'logship-viewer-bench-'));
mkdirSync(join(dir, 'logs'));
writeFileSync(
  join(dir, 'agent.toml'),
  `[agent]
instance_id = "bench"
data_dir = "${dir}/data"

[[sources]]
name = "app"
include = ["${dir}/logs/app.log"]
format = "json"

[api]
listen = "127.0.0.1:0"
token = "${TOKEN}"

[metrics]
enabled = false
`,
);
const stderrPath = join(dir, 'agent.stderr');
appendFileSync(stderrPath, '');
const agent = spawn(BIN, ['run', '-c', join(dir, 'agent.toml')], {
  stdio: ['ignore', 'ignore', 'pipe'],
  env: { ...process.env, RUST_LOG: 'info', NO_COLOR: '1' },
});
agent.stderr.on('data', (d) => appendFileSync(stderrPath, d));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let addr = null;
for (let i = 0; i < 300 && !addr; i++) {
  // eslint-disable-next-line no-control-regex
  const log = readFileSync(stderrPath, 'utf8').replace(/\x1b\[[0-9;]*m/g, '');
  addr = /serving the API.*?addr=(\S+)/.exec(log)?.[1] ?? null;
  if (!addr) await sleep(100);
}
if (!addr) throw new Error(`the agent did not start its API:\n${readFileSync(stderrPath, 'utf8')}`);

const ctx = await chromium.launchPersistentContext(join(dir, 'chromium'), {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 720 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = ctx.pages()[0] ?? (await ctx.newPage());
await page.goto(`http://${addr}/`);
await page.getByLabel('API token').fill(TOKEN);
await page.getByRole('button', { name: 'Connect' }).click();
await page.waitForFunction(() => document.querySelector('#conn')?.textContent === 'live');

// The writer: RATE lines/s in 100 batches a second.
let written = 0;
const levels = ['info', 'info', 'info', 'debug', 'warn', 'error'];
const writer = setInterval(() => {
  const n = Math.round(RATE / 100);
  let text = '';
  for (let i = 0; i < n; i++, written++) {
    text += `${JSON.stringify({ level: levels[written % levels.length], msg: `bench line ${written} GET /api/items/${written % 977} 200`, reqId: `r-${written % 5000}`, data: { i: written } })}\n`;
  }
  appendFileSync(join(dir, 'logs/app.log'), text);
}, 10);

await sleep(3000); // warm up: the stream is flowing before measuring
const result = await page.evaluate(async (seconds) => {
  const gaps = [];
  let frames = 0;
  let longTasks = 0;
  let longMs = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      longTasks++;
      longMs += e.duration;
    }
  });
  obs.observe({ type: 'longtask', buffered: false });
  const received = () => Number(document.querySelector('#tail-stats').dataset.received);
  const shown = () => Number(document.querySelector('#tail-stats').textContent.split(' ')[0].replace(/,/g, ''));
  const received0 = received();
  const end = performance.now() + seconds * 1000;
  let last = performance.now();
  let maxDom = 0;
  await new Promise((done) => {
    const tick = (t) => {
      frames++;
      gaps.push(t - last);
      last = t;
      if (frames % 30 === 0) maxDom = Math.max(maxDom, document.getElementsByTagName('*').length);
      if (t < end) requestAnimationFrame(tick);
      else done();
    };
    requestAnimationFrame(tick);
  });
  obs.disconnect();
  gaps.sort((a, b) => a - b);
  const q = (p) => gaps[Math.min(gaps.length - 1, Math.floor(p * gaps.length))];
  return {
    fps: frames / seconds,
    p50: q(0.5),
    p99: q(0.99),
    max: gaps[gaps.length - 1],
    longTasks,
    longMs,
    receivedDelta: received() - received0,
    shown: shown(),
    maxDom,
    heapMiB: (performance.memory?.usedJSHeapSize ?? 0) / 1048576,
  };
}, SECONDS);
clearInterval(writer);

const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const f = (x, d = 1) => x.toFixed(d);
console.log(`load average during the run: ${load}; lines written: ${written}`);
console.log('| rate lines/s | seconds | events received/s | frames/s | frame gap p50 / p99 / max ms | long tasks (total ms) | DOM elements (max) | JS heap MiB |');
console.log('| ---: | ---: | ---: | ---: | --- | --- | ---: | ---: |');
console.log(
  `| ${RATE} | ${SECONDS} | ${f(result.receivedDelta / SECONDS, 0)} | ${f(result.fps)} | ${f(result.p50)} / ${f(result.p99)} / ${f(result.max)} | ${result.longTasks} (${f(result.longMs, 0)}) | ${result.maxDom} | ${f(result.heapMiB)} |`,
);
await ctx.close();
agent.kill('SIGTERM');
await new Promise((r) => agent.once('exit', r));
rmSync(dir, { recursive: true, force: true });
