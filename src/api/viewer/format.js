// Pure helpers shared by the views: time and level display, and the two
// translations into the API's regex language (Rust `regex` syntax):
// a literal text filter, and an error group's signature (SPEC §8
// normalization, placeholders `<num>`, `<hex>`, ...) back into a pattern that
// matches the group's messages. No DOM here, so node can test it.

export const LEVELS = ['debug', 'info', 'warn', 'error'];

/** The class suffix for a level; unknown levels render as info. */
export function levelClass(lvl) {
  return LEVELS.includes(lvl) ? lvl : 'info';
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** `HH:MM:SS.mmm` in local time. */
export function clock(ts) {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return '—';
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** `YYYY-MM-DD HH:MM:SS` in local time. */
export function dateTime(ts) {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return '—';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "3 min ago"-style age of `ts` relative to `now`. */
export function ago(ts, now = Date.now()) {
  const s = Math.round((now - ts) / 1000);
  if (!Number.isFinite(s)) return '';
  if (s < 60) return s <= 1 ? 'just now' : `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** Characters that are special in Rust regex syntax. */
const SPECIAL = /[\\.+*?()|[\]{}^$#&\-~]/g;

/** A pattern that matches `text` literally. */
export function escapeRegex(text) {
  return text.replace(SPECIAL, '\\$&');
}

const PLACEHOLDER = /<(url|email|ts|uuid|ulid|hex|num)>/g;

/** Longest signature turned into a full pattern; beyond it, a prefix match. */
const MAX_SIGNATURE = 1000;

/**
 * A pattern matching the messages of an error group: the literal parts of
 * the signature, each placeholder standing for one run of non-blank
 * characters. Anchored, so a group does not also match longer messages
 * that merely contain it; a very long signature (a stack trace) matches by
 * its first line only.
 */
export function signatureRegex(signature) {
  let sig = signature;
  let anchoredEnd = true;
  if (sig.length > MAX_SIGNATURE) {
    sig = sig.split('\n')[0].slice(0, MAX_SIGNATURE);
    anchoredEnd = false;
  }
  let out = '^';
  let last = 0;
  for (const m of sig.matchAll(PLACEHOLDER)) {
    out += escapeRegex(sig.slice(last, m.index)) + '.+?';
    last = m.index + m[0].length;
  }
  out += escapeRegex(sig.slice(last));
  return anchoredEnd ? `${out}$` : out;
}

/** The first line of a message and how many lines follow it. */
export function firstLine(msg) {
  const s = typeof msg === 'string' ? msg : String(msg ?? '');
  const nl = s.indexOf('\n');
  if (nl < 0) return { text: s, more: 0 };
  let more = 0;
  for (let i = nl; i >= 0; i = s.indexOf('\n', i + 1)) more++;
  return { text: s.slice(0, nl), more };
}

const ID_LABELS = { projectId: 'project', buildId: 'build', userId: 'user', reqId: 'req' };

/** Correlation ids present on an event, as `label:value` strings. */
export function idsOf(ev) {
  const out = [];
  for (const [k, label] of Object.entries(ID_LABELS)) {
    if (ev[k] !== null && ev[k] !== undefined && ev[k] !== '') out.push(`${label}:${ev[k]}`);
  }
  return out;
}

/** The event as the detail view shows it: `data` pretty-printed with the rest. */
export function prettyEvent(ev) {
  return JSON.stringify(ev, null, 2);
}
