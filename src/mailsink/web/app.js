// app.js - the web UI's entry point: routing (#/?q=...&start=... and #/message/ID, so
// the server serves one page at any web root), toolbar actions, keyboard shortcuts and
// live updates from /api/events (server-sent events).

import {api, url} from './api.js';
import {$, fill, h} from './dom.js';
import {MessageList, PAGE_SIZE} from './list.js';
import {MessageView} from './message.js';

const ui = {
    listView: $('#list-view'),
    messageView: $('#message-view'),
    search: $('#search'),
    searchForm: $('#search-form'),
    searchClear: $('#search-clear'),
    counts: $('#counts'),
    range: $('#range'),
    first: $('#first'),
    prev: $('#prev'),
    next: $('#next'),
    last: $('#last'),
    selectAll: $('#select-all'),
    markRead: $('#mark-read'),
    markUnread: $('#mark-unread'),
    deleteSelected: $('#delete-selected'),
    markAllRead: $('#mark-all-read'),
    deleteAll: $('#delete-all'),
    notice: $('#list-notice'),
    empty: $('#empty'),
    live: $('#live'),
    status: $('#status'),
    label: $('#label'),
    version: $('#version'),
};
let label = ''; // --ui-label: which mailsink this is, when several run

const list = new MessageList($('#messages'), {onChange: updateChrome});
const view = new MessageView(ui.messageView, {
    back: () => goBack(),
    remove: (id) => removeOpen(id),
    markUnread: (id) => markUnread([id]),
    older: () => openSibling(1),
    newer: () => openSibling(-1),
});

let route = {view: 'none'}; // nothing shown yet
let lastListHash = '#/';
let totals = {total: 0, unread: 0}; // the whole mailbox, kept by "stats" events
let reloadTimer = 0;

// ---------- routing ----------

