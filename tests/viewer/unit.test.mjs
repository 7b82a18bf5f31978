// Unit tests of the viewer's pure modules (no DOM, no network), run by
// `node --test` from tests/read/viewer.rs: the event-stream parser against
// the parsing rules of the HTML standard, chunked at every possible
// boundary, and the two translations into the API's regex language.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { SseParser, MAX_LINE } from '../../src/api/viewer/sse.js';
import { escapeRegex, firstLine, signatureRegex } from '../../src/api/viewer/format.js';

function parseAll(chunks) {
  const events = [];
  const comments = [];
  const p = new SseParser((e) => events.push(e), (c) => comments.push(c));
  for (const c of chunks) p.push(c);
  return { events, comments, parser: p };
}

/** Every way of cutting `text` into two chunks, plus one char per chunk. */
function splits(text) {
  const out = [[text], [...text]];
  for (let i = 1; i < text.length; i++) out.push([text.slice(0, i), text.slice(i)]);
  return out;
}

const STREAM =
  '\ufeff: hello\n' +
  'id: 7\ndata: {"seq":7}\n\n' +
  ': heartbeat\r\n' +
  'id: 8\r\ndata: line one\r\ndata: line two\r\n\r\n' +
  'retry: 2500\rid:9\rdata:no-space\r\r' +
  'event: other\ndata: skipped by type\n\n' +
  'data: no id keeps the last\n\n' +
  'data: unterminated';

test('parses ids, multi-line data, comments and every line ending, however chunked', () => {
  for (const chunks of splits(STREAM)) {
    const { events, comments, parser } = parseAll(chunks);
    const where = JSON.stringify(chunks.length > 2 ? 'per char' : chunks);
    assert.deepEqual(
      events,
      [
        { id: '7', event: 'message', data: '{"seq":7}' },
        { id: '8', event: 'message', data: 'line one\nline two' },
        { id: '9', event: 'message', data: 'no-space' },
        { id: '9', event: 'other', data: 'skipped by type' },
        { id: '9', event: 'message', data: 'no id keeps the last' },
      ],
      where,
    );
    assert.deepEqual(comments, ['hello', 'heartbeat'], where);
    assert.equal(parser.retry, 2500, where);
    assert.equal(parser.lastId, '9', where);
  }
});

test('an event with no data is not dispatched, but its id is kept', () => {
  const { events, parser } = parseAll(['id: 41\n\n', 'data: x\n\n']);
  assert.deepEqual(events, [{ id: '41', event: 'message', data: 'x' }]);
  assert.equal(parser.lastId, '41');
});

test('CRLF split across chunks is one line end, not two', () => {
  const { events } = parseAll(['data: a\r', '\ndata: b\r', '\n\r', '\n']);
  assert.deepEqual(events, [{ id: '', event: 'message', data: 'a\nb' }]);
});

test('an endless line is refused, not buffered without bound', () => {
  const p = new SseParser(() => {});
  const chunk = 'x'.repeat(1024 * 1024);
  assert.throws(() => {
    for (let i = 0; i <= MAX_LINE / chunk.length; i++) p.push(chunk);
  }, /longer than/);
});

test('escapeRegex makes every Rust regex metacharacter literal', () => {
  assert.equal(escapeRegex('a.b*c?(d)[e]{f}|g^h$i\\j+k#l&m-n~o'), 'a\\.b\\*c\\?\\(d\\)\\[e\\]\\{f\\}\\|g\\^h\\$i\\\\j\\+k\\#l\\&m\\-n\\~o');
  assert.equal(escapeRegex('plain words'), 'plain words');
});

test('signatureRegex matches the messages of its group and not others', () => {
  const re = signatureRegex('db timeout after <num> ms on <hex> (pool <url>)');
  assert.equal(re, '^db timeout after .+? ms on .+? \\(pool .+?\\)$');
  // The Rust pattern is also valid JavaScript here: check it matches.
  const js = new RegExp(re);
  assert.ok(js.test('db timeout after 1234 ms on 7f3a9c21e0 (pool http://db:5432/x)'));
  assert.ok(!js.test('db timeout after 1234 ms on 7f3a9c21e0 (pool http://db:5432/x) and more'));
  assert.ok(!js.test('cache timeout after 1234 ms on 7f3a9c21e0 (pool x)'));
});

test('a very long signature matches by its first line, unanchored at the end', () => {
  const sig = `panic: boom <num>\n${'    at frame\n'.repeat(200)}`;
  const re = signatureRegex(sig);
  assert.equal(re, '^panic: boom .+?');
});

test('firstLine counts the lines after the first', () => {
  assert.deepEqual(firstLine('one'), { text: 'one', more: 0 });
  assert.deepEqual(firstLine('one\ntwo\nthree'), { text: 'one', more: 2 });
  assert.deepEqual(firstLine(null), { text: '', more: 0 });
});
