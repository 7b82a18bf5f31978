// Server-Sent Events over fetch().
//
// EventSource cannot send an Authorization header, and the token must never
// travel in a URL, so the viewer reads the text/event-stream body itself:
//
// - `SseParser` implements the event-stream parsing rules of the HTML
//   standard (fields `id`, `data`, `event`, `retry`; `:` comments; CR, LF and
//   CRLF line ends split anywhere across chunks; a leading BOM). It is pure
//   (no DOM, no network), so tests/viewer/unit.test.mjs runs it under node.
// - `follow` is one connection loop: fetch, parse, and on any end or error
//   reconnect with `Last-Event-ID` (the server replays what was missed from
//   its recent buffer), backing off 1 s doubling to 30 s. A stream that stays
//   silent for three heartbeat periods is treated as dead and reopened.
//
// Memory is bounded against a hostile or broken server: one line, and one
// event's data, are each capped at MAX_LINE characters.

export const MAX_LINE = 8 * 1024 * 1024;

export class SseError extends Error {}

export class SseParser {
  /**
   * @param {(ev: {id: string, event: string, data: string}) => void} onEvent
   * @param {(text: string) => void} [onComment]
   */
  constructor(onEvent, onComment = () => {}) {
    this.onEvent = onEvent;
    this.onComment = onComment;
    this.partial = ''; // an unfinished line from the previous chunk
    this.skipLf = false; // the previous chunk ended in CR: a leading LF belongs to it
    this.started = false; // BOM handling applies to the very first character only
    this.data = [];
    this.dataLen = 0;
    this.event = '';
    this.lastId = ''; // the last event ID buffer; survives across events
    this.retry = null; // reconnection time from a `retry:` field, in ms
  }

  /** Feed decoded text; complete events are dispatched synchronously. */
  push(text) {
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 10 && this.skipLf && i === start && this.partial === '') {
        this.skipLf = false;
        start = i + 1;
        continue;
      }
      this.skipLf = false;
      if (c !== 10 && c !== 13) continue;
      this.line(this.partial + text.slice(start, i));
      this.partial = '';
      if (c === 13) {
        if (text.charCodeAt(i + 1) === 10) i++;
        else if (i + 1 === text.length) this.skipLf = true;
      }
      start = i + 1;
    }
    if (start < text.length) {
      this.partial += text.slice(start);
      if (this.partial.length > MAX_LINE) {
        throw new SseError(`event-stream line longer than ${MAX_LINE} characters`);
      }
    }
  }

  line(line) {
    if (line === '') return this.dispatch();
    if (line.charCodeAt(0) === 58 /* : */) return this.onComment(line.slice(1).trimStart());
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    switch (field) {
      case 'data':
        this.dataLen += value.length + 1;
        if (this.dataLen > MAX_LINE) throw new SseError(`event data longer than ${MAX_LINE} characters`);
        this.data.push(value);
        break;
      case 'event':
        this.event = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) this.retry = Number(value);
        break;
      default: // unknown fields are ignored, as the standard says
    }
  }

  dispatch() {
    const data = this.data;
    const event = this.event || 'message';
    this.data = [];
    this.dataLen = 0;
    this.event = '';
    if (data.length === 0) return;
    this.onEvent({ id: this.lastId, event, data: data.join('\n') });
  }
}

/** Thrown out of `follow` when the server says the token is wrong. */
export class Unauthorized extends Error {}

/** A response that retrying cannot fix (a bad filter: 400). */
export class Rejected extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const HEARTBEAT_MS = 15_000;

/**
 * Follow an event stream until `signal` aborts (resolves), the token is
 * rejected (throws Unauthorized) or the request is rejected (throws Rejected).
 *
 * @param {object} o
 * @param {string} o.url
 * @param {() => Record<string,string>} o.headers  called per connection
 * @param {AbortSignal} o.signal
 * @param {string} [o.lastEventId]  resume after this id
 * @param {(id: string, data: string) => void} o.onMessage
 * @param {(state: {state: string, detail?: string, delayMs?: number}) => void} o.onState
 */
export async function follow(o) {
  let lastId = o.lastEventId || '';
  let delay = 1000;
  while (!o.signal.aborted) {
    const conn = new AbortController();
    const stop = () => conn.abort();
    o.signal.addEventListener('abort', stop, { once: true });
    let received = false;
    let retryMs = null;
    try {
      const headers = { ...o.headers(), Accept: 'text/event-stream' };
      if (lastId) headers['Last-Event-ID'] = lastId;
      o.onState({ state: 'connecting' });
      const resp = await fetch(o.url, { headers, signal: conn.signal, cache: 'no-store' });
      if (resp.status === 401) throw new Unauthorized('token rejected');
      if (resp.status === 400 || resp.status === 404 || resp.status === 422) {
        throw new Rejected(resp.status, (await resp.text()).trim() || `HTTP ${resp.status}`);
      }
      if (!resp.ok) {
        const text = resp.status === 429 ? 'too many live-tail clients' : `HTTP ${resp.status}`;
        throw new SseError(text);
      }
      o.onState({ state: 'live' });
      const parser = new SseParser((ev) => {
        received = true;
        lastId = ev.id || lastId;
        if (ev.event === 'message') o.onMessage(ev.id, ev.data);
      });
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let watchdog = setTimeout(stop, 3 * HEARTBEAT_MS);
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          clearTimeout(watchdog);
          watchdog = setTimeout(stop, 3 * HEARTBEAT_MS);
          parser.push(value);
        }
      } finally {
        clearTimeout(watchdog);
        reader.cancel().catch(() => {});
      }
      retryMs = parser.retry;
      if (received) delay = 1000;
      o.onState({ state: 'reconnecting', detail: 'stream ended' });
    } catch (e) {
      if (e instanceof Unauthorized || e instanceof Rejected) throw e;
      if (o.signal.aborted) break;
      if (received) delay = 1000;
      o.onState({ state: 'reconnecting', detail: e instanceof SseError ? e.message : 'connection lost' });
    } finally {
      o.signal.removeEventListener('abort', stop);
    }
    const wait = retryMs ?? delay;
    o.onState({ state: 'waiting', delayMs: wait });
    await sleep(wait, o.signal);
    delay = Math.min(delay * 2, 30_000);
  }
}

/** Resolves after `ms`, or as soon as `signal` aborts. */
export function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