function parseHash() {
    const hash = location.hash.replace(/^#/, '') || '/';
    if (hash.startsWith('/message/')) return {view: 'message', id: decodeURIComponent(hash.slice(9))};
    const qs = new URLSearchParams(hash.split('?')[1] || '');
    const start = Math.max(0, parseInt(qs.get('start') || '0', 10) || 0);
    return {view: 'list', q: qs.get('q') || '', start};
}

function listHash(q, start) {
    const qs = new URLSearchParams();
    if (q) qs.set('q', q);
    if (start) qs.set('start', String(start));
    const s = qs.toString();
    return s ? `#/?${s}` : '#/';
}

async function onRoute() {
    const previous = route;
    route = parseHash();
    if (route.view === 'message') {
        ui.listView.hidden = true;
        ui.messageView.hidden = false;
        // Esc goes back in history only when the list was shown before (in this page)
        // (j/k between messages replace the history entry, so that stays true)
        route.fromList = previous.view === 'list' || (previous.view === 'message' && previous.fromList);
        if (!list.loaded) reload(false); // opened by link: the list is there for j/k and Esc
        const msg = await view.show(route.id);
        if (msg) {
            list.setRead(route.id, true); // the server marked it read when we fetched it
            document.title = `${msg.Subject || '(no subject)'} - mailsink`;
            const i = list.indexOf(route.id);
            if (i >= 0) list.setCurrent(i, false);
        }
        return;
    }
    lastListHash = listHash(route.q, route.start);
    ui.messageView.hidden = true;
    ui.listView.hidden = false;
    ui.search.value = route.q;
    updateTitle();
    const same = list.loaded && list.query === route.q && list.start === route.start;
    if (same) list.markCurrent(true);
    else await reload(true);
}

function goBack() {
    if (route.view !== 'message') return;
    if (route.fromList && history.length > 1) history.back();
    else location.hash = lastListHash;
}

async function reload(focus) {
    try {
        if (await list.load(route.view === 'list' ? route.q : list.query, route.view === 'list' ? route.start : list.start)) {
            totals = {total: list.counts.total, unread: list.counts.unread};
            ui.notice.hidden = true;
            ui.notice.classList.remove('error');
            if (focus && route.view === 'list' && !ui.search.matches(':focus')) list.markCurrent(true);
            updateChrome();
        }
    } catch (e) {
        if (e.name === 'AbortError') return;
        // e.g. 400 for a search the server cannot read: say why, show no stale rows
        if (route.view === 'list') list.fail(route.q, route.start);
        fill(ui.notice, route.q ? `Search failed: ${e.message}` : `Could not load messages: ${e.message}`);
        ui.notice.classList.add('error');
        ui.notice.hidden = false;
    }
}

// coalesce bursts of events into one reload
function reloadSoon() {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(() => reload(false), 400);
}

// ---------- toolbar ----------

function updateChrome() {
    const searching = !!list.query;
    const n = list.messages.length;
    const count = searching ? list.counts.matching : totals.total;
    fill(ui.counts,
        searching ? `${list.counts.matching} matching · ` : '',
        `${totals.total} message${totals.total === 1 ? '' : 's'} · ${totals.unread} unread`);
    fill(ui.range, n ? `${list.start + 1}–${list.start + n} of ${count}` : '');
    ui.first.disabled = ui.prev.disabled = list.start === 0;
    ui.last.disabled = ui.next.disabled = list.start + n >= count;
    const sel = list.selected.size;
    ui.markRead.disabled = ui.markUnread.disabled = ui.deleteSelected.disabled = sel === 0;
    fill(ui.deleteSelected, sel ? `Delete (${sel})` : 'Delete');
    ui.selectAll.checked = n > 0 && sel === n;
    ui.selectAll.indeterminate = sel > 0 && sel < n;
    fill(ui.deleteAll, searching ? 'Delete all matching' : 'Delete all');
    ui.deleteAll.disabled = searching ? list.counts.matching === 0 : totals.total === 0;
    fill(ui.markAllRead, searching ? 'Mark matching read' : 'Mark all read');
    ui.markAllRead.disabled = searching ? list.counts.matchingUnread === 0 : totals.unread === 0;
    ui.searchClear.hidden = !searching && !ui.search.value;
    ui.empty.hidden = !list.loaded || n > 0;
    fill(ui.empty, searching ? 'No message matches this search.' : 'No messages yet. Send one over SMTP and it appears here.');
    updateTitle();
}

function updateTitle() {
    if (route.view === 'message') return;
    const name = label ? `${label} - mailsink` : 'mailsink';
    document.title = totals.unread ? `(${totals.unread}) ${name}` : name;
}

async function loadLabel() {
    try {
        const cfg = await api.webui();
        label = typeof cfg.Label === 'string' ? cfg.Label : '';
    } catch {
        return; // a missing label changes nothing
    }
    fill(ui.label, label);
    ui.label.hidden = !label;
    updateTitle();
}

let toastTimer = 0;
function toast(text, error) {
    fill(ui.status, text);
    ui.status.classList.toggle('error', !!error);
    ui.status.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => (ui.status.hidden = true), error ? 8000 : 3000);
}

async function act(what, fn) {
    try {
        await fn();
    } catch (e) {
        toast(`${what} failed: ${e.message}`, true);
        return false;
    }
    return true;
}

async function markRead(ids, read) {
    if (!ids.length) return;
    if (await act(read ? 'Mark read' : 'Mark unread', () => api.setRead(ids, read)))
        for (const id of ids) list.setRead(id, read);
}

async function markUnread(ids) {
    await markRead(ids, false);
}

async function removeIds(ids) {
    if (!ids.length) return false;
    if (!(await act('Delete', () => api.remove(ids)))) return false;
    let gone = 0;
    for (const id of ids) if (list.remove(id)) gone++;
    if (gone && list.messages.length < PAGE_SIZE) reloadSoon(); // refill the page
    toast(ids.length === 1 ? 'Message deleted.' : `${ids.length} messages deleted.`);
    return true;
}

