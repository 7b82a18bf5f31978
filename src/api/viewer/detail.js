// How one event looks: a compact row in a list, and the detail panel with
// the full event as JSON (`data` pretty-printed) and copy buttons.
// Everything is written with textContent: event text is never HTML.

import { clock, dateTime, firstLine, idsOf, levelClass, prettyEvent } from './format.js';

const $ = (sel) => document.querySelector(sel);

function span(cls, text) {
  const s = document.createElement('span');
  s.className = cls;
  s.textContent = text;
  return s;
}

/** Fill a list row (a button) for event `ev`. */
export function renderEventRow(el, ev) {
  const lvl = levelClass(ev.lvl);
  el.className = `row lvl-${lvl}`;
  const { text, more } = firstLine(ev.msg);
  const msg = span('m', text);
  if (more) msg.append(span('more', ` +${more} lines`));
  el.replaceChildren(
    span('t', clock(ev.ts)),
    span('l', String(ev.lvl ?? '')),
    span('tier', String(ev.tier ?? '')),
    span('src', String(ev.src ?? '')),
    span('ids', idsOf(ev).join(' ')),
    msg,
  );
  el.title = `${dateTime(ev.ts)} — click for the full event`;
}

/** The detail panel: one event at a time. */
export class Detail {
  constructor() {
    this.panel = $('#detail');
    this.event = null;
    $('#detail-close').addEventListener('click', () => this.close());
    $('#copy-json').addEventListener('click', () => this.copy(prettyEvent(this.event), $('#detail-json')));
    $('#copy-msg').addEventListener('click', () => this.copy(String(this.event?.msg ?? ''), $('#detail-msg')));
    $('#copy-data').addEventListener('click', () => this.copy(JSON.stringify(this.event?.data ?? null, null, 2), $('#detail-json')));
  }

  open(ev) {
    this.event = ev;
    $('#detail-title').textContent = `${ev.lvl ?? ''} · ${dateTime(ev.ts)} · ${ev.tier ?? ''} · ${ev.src ?? ''}`;
    $('#detail-msg').textContent = String(ev.msg ?? '');
    $('#detail-json').textContent = prettyEvent(ev);
    $('#copy-data').disabled = ev.data === null || ev.data === undefined;
    $('#copy-status').textContent = '';
    this.panel.hidden = false;
  }

  close() {
    this.panel.hidden = true;
    this.event = null;
  }

  get isOpen() {
    return !this.panel.hidden;
  }

  async copy(text, pre) {
    const status = $('#copy-status');
    try {
      await navigator.clipboard.writeText(text);
      status.textContent = 'Copied';
    } catch {
      // No clipboard access (an insecure origin, a denied permission):
      // select the text so Ctrl+C copies it.
      const range = document.createRange();
      range.selectNodeContents(pre);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      status.textContent = 'Selected — press Ctrl+C to copy';
    }
  }
}
