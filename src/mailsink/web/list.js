// list.js - the message list: one page (start/limit) of summaries from the server, kept
// current by live events without reloading. Only one page is ever in the DOM, so the
// page stays fast however many messages the store holds.

import {api} from './api.js';
import {h, fill, formatShortDate, formatLongDate, formatSize} from './dom.js';

export const PAGE_SIZE = 50;

export class MessageList {
    constructor(ul, {onChange}) {
        this.ul = ul;
        this.onChange = onChange; // counts, selection or rows changed
        this.messages = [];
        this.rows = new Map(); // ID -> <li>
        this.selected = new Set();
        this.current = -1;
        this.query = '';
        this.start = 0;
        this.loaded = false;
        this.loading = false; // a page request is in flight
        this.counts = {total: 0, unread: 0, matching: 0, matchingUnread: 0};
        this.seq = 0;
        this.abort = null;
        // Tab or a click onto a row makes it the current one, so j/k continue from there.
        ul.addEventListener('focusin', (e) => {
            const li = e.target.closest('li.msg');
            const i = li ? this.indexOf(li.dataset.id) : -1;
            if (i >= 0 && i !== this.current) {
                this.current = i;
                this.markCurrent(false);
            }
        });
    }

    // Fetch one page; a newer load cancels an older one still in flight.
    async load(query, start) {
        const seq = ++this.seq;
        if (this.abort) this.abort.abort();
        this.abort = new AbortController();
        const signal = this.abort.signal;
        this.loading = true;
        let data;
        try {
            data = query
                ? await api.search(query, start, PAGE_SIZE, signal)
                : await api.list(start, PAGE_SIZE, signal);
        } finally {
            if (seq === this.seq) this.loading = false;
        }
        if (seq !== this.seq) return false;
        const keepId = this.query === query && this.start === start ? this.currentId() : null;
        this.query = query;
        this.start = Number(data.start) || start;
        this.loaded = true;
        this.counts = {
            total: Number(data.total) || 0,
            unread: Number(data.unread) || 0,
            matching: Number(data.messages_count ?? data.total) || 0,
            matchingUnread: Number(data.messages_unread ?? data.unread) || 0,
        };
        this.messages = Array.isArray(data.messages) ? data.messages : [];
        const ids = new Set(this.messages.map((m) => m.ID));
        for (const sid of [...this.selected]) if (!ids.has(sid)) this.selected.delete(sid);
        this.render();
        const keep = keepId ? this.indexOf(keepId) : -1;
        this.current = keep >= 0 ? keep : this.messages.length ? 0 : -1;
        this.markCurrent(false);
        this.onChange();
        return true;
    }

    // The page could not be loaded: show nothing rather than another query's rows.
    fail(query, start) {
        this.query = query;
        this.start = start;
        this.loaded = true;
        this.counts.matching = this.counts.matchingUnread = 0;
        this.clear();
    }

    render() {
        this.rows.clear();
        const items = this.messages.map((m) => this.row(m));
        fill(this.ul, items);
    }

    row(m) {
        const id = String(m.ID);
        const from = m.From || {};
        const fromText = from.Name || from.Address || '(no sender)';
        const subject = m.Subject || '(no subject)';
        const attachments = Number(m.Attachments) || 0;
        const tags = Array.isArray(m.Tags) ? m.Tags : [];
        const box = h('input', {
            type: 'checkbox',
            class: 'select',
            'aria-label': `Select: ${subject}`,
            onchange: (e) => this.toggle(id, e.target.checked),
        });
        box.checked = this.selected.has(id);
        const li = h(
            'li',
            {class: `msg${m.Read ? '' : ' unread'}${this.selected.has(id) ? ' selected' : ''}`, 'data-id': id},
            box,
            h(
                'a',
                {class: 'open', href: `#/message/${encodeURIComponent(id)}`},
                h('span', {class: 'unread-mark', title: 'Unread'}, h('span', {class: 'sr-only'}, m.Read ? '' : 'Unread: ')),
                h('span', {class: 'from', title: from.Address || ''}, fromText),
                h('span', {class: 'subject'}, subject),
                h('span', {class: 'snippet'}, m.Snippet || ''),
                h(
                    'span',
                    {class: 'meta'},
                    tags.map((t) => h('span', {class: 'tag'}, t)),
                    attachments
                        ? h('span', {class: 'att', title: `${attachments} attachment(s)`}, String(attachments))
                        : null,
                    h('span', {class: 'size'}, formatSize(m.Size)),
                    h('time', {datetime: m.Created || '', title: formatLongDate(m.Created)}, formatShortDate(m.Created)),
                ),
            ),
        );
        li.addEventListener('click', (e) => {
            if (e.target === li) this.setCurrent(this.indexOf(id), true);
        });
        this.rows.set(id, li);
        return li;
    }