async function removeOpen(id) {
    const i = list.indexOf(id);
    const next = list.messages[i + 1] || list.messages[i - 1];
    if (!(await removeIds([id]))) return;
    if (next) location.replace(`#/message/${encodeURIComponent(next.ID)}`);
    else location.replace(lastListHash);
}

function openSibling(delta) {
    const i = list.indexOf(route.id);
    const m = i >= 0 ? list.messages[i + delta] : null;
    if (m) location.replace(`#/message/${encodeURIComponent(m.ID)}`);
    else toast(delta > 0 ? 'No older message on this page.' : 'No newer message on this page.');
}

function openCurrent() {
    const id = list.currentId();
    if (id) location.hash = `#/message/${encodeURIComponent(id)}`;
}

function wireToolbar() {
    ui.searchForm.addEventListener('submit', (e) => {
        e.preventDefault();
        const hash = listHash(ui.search.value.trim(), 0);
        if (location.hash === hash) reload(true); // the same search again: ask again
        else location.hash = hash;
    });
    ui.search.addEventListener('input', () => (ui.searchClear.hidden = !ui.search.value && !list.query));
    ui.searchClear.addEventListener('click', () => {
        ui.search.value = '';
        location.hash = listHash('', 0);
    });
    ui.prev.addEventListener('click', () => (location.hash = listHash(list.query, Math.max(0, list.start - PAGE_SIZE))));
    ui.next.addEventListener('click', () => (location.hash = listHash(list.query, list.start + PAGE_SIZE)));
    ui.first.addEventListener('click', () => (location.hash = listHash(list.query, 0)));
    ui.last.addEventListener('click', () => {
        const count = list.query ? list.counts.matching : totals.total;
        location.hash = listHash(list.query, Math.max(0, Math.floor((count - 1) / PAGE_SIZE) * PAGE_SIZE));
    });
    ui.selectAll.addEventListener('change', () => list.selectAll(ui.selectAll.checked));
    ui.markRead.addEventListener('click', () => markRead([...list.selected], true));
    ui.markUnread.addEventListener('click', () => markRead([...list.selected], false));
    ui.deleteSelected.addEventListener('click', () => {
        const ids = [...list.selected];
        if (ids.length > 1 && !confirm(`Delete ${ids.length} messages?`)) return;
        removeIds(ids);
    });
    ui.markAllRead.addEventListener('click', async () => {
        const q = list.query;
        if (await act('Mark all read', () => api.markAllRead(q))) {
            for (const m of list.messages) list.setRead(m.ID, true);
            if (!q) totals.unread = 0; // else the "stats" event tells
            list.counts.matchingUnread = 0;
            updateChrome();
        }
    });
    ui.deleteAll.addEventListener('click', async () => {
        const q = list.query;
        const n = q ? list.counts.matching : totals.total;
        if (!confirm(q ? `Delete all ${n} messages matching "${q}"?` : `Delete all ${n} messages?`)) return;
        if (await act('Delete all', () => (q ? api.removeSearch(q) : api.removeAll()))) {
            list.clear();
            toast('Deleted.');
            reload(false);
        }
    });
}

// ---------- keyboard ----------

function isTyping(el) {
    if (!el || !el.tagName) return false;
    if (el.isContentEditable || el.tagName === 'TEXTAREA' || el.tagName === 'SELECT') return true;
    return el.tagName === 'INPUT' && !['checkbox', 'radio', 'button', 'submit', 'reset'].includes(el.type);
}

