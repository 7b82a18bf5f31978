// The time-window query: `/api/query` with the filters, a window (last
// 15 min / hour / 24 h, or a custom from–to) and a row limit, streamed as
// NDJSON into a virtualised list while a progress bar shows how far into the
// window the results have come (the API returns them ordered by `ts`, so the
// last row's `ts` is an honest measure of progress).
//
// The API takes one tier per query (as `logship query --tier` does). With a
// tier chosen, rows stream straight into the list; with "any", the five
// tiers are asked in turn (the agent caps concurrent queries), each up to
// the limit, and the union is merged in the API's order and cut to the
// limit — the same first N rows one query over all tiers would give.

import { apiUrl, streamNdjson, Rejected, Unauthorized } from './api.js';
import { VirtualList } from './vlist.js';
import { renderEventRow } from './detail.js';

const $ = (sel) => document.querySelector(sel);
const fmt = new Intl.NumberFormat('en');

export const WINDOWS = { '15m': 15 * 60_000, '1h': 3_600_000, '24h': 86_400_000 };
export const MAX_LIMIT = 50_000;
const TIERS = ['system', 'build', 'deploy', 'action', 'lifecycle'];

/** `datetime-local` value (local time, seconds) for epoch ms. */
export function localInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 19);
}

export class Query {
  /**
   * @param {object} o
   * @param {(ev: object) => void} o.onOpen
   * @param {(reason: string) => Promise<void>} o.askToken
   * @param {() => Record<string, string>} o.filters  the API filters
   * @param {() => void} o.onChange   the form changed (save the fragment)
   */
  constructor(o) {
    this.o = o;
    this.form = $('#query-form');
    this.list = new VirtualList($('#query-list'), {
      renderRow: renderEventRow,
      onOpen: (ev) => o.onOpen(ev),
      capacity: MAX_LIMIT,
      follow: false,
      empty: 'Choose a window and run the query.',
    });
    this.abort = null;
    this.ran = false;
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.run();
    });
    this.form.addEventListener('change', () => {
      this.showCustom();
      o.onChange();
    });
    $('#query-cancel').addEventListener('click', () => this.cancel('cancelled'));
    this.showCustom();
  }

  /** The form as fragment fields. */
  state() {
    const f = this.form.elements;
    const s = { window: f.window.value, limit: f.limit.value };
    if (s.window === 'custom') Object.assign(s, { from: f.from.value, to: f.to.value });
    return s;
  }

  setState(s) {
    const f = this.form.elements;
    if (s.window && (s.window in WINDOWS || s.window === 'custom')) f.window.value = s.window;
    if (s.limit) f.limit.value = s.limit;
    if (s.from) f.from.value = s.from;
    if (s.to) f.to.value = s.to;
    this.showCustom();
  }

  showCustom() {
    const custom = this.form.elements.window.value === 'custom';
    for (const el of this.form.querySelectorAll('.custom')) el.hidden = !custom;
    if (custom && !this.form.elements.from.value) {
      const now = Date.now();
      this.form.elements.from.value = localInput(now - 3_600_000);
      this.form.elements.to.value = localInput(now);
    }
  }

  /** [since, until] in epoch ms for the chosen window, or an error text. */
  window() {
    const f = this.form.elements;
    if (f.window.value !== 'custom') {
      const until = Date.now();
      return [until - WINDOWS[f.window.value], until];
    }
    const since = new Date(f.from.value).getTime();
    const until = f.to.value ? new Date(f.to.value).getTime() : Date.now();
    if (Number.isNaN(since)) return 'Choose a start time.';
    if (Number.isNaN(until) || until <= since) return 'The end must be after the start.';
    return [since, until];
  }

  cancel(why) {
    if (this.abort) {
      this.abort.abort();
      this.abort = null;
      this.finish(`${fmt.format(this.rows)} rows — ${why}`);
    }
  }

  finish(text) {
    $('#query-progress').hidden = true;
    $('#query-cancel').hidden = true;
    $('#query-run').disabled = false;
    $('#query-stats').textContent = text;
  }

  async run() {
    this.cancel('replaced');
    const win = this.window();
    const stats = $('#query-stats');
    if (typeof win === 'string') {
      stats.textContent = win;
      return;
    }
    const [since, until] = win;
    const f = this.form.elements;
    const limit = Math.min(MAX_LIMIT, Math.max(1, Number(f.limit.value) || 1000));
    f.limit.value = String(limit);
    const abort = new AbortController();
    this.abort = abort;
    this.ran = true;
    this.rows = 0;
    this.list.reset();
    const progress = $('#query-progress');
    progress.hidden = false;
    progress.removeAttribute('value'); // indeterminate until the first row
    $('#query-cancel').hidden = false;
    $('#query-run').disabled = true;
    stats.textContent = 'running…';
    const started = performance.now();
    const filters = this.o.filters();
    const params = { ...filters, since: new Date(since).toISOString(), until: new Date(until).toISOString(), limit };
    const share = (ts) => Math.min(1, Math.max(0, (Number(ts) - since) / (until - since))) || 0;
    let bad = 0;
    try {
      if (filters.tier) {
        // One tier: rows go to the list as they arrive.
        await streamNdjson(apiUrl('query', params), abort.signal, (rows, bytes) => {
          if (rows.length === 0) return;
          this.rows += rows.length;
          this.list.push(rows);
          progress.value = share(rows[rows.length - 1].ts);
          stats.textContent = `${fmt.format(this.rows)} rows · ${fmt.format(Math.round(bytes / 1024))} KiB`;
        }, () => bad++);
      } else {
        // The API queries one tier at a time: ask each in turn (the agent
        // limits concurrent queries), then merge in the API's order.
        const all = [];
        for (const [k, tier] of TIERS.entries()) {
          let n = 0;
          await streamNdjson(apiUrl('query', { ...params, tier }), abort.signal, (rows) => {
            n += rows.length;
            for (const r of rows) all.push(r);
            if (rows.length) progress.value = (k + share(rows[rows.length - 1].ts)) / TIERS.length;
            stats.textContent = `${tier} (${k + 1}/${TIERS.length}): ${fmt.format(n)} rows`;
          }, () => bad++);
          progress.value = (k + 1) / TIERS.length;
        }
        all.sort(byEventOrder);
        this.rows = Math.min(limit, all.length);
        this.list.push(all.slice(0, limit));
      }
      if (this.abort !== abort) return;
      this.abort = null;
      const secs = ((performance.now() - started) / 1000).toFixed(1);
      let text = this.rows === 0 ? 'No events in this window.' : `${fmt.format(this.rows)} rows in ${secs} s`;
      if (this.rows >= limit) text += ` — row limit (${fmt.format(limit)}) reached`;
      if (bad) text += ` · ${fmt.format(bad)} unreadable lines skipped`;
      this.finish(text);
    } catch (e) {
      if (abort.signal.aborted) return;
      this.abort = null;
      if (e instanceof Unauthorized) {
        this.finish('token rejected');
        await this.o.askToken('The agent rejected the token.');
        return this.run();
      }
      this.finish(e instanceof Rejected ? `Query rejected: ${e.message}` : `Query failed: ${e.message}`);
    }
  }
}

/** SPEC §10 order: (ts, instanceId, seq). */
export function byEventOrder(a, b) {
  return (
    (Number(a.ts) || 0) - (Number(b.ts) || 0) ||
    String(a.instanceId ?? '').localeCompare(String(b.instanceId ?? '')) ||
    (Number(a.seq) || 0) - (Number(b.seq) || 0)
  );
}
