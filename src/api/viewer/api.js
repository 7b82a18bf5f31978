// The viewer's side of the API contract (SPEC §10): the token, the query
// parameters, and the two non-streaming-SSE reads (/api/query NDJSON,
// /api/errors JSON).
//
// The token lives in sessionStorage (this tab only, gone when it closes) and
// leaves the page only as an `Authorization: Bearer` header. It is never put
// in a URL, a fragment, a log line or an error message. An empty stored
// value means "this agent has no token" (the user said so).

import { Unauthorized, Rejected } from './sse.js';

export { Unauthorized, Rejected };

const TOKEN_KEY = 'logship.token';

export const token = {
  /** `null` when the user has not been asked yet in this tab. */
  get() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set(value) {
    sessionStorage.setItem(TOKEN_KEY, value);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** The headers every API request carries. */
export function authHeaders() {
  const t = token.get();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

/** The filter names the API takes (SPEC §10), in URL order. */
export const FILTER_KEYS = ['tier', 'lvl', 'kind', 'src', 'instanceId', 'projectId', 'buildId', 'userId', 'reqId', 'grep'];

/** `/api/<endpoint>?...` with the non-empty params. */
export function apiUrl(endpoint, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== '' && v !== null && v !== undefined) q.set(k, String(v));
  }
  const s = q.toString();
  return `/api/${endpoint}${s ? `?${s}` : ''}`;
}

async function check(resp) {
  if (resp.status === 401) throw new Unauthorized('token rejected');
  if (!resp.ok) {
    const text = (await resp.text().catch(() => '')).trim();
    throw new Rejected(resp.status, text || `HTTP ${resp.status}`);
  }
  return resp;
}

/** GET JSON from the API. */
export async function getJson(url, signal) {
  const resp = await check(await fetch(url, { headers: { ...authHeaders(), Accept: 'application/json' }, signal, cache: 'no-store' }));
  return resp.json();
}

/**
 * Stream NDJSON from the API: `onRows(batch, bytesSoFar)` per network chunk.
 * Lines that are not JSON objects are reported through `onBadLine` and
 * skipped, never guessed at. One line is capped at `maxLine` characters.
 */
export async function streamNdjson(url, signal, onRows, onBadLine, maxLine = 8 * 1024 * 1024) {
  const resp = await check(await fetch(url, { headers: { ...authHeaders(), Accept: 'application/x-ndjson' }, signal, cache: 'no-store' }));
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let partial = '';
  let bytes = 0;
  const parse = (line, out) => {
    if (line.trim() === '') return;
    try {
      const v = JSON.parse(line);
      if (v && typeof v === 'object' && !Array.isArray(v)) out.push(v);
      else onBadLine(line);
    } catch {
      onBadLine(line);
    }
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    bytes += value.length;
    const lines = (partial + value).split('\n');
    partial = lines.pop();
    if (partial.length > maxLine) throw new Rejected(0, `a result line is longer than ${maxLine} characters`);
    const rows = [];
    for (const l of lines) parse(l, rows);
    if (rows.length) onRows(rows, bytes);
  }
  const rows = [];
  parse(partial, rows);
  onRows(rows, bytes);
}
