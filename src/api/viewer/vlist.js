// A virtualised list of fixed-height rows: only the rows in view (plus a
// small overscan) exist in the DOM, however many items the list holds, so
// appending 1,000 events a second costs one small re-render per animation
// frame, not one DOM node per event.
//
// Invariants:
// - `items` holds at most `capacity` entries; the oldest are dropped first,
//   and the scroll position is shifted by the dropped height so that what
//   the user is reading does not move.
// - Appends are batched: `push` only queues; the next animation frame moves
//   the queue into `items` and renders once.
// - `following` is true while the viewport is at the bottom. Appending keeps
//   it there; a scroll up by the user clears it (and `onFollowChange` tells
//   the page), a scroll back to the bottom sets it again.
// - Row elements are reused (a small pool), filled by `renderRow` with
//   textContent only: event text is never parsed as HTML.

export class VirtualList {
  /**
   * @param {HTMLElement} host  an empty element; the list fills it
   * @param {object} o
   * @param {(el: HTMLElement, item: any, index: number) => void} o.renderRow
   * @param {(item: any, index: number) => void} [o.onOpen]
   * @param {(following: boolean) => void} [o.onFollowChange]
   * @param {number} [o.capacity]
   * @param {string} [o.empty]  text shown while the list is empty
   * @param {boolean} [o.follow]  start at the bottom and follow (default true)
   */
  constructor(host, o) {
    this.host = host;
    this.renderRow = o.renderRow;
    this.onOpen = o.onOpen || (() => {});
    this.onFollowChange = o.onFollowChange || (() => {});
    this.capacity = o.capacity || 20_000;
    this.items = [];
    this.queued = [];
    this.following = o.follow !== false;
    this.startFollowing = this.following;
    this.selected = null; // the opened item, highlighted while it stays in the list
    this.frame = 0;
    this.rowHeight = 0;
    this.renderedTop = 0; // scrollTop as the last render left it

    this.viewport = document.createElement('div');
    this.viewport.className = 'viewport';
    this.viewport.tabIndex = -1;
    this.spacer = document.createElement('div');
    this.spacer.className = 'spacer';
    this.rows = document.createElement('div');
    this.rows.className = 'rows';
    this.emptyNote = document.createElement('p');
    this.emptyNote.className = 'empty';
    this.emptyNote.textContent = o.empty || 'Nothing yet.';
    this.spacer.append(this.rows);
    this.viewport.append(this.spacer);
    host.append(this.emptyNote, this.viewport);
    this.pool = [];

    this.viewport.addEventListener('scroll', () => this.onScroll(), { passive: true });
    this.rows.addEventListener('click', (e) => {
      const row = e.target.closest('.row');
      if (row && row.dataset.index !== undefined) {
        const i = Number(row.dataset.index);
        this.open(i);
      }
    });
    new ResizeObserver(() => this.schedule()).observe(this.viewport);
    this.schedule();
  }

  get length() {
    return this.items.length + this.queued.length;
  }

  /** Queue items for the next frame. */
  push(items) {
    for (const it of items) this.queued.push(it);
    // A burst while the tab is hidden (no frames) must not grow without bound.
    if (this.queued.length > this.capacity) this.queued.splice(0, this.queued.length - this.capacity);
    this.schedule();
  }

  /** Replace everything (a new query, a new filter). */
  reset(items = []) {
    this.items = items.slice(-this.capacity);
    this.queued = [];
    this.selected = null;
    this.following = this.startFollowing;
    this.onFollowChange(this.following);
    this.viewport.scrollTop = 0;
    this.schedule();
  }

  /** Scroll to the newest item and follow from there. */
  toBottom() {
    this.following = true;
    this.onFollowChange(true);
    this.schedule();
  }

  open(index) {
    const item = this.items[index];
    if (item === undefined) return;
    this.selected = item;
    this.onOpen(item, index);
    this.schedule();
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.render());
  }

  onScroll() {
    // Following stops only when the viewport moved up from where the last
    // render left it (the user scrolled); a resize or our own scroll to the
    // bottom does not count. Reaching the bottom again resumes it.
    const v = this.viewport;
    const atBottom = v.scrollTop + v.clientHeight >= v.scrollHeight - Math.max(2, this.rowHeight / 2);
    const following = atBottom || (this.following && v.scrollTop >= this.renderedTop - 1);
    if (following !== this.following) {
      this.following = following;
      this.onFollowChange(following);
    }
    this.schedule();
  }

  measure() {
    if (this.rowHeight) return;
    const probe = this.row();
    probe.style.visibility = 'hidden';
    this.rows.append(probe);
    this.rowHeight = probe.getBoundingClientRect().height || 22;
    probe.remove();
  }

  row() {
    const el = document.createElement('button');
    el.type = 'button';
    el.className = 'row';
    return el;
  }

  render() {
    this.frame = 0;
    if (!this.host.isConnected || this.host.closest('[hidden]')) {
      // Hidden: keep the data, skip the DOM work until shown again.
      this.flushQueue();
      return;
    }
    this.measure();
    const dropped = this.flushQueue();
    const v = this.viewport;
    const h = this.rowHeight;
    const total = this.items.length * h;
    this.spacer.style.height = `${total}px`;
    this.emptyNote.hidden = this.items.length > 0;
    const target = this.following
      ? Math.max(0, total - v.clientHeight)
      : Math.max(0, v.scrollTop - dropped * h);
    if (Math.abs(v.scrollTop - target) >= 1) v.scrollTop = target;
    const top = v.scrollTop;
    this.renderedTop = top;
    const first = Math.max(0, Math.floor(top / h) - 5);
    const last = Math.min(this.items.length, Math.ceil((top + v.clientHeight) / h) + 5);
    const need = last - first;
    if (this.pool.length < need) {
      while (this.pool.length < need) {
        const el = this.row();
        this.pool.push(el);
        this.rows.append(el);
      }
      for (const el of this.pool) el.item = undefined; // the slot mapping changed
    }
    // Item i always lives in slot i % pool size, so while following, a frame
    // that appends k rows re-renders k rows, not the whole screen.
    const n = this.pool.length;
    const used = new Uint8Array(n);
    for (let i = first; i < last; i++) {
      const el = this.pool[i % n];
      const item = this.items[i];
      used[i % n] = 1;
      if (el.hidden) el.hidden = false;
      el.style.transform = `translateY(${i * h}px)`;
      if (el.item !== item) {
        el.item = item;
        this.renderRow(el, item, i);
      }
      el.dataset.index = String(i);
      el.classList.toggle('selected', item === this.selected);
    }
    for (let k = 0; k < n; k++) {
      if (used[k]) continue;
      const el = this.pool[k];
      el.hidden = true;
      el.item = undefined;
    }
  }

  /** Move the queue into `items`, dropping the oldest past capacity; returns how many dropped. */
  flushQueue() {
    if (this.queued.length === 0) return 0;
    for (const it of this.queued) this.items.push(it);
    this.queued = [];
    const over = this.items.length - this.capacity;
    if (over <= 0) return 0;
    this.items.splice(0, over);
    return over;
  }
}