    indexOf(id) {
        return this.messages.findIndex((m) => String(m.ID) === String(id));
    }

    currentId() {
        const m = this.messages[this.current];
        return m ? String(m.ID) : null;
    }

    setCurrent(index, focus) {
        if (index < 0 || index >= this.messages.length) return;
        this.current = index;
        this.markCurrent(focus);
    }

    move(delta) {
        if (!this.messages.length) return;
        const next = Math.max(0, Math.min(this.messages.length - 1, this.current + delta));
        this.setCurrent(next, true);
    }

    markCurrent(focus) {
        for (const li of this.ul.querySelectorAll('li.current')) li.classList.remove('current');
        const id = this.currentId();
        const li = id ? this.rows.get(id) : null;
        if (!li) return;
        li.classList.add('current');
        if (focus) {
            li.querySelector('a.open').focus();
            li.scrollIntoView({block: 'nearest'});
        }
    }

    toggle(id, on) {
        if (on) this.selected.add(id);
        else this.selected.delete(id);
        const li = this.rows.get(id);
        if (li) {
            li.classList.toggle('selected', on);
            li.querySelector('input.select').checked = on;
        }
        this.onChange();
    }

    selectAll(on) {
        for (const m of this.messages) this.toggle(String(m.ID), on);
    }

    clearSelection() {
        for (const id of [...this.selected]) this.toggle(id, false);
    }

    // ---- live changes (from events or our own actions) ----

    // A new message: only the newest page of the unfiltered list can show it in place.
    add(m) {
        const id = String(m.ID);
        if (this.rows.has(id)) return;
        const li = this.row(m);
        this.messages.unshift(m);
        this.ul.prepend(li);
        if (this.current >= 0) this.current++;
        else this.current = 0;
        while (this.messages.length > PAGE_SIZE) {
            const last = this.messages.pop();
            const lastId = String(last.ID);
            this.rows.get(lastId)?.remove();
            this.rows.delete(lastId);
            this.selected.delete(lastId);
        }
        this.current = Math.min(this.current, this.messages.length - 1);
        this.markCurrent(false);
        this.onChange();
    }

    // Returns true when the row was on this page.
    remove(id) {
        id = String(id);
        const i = this.indexOf(id);
        if (i < 0) return false;
        const focused = this.ul.contains(document.activeElement);
        this.messages.splice(i, 1);
        this.rows.get(id)?.remove();
        this.rows.delete(id);
        this.selected.delete(id);
        if (this.current > i || this.current >= this.messages.length) this.current--;
        if (this.current < 0 && this.messages.length) this.current = 0;
        this.markCurrent(focused);
        this.onChange();
        return true;
    }

    clear() {
        this.messages = [];
        this.selected.clear();
        this.current = -1;
        this.render();
        this.onChange();
    }

    setRead(id, read) {
        const m = this.messages[this.indexOf(id)];
        if (!m || m.Read === read) return;
        m.Read = read;
        const li = this.rows.get(String(id));
        if (li) {
            li.classList.toggle('unread', !read);
            fill(li.querySelector('.unread-mark .sr-only'), read ? '' : 'Unread: ');
        }
        this.onChange();
    }

    setTags(id, tags) {
        const i = this.indexOf(id);
        if (i < 0) return;
        this.messages[i].Tags = Array.isArray(tags) ? tags : [];
        const old = this.rows.get(String(id));
        const fresh = this.row(this.messages[i]);
        old.replaceWith(fresh);
        this.markCurrent(false);
    }
}
