// Error groups: `/api/errors` (events of level `error` grouped by their
// normalized message), shown most frequent first with first/last seen, the
// sample event, and a click-through to the group's events (a time-window
// query with `lvl=error` and the signature turned back into a regex).

import { apiUrl, getJson, Rejected, Unauthorized } from './api.js';
import { ago, dateTime, firstLine } from './format.js';

const $ = (sel) => document.querySelector(sel);
const fmt = new Intl.NumberFormat('en');

/** The groups from a response: a bare array or `{groups: [...]}`. */
export function groupsOf(body) {
  const list = Array.isArray(body) ? body : Array.isArray(body?.groups) ? body.groups : [];
  return list
    .filter((g) => g && typeof g === 'object')
    .map((g) => ({ ...g, count: Number(g.count) || 0 }))
    .sort((a, b) => b.count - a.count || (Number(b.last_ts) || 0) - (Number(a.last_ts) || 0));
}

function cell(text, cls) {
  const td = document.createElement('td');
  if (cls) td.className = cls;
  td.textContent = text;
  return td;
}

function timeCell(ts) {
  const td = cell(dateTime(ts));
  const small = document.createElement('small');
  small.textContent = ` ${ago(ts)}`;
  td.append(small);
  return td;
}

function button(text, label, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  b.setAttribute('aria-label', label);
  b.addEventListener('click', onClick);
  return b;
}

export class Errors {
  /**
   * @param {object} o
   * @param {(ev: object) => void} o.onOpen            show the sample
   * @param {(group: object, since: string) => void} o.onDrill  show the group's events
   * @param {(reason: string) => Promise<void>} o.askToken
   * @param {() => string} o.tier
   * @param {() => void} o.onChange
   */
  constructor(o) {
    this.o = o;
    this.form = $('#errors-form');
    this.abort = null;
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.load();
    });
    this.form.addEventListener('change', () => {
      o.onChange();
      this.load();
    });
  }

  state() {
    const f = this.form.elements;
    return { esince: f.since.value, elimit: f.limit.value };
  }

  setState(s) {
    const f = this.form.elements;
    if (s.esince && [...f.since.options].some((x) => x.value === s.esince)) f.since.value = s.esince;
    if (s.elimit) f.limit.value = s.elimit;
  }

  async load() {
    if (this.abort) this.abort.abort();
    const abort = new AbortController();
    this.abort = abort;
    const f = this.form.elements;
    const since = f.since.value;
    const limit = Math.min(1000, Math.max(1, Number(f.limit.value) || 50));
    const stats = $('#errors-stats');
    stats.textContent = 'loading…';
    try {
      const body = await getJson(apiUrl('errors', { since, tier: this.o.tier(), limit }), abort.signal);
      if (this.abort !== abort) return;
      const groups = groupsOf(body);
      this.render(groups, since);
      const total = groups.reduce((n, g) => n + g.count, 0);
      stats.textContent = groups.length === 0 ? 'No errors in this window.' : `${fmt.format(groups.length)} groups · ${fmt.format(total)} errors`;
    } catch (e) {
      if (abort.signal.aborted) return;
      if (e instanceof Unauthorized) {
        stats.textContent = 'token rejected';
        await this.o.askToken('The agent rejected the token.');
        return this.load();
      }
      stats.textContent = e instanceof Rejected ? `Rejected: ${e.message}` : `Failed: ${e.message}`;
    }
  }

  render(groups, since) {
    const rows = groups.map((g) => {
      const tr = document.createElement('tr');
      const sig = String(g.signature ?? g.sample?.msg ?? '');
      const { text, more } = firstLine(sig);
      const msg = cell(text, 'sig');
      if (more) {
        const m = document.createElement('small');
        m.textContent = ` +${more} lines`;
        msg.append(m);
      }
      msg.title = sig;
      const where = [g.tier ?? g.sample?.tier, g.sample?.src].filter(Boolean).join(' · ');
      const actions = document.createElement('td');
      actions.className = 'actions';
      actions.append(
        button('Events', `Show the events of: ${text}`, () => this.o.onDrill(g, since)),
        button('Sample', `Show a sample event of: ${text}`, () => g.sample && this.o.onOpen(g.sample)),
      );
      tr.append(cell(fmt.format(g.count), 'num count'), msg, timeCell(g.first_ts), timeCell(g.last_ts), cell(where), actions);
      return tr;
    });
    $('#errors-body').replaceChildren(...rows);
  }
}