function onKey(e) {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
    const target = e.target;
    if (isTyping(target)) {
        if (e.key === 'Escape') {
            target.blur();
            if (route.view === 'list') list.markCurrent(true);
        }
        return;
    }
    const onControl = target.closest && target.closest('button, a, [role=tab], iframe');
    const inList = route.view === 'list';
    const handled = () => e.preventDefault();
    switch (e.key) {
    case 'j':
    case 'ArrowDown':
        if (inList) list.move(1);
        else if (e.key === 'j') openSibling(1);
        else return;
        return handled();
    case 'k':
    case 'ArrowUp':
        if (inList) list.move(-1);
        else if (e.key === 'k') openSibling(-1);
        else return;
        return handled();
    case 'Enter':
    case 'o':
        // Enter on a link or button does what that control does (a row's link opens it)
        if (!inList || (e.key === 'Enter' && onControl)) return;
        openCurrent();
        return handled();
    case 'Delete':
    case '#':
        if (inList) removeIds(list.currentId() ? [list.currentId()] : []);
        else removeOpen(route.id);
        return handled();
    case 'u':
        markUnread(inList ? [list.currentId()].filter(Boolean) : [route.id]);
        return handled();
    case 'r':
        if (inList) markRead([list.currentId()].filter(Boolean), true);
        return handled();
    case 'x':
        if (inList && list.currentId()) list.toggle(list.currentId(), !list.selected.has(list.currentId()));
        return handled();
    case '/':
        ui.search.focus();
        ui.search.select();
        return handled();
    case 'Escape':
        if (!inList) goBack();
        else if (list.selected.size) list.clearSelection();
        return handled();
    }
}

// ---------- live events ----------

function connectEvents() {
    if (typeof EventSource !== 'function') return;
    const es = new EventSource(url('api/events'));
    let wasDown = false;
    const data = (e) => {
        try {
            return JSON.parse(e.data);
        } catch {
            return null;
        }
    };
    es.addEventListener('open', () => {
        ui.live.classList.add('on');
        ui.live.title = 'Live updates: connected';
        if (wasDown) reload(false); // catch up on what happened while disconnected
        wasDown = false;
    });
    es.addEventListener('error', () => {
        ui.live.classList.remove('on');
        ui.live.title = 'Live updates: reconnecting…';
        wasDown = true;
    });
    es.addEventListener('new', (e) => {
        const m = data(e);
        if (!m || !m.ID) return;
        totals.total++;
        if (!m.Read) totals.unread++;
        // a page in flight may or may not hold it: ask again once it is committed
        if (!list.loaded || list.loading) reloadSoon();
        else if (!list.query && list.start === 0) list.add(m);
        else if (list.query && list.start === 0) reloadSoon();
        else showNewer();
        updateChrome();
    });
    es.addEventListener('delete', (e) => {
        const d = data(e);
        if (!d || !d.ID) return;
        if (list.loading || (list.remove(d.ID) && list.messages.length < PAGE_SIZE)) reloadSoon();
        if (route.view === 'message' && route.id === String(d.ID)) toast('This message was deleted.', true);
    });
    es.addEventListener('update', (e) => {
        const d = data(e);
        if (!d || !d.ID) return;
        if (typeof d.Read === 'boolean') list.setRead(d.ID, d.Read);
        if (Array.isArray(d.Tags)) list.setTags(d.ID, d.Tags);
    });
    es.addEventListener('stats', (e) => {
        const d = data(e);
        if (!d) return;
        const before = totals.total;
        totals = {total: Number(d.Total) || 0, unread: Number(d.Unread) || 0};
        if (d.Version) fill(ui.version, `· mailsink ${d.Version}`);
        if (totals.total === 0 && list.messages.length) list.clear();
        // a large delete announces only its first 1000 ids: fetch the page again
        else if (totals.total < before && route.view !== 'message') reloadSoon();
        updateChrome();
    });
}

function showNewer() {
    fill(ui.notice, 'New messages arrived. ',
        h('button', {type: 'button', onclick: () => (location.hash = listHash(list.query, 0))}, 'Show newest'));
    ui.notice.classList.remove('error');
    ui.notice.hidden = false;
}

// ---------- start ----------

wireToolbar();
document.addEventListener('keydown', onKey);
window.addEventListener('hashchange', onRoute);
connectEvents();
loadLabel();
onRoute();
