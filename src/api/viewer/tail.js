// The live tail: one `/api/tail` stream (SSE over fetch, see sse.js) with
// the current filters as query parameters, shown in a virtualised list.
//
// - A filter change closes the stream, clears the list and reopens it with
//   `Last-Event-ID: 0`, so the agent first replays the matching events it
//   still holds in its recent buffer, then goes live; a dropped connection
//   reopens with the last id seen, so nothing in between is lost.
// - Pause holds new events back in `pending` (bounded like the list; the
//   oldest are dropped first and counted) and shows "N new"; resume appends
//   them. Scrolling up only stops the auto-scroll; events keep arriving.

import { apiUrl, authHeaders, Rejected, Unauthorized } from './api.js';
import { follow } from './sse.js';
import { VirtualList } from './vlist.js';
import { renderEventRow } from './detail.js';

const $ = (sel) => document.querySelector(sel);
const fmt = new Intl.NumberFormat('en');

export class Tail {
  /**
   * @param {object} o
   * @param {(ev: object) => void} o.onOpen       show one event in full
   * @param {(reason: string) => Promise<void>} o.askToken
   * @param {(text: string, kind: string) => void} o.setStatus
   * @param {(message: string) => void} o.onRejected  the server refused the filters
   */
  constructor(o) {
    this.o = o;
    this.capacity = 20_000;
    this.list = new VirtualList($('#tail-list'), {
      renderRow: renderEventRow,
      onOpen: (ev) => o.onOpen(ev),
      onFollowChange: (f) => ($('#to-latest').hidden = f),
      capacity: this.capacity,
      empty: 'Waiting for events…',
    });
    this.abort = null;
    this.lastId = '';
    this.paused = false;
    this.pending = [];
    this.pendingDropped = 0;
    this.received = 0;
    this.rateBase = 0;
    this.rate = 0;
    this.badLines = 0;

    $('#pause').addEventListener('click', () => this.setPaused(!this.paused));
    $('#new-badge').addEventListener('click', () => this.setPaused(false));
    $('#to-latest').addEventListener('click', () => this.list.toBottom());
    $('#tail-clear').addEventListener('click', () => {
      this.list.reset();
      this.pending = [];
      this.pendingDropped = 0;
      this.updateBadge();
    });
    setInterval(() => {
      this.rate = this.received - this.rateBase;
      this.rateBase = this.received;
      this.updateStats();
    }, 1000);
  }

  /** (Re)open the stream with `params` (the API filters). */
  start(params) {
    this.params = params;
    this.stop();
    this.list.reset();
    this.pending = [];
    this.pendingDropped = 0;
    this.updateBadge();
    this.connect('0');
  }

  stop() {
    if (this.abort) this.abort.abort();
    this.abort = null;
  }

  connect(lastEventId) {
    const abort = new AbortController();
    this.abort = abort;
    follow({
      url: apiUrl('tail', this.params),
      headers: authHeaders,
      signal: abort.signal,
      lastEventId,
      onMessage: (id, data) => this.onMessage(id, data),
      onState: (s) => {
        if (abort.signal.aborted) return;
        if (s.state === 'live') this.o.setStatus('live', 'ok');
        else if (s.state === 'connecting') this.o.setStatus('connecting…', 'wait');
        else if (s.state === 'reconnecting') this.o.setStatus(`disconnected (${s.detail})`, 'bad');
        else if (s.state === 'waiting') this.o.setStatus(`reconnecting in ${Math.round(s.delayMs / 1000)} s`, 'bad');
      },
    }).catch(async (e) => {
      if (abort.signal.aborted) return;
      if (e instanceof Unauthorized) {
        this.o.setStatus('token rejected', 'bad');
        await this.o.askToken('The agent rejected the token.');
        if (this.abort === abort) this.connect(this.lastId || '0');
      } else if (e instanceof Rejected) {
        this.o.setStatus('filter rejected', 'bad');
        this.o.onRejected(e.message);
      } else {
        this.o.setStatus(`stopped: ${e.message}`, 'bad');
      }
    });
  }

  onMessage(id, data) {
    if (id) this.lastId = id;
    let ev;
    try {
      ev = JSON.parse(data);
    } catch {
      this.badLines++;
      return;
    }
    if (!ev || typeof ev !== 'object') return;
    this.received++;
    if (this.paused) {
      this.pending.push(ev);
      if (this.pending.length > this.capacity) {
        const over = this.pending.length - this.capacity;
        this.pending.splice(0, over);
        this.pendingDropped += over;
      }
      this.scheduleBadge();
    } else {
      this.list.push([ev]);
    }
  }

  setPaused(p) {
    this.paused = p;
    const b = $('#pause');
    b.textContent = p ? 'Resume' : 'Pause';
    b.setAttribute('aria-pressed', String(p));
    if (!p) {
      this.list.push(this.pending);
      this.pending = [];
      this.pendingDropped = 0;
      this.list.toBottom();
    }
    this.updateBadge();
  }

  togglePause() {
    this.setPaused(!this.paused);
  }

  scheduleBadge() {
    if (this.badgeFrame) return;
    this.badgeFrame = requestAnimationFrame(() => {
      this.badgeFrame = 0;
      this.updateBadge();
    });
  }

  updateBadge() {
    const n = this.pending.length + this.pendingDropped;
    const badge = $('#new-badge');
    badge.hidden = !this.paused || n === 0;
    badge.textContent = `${fmt.format(n)} new`;
    badge.title = this.pendingDropped ? `${fmt.format(this.pendingDropped)} of them no longer held (over ${fmt.format(this.capacity)})` : 'Resume and show them';
  }

  updateStats() {
    const parts = [`${fmt.format(this.list.length)} shown`, `${fmt.format(this.rate)}/s`];
    if (this.badLines) parts.push(`${fmt.format(this.badLines)} unreadable`);
    const el = $('#tail-stats');
    el.textContent = parts.join(' · ');
    el.dataset.received = String(this.received); // for bench/viewer.mjs
  }
}
