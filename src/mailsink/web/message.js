// message.js - one message: addresses, attachments, and tabs for the HTML body (in a
// fully sandboxed iframe: no scripts, no same origin, remote images off until asked),
// the plain text, the headers, the raw source and the envelope (what the SMTP session
// said: sender, recipients, client, HELO, TLS, AUTH).

import {api, partUrl, rawUrl, viewHtmlUrl} from './api.js';
import {h, fill, formatAddresses, formatAddress, formatLongDate, formatSize} from './dom.js';

const RAW_SHOW_MAX = 2 * 1024 * 1024; // longer sources are cut in the page (link to all)

// src/href/background/srcset/poster pointing off-site, or a CSS url() that does
const REMOTE_RE = /(?:\b(?:src|srcset|background|poster)\s*=\s*["']?\s*|url\(\s*["']?\s*)(?:https?:)?\/\//i;

export class MessageView {
    constructor(section, actions) {
        this.section = section;
        this.actions = actions; // {back, remove, markUnread, older, newer}
        this.id = null;
        this.msg = null;
        this.abort = null;
        this.tab = null;
        this.cache = {};
    }

    async show(id) {
        if (this.abort) this.abort.abort();
        this.abort = new AbortController();
        const signal = this.abort.signal;
        this.id = id;
        this.msg = null;
        this.cache = {};
        fill(this.section, this.toolbar(), h('p', {class: 'loading'}, 'Loading…'));
        let msg;
        try {
            msg = await api.message(id, signal);
        } catch (e) {
            if (signal.aborted) return null;
            fill(
                this.section,
                this.toolbar(),
                h('p', {class: 'notice error', role: 'alert'},
                  e.status === 404 ? 'This message does not exist (any more).' : `Could not load the message: ${e.message}`),
            );
            return null;
        }
        if (signal.aborted || this.id !== id) return null;
        this.msg = msg;
        this.render();
        return msg;
    }

    toolbar() {
        const a = this.actions;
        return h(
            'div',
            {class: 'toolbar', role: 'toolbar', 'aria-label': 'Message actions'},
            h('button', {type: 'button', class: 'back', onclick: () => a.back(), title: 'Back to the list (Esc)'}, '← Back'),
            h('button', {type: 'button', onclick: () => a.newer(), title: 'Newer message (k)'}, 'Newer'),
            h('button', {type: 'button', onclick: () => a.older(), title: 'Older message (j)'}, 'Older'),
            h('button', {type: 'button', class: 'mark-unread', onclick: () => a.markUnread(this.id), title: 'Mark unread (u)'}, 'Mark unread'),
            h('button', {type: 'button', class: 'danger delete', onclick: () => a.remove(this.id), title: 'Delete (#)'}, 'Delete'),
            this.id ? h('a', {class: 'button', href: rawUrl(this.id), download: `${this.id}.eml`}, 'Download .eml') : null,
        );
    }

    render() {
        const m = this.msg;
        const rows = [
            ['From', formatAddress(m.From)],
            ['To', formatAddresses(m.To)],
            ['Cc', formatAddresses(m.Cc)],
            ['Bcc', formatAddresses(m.Bcc)],
            ['Reply-To', formatAddresses(m.ReplyTo)],
            ['Date', formatLongDate(m.Date)],
            ['Size', formatSize(m.Size)],
            ['Tags', Array.isArray(m.Tags) ? m.Tags.join(', ') : ''],
        ].filter(([, v]) => v);
        const tabs = [
            ['html', 'HTML', !!m.HTML],
            ['text', 'Text', true],
            ['headers', 'Headers', true],
            ['source', 'Source', true],
            ['envelope', 'Envelope', true],
        ].filter(([, , on]) => on);
        this.panel = h('div', {class: 'panel', role: 'tabpanel', id: 'msg-panel', tabindex: 0});
        this.tablist = h(
            'div',
            {class: 'tabs', role: 'tablist', 'aria-label': 'Message parts'},
            tabs.map(([key, label]) =>
                h('button', {type: 'button', role: 'tab', id: `tab-${key}`, 'data-tab': key, 'aria-controls': 'msg-panel',
                    'aria-selected': 'false', onclick: () => this.select(key), onkeydown: (e) => this.tabKey(e)}, label)),
        );
        fill(
            this.section,
            this.toolbar(),
            h('h2', {class: 'subject', id: 'msg-subject'}, m.Subject || '(no subject)'),
            h('dl', {class: 'addresses'}, rows.map(([k, v]) => [h('dt', null, k), h('dd', null, v)])),
            this.attachments(),
            this.tablist,
            this.panel,
        );
        this.select(m.HTML ? 'html' : 'text');
    }

    attachments() {
        const m = this.msg;
        const parts = [
            ...(Array.isArray(m.Attachments) ? m.Attachments : []),
            ...(Array.isArray(m.Inline) ? m.Inline.map((p) => ({...p, inline: true})) : []),
        ];
        if (!parts.length) return null;
        return h(
            'section',
            {class: 'attachments', 'aria-label': 'Attachments'},
            h('h3', null, `Attachments (${parts.length})`),
            h('ul', null, parts.map((p) => {
                const name = p.FileName || `part-${p.PartID}`;
                return h(
                    'li',
                    null,
                    h('a', {class: 'attachment', href: partUrl(this.id, p.PartID), download: name}, name),
                    h('span', {class: 'att-meta'}, ` ${p.ContentType || ''} · ${formatSize(p.Size)}${p.inline ? ' · inline' : ''}`),
                );
            })),
        );
    }

    // Arrow keys move between tabs (WAI-ARIA tabs pattern).
    tabKey(e) {
        if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
        const buttons = [...this.tablist.querySelectorAll('[role=tab]')];
        const i = buttons.indexOf(e.currentTarget);
        const next = buttons[(i + (e.key === 'ArrowRight' ? 1 : buttons.length - 1)) % buttons.length];
        e.preventDefault();
        e.stopPropagation();
        next.focus();
        this.select(next.dataset.tab);
    }

    select(key) {
        this.tab = key;
        for (const b of this.tablist.querySelectorAll('[role=tab]')) {
            const on = b.dataset.tab === key;
            b.setAttribute('aria-selected', on ? 'true' : 'false');
            b.tabIndex = on ? 0 : -1;
        }
        this.panel.setAttribute('aria-labelledby', `tab-${key}`);
        const render = {
            html: () => this.htmlPanel(false),
            text: () => this.textPanel(),
            headers: () => this.lazy('headers', (s) => api.headers(this.id, s), (d) => this.headersTable(d)),
            source: () => this.lazy('source', (s) => api.raw(this.id, s), (d) => this.source(d)),
            envelope: () => this.lazy('envelope', (s) => api.envelope(this.id, s), (d) => this.envelope(d)),
        }[key];
        render();
    }

    htmlPanel(remote) {
        const hasRemote = REMOTE_RE.test(this.msg.HTML || '');
        // sandbox="" : no scripts, no same origin, no forms, no popups, no top navigation
        const frame = h('iframe', {
            class: 'html-body',
            sandbox: '',
            src: viewHtmlUrl(this.id, remote),
            title: 'HTML body of the message',
            referrerpolicy: 'no-referrer',
        });
        const bar = hasRemote
            ? h('p', {class: 'remote-bar'},
                remote ? 'Remote images are loaded.' : 'Remote images are blocked. ',
                remote ? null : h('button', {type: 'button', class: 'load-remote', onclick: () => this.htmlPanel(true)}, 'Load remote images'))
            : null;
        fill(this.panel, bar, frame);
    }

    textPanel() {
        const text = this.msg.Text || '';
        fill(this.panel, text ? h('pre', {class: 'text-body'}, text) : h('p', {class: 'notice'}, 'This message has no plain-text part.'));
    }

    // Fetch a tab's data once per message view; show it if the tab is still selected.
    async lazy(key, fetcher, view) {
        const id = this.id;
        if (this.cache[key] === undefined) {
            fill(this.panel, h('p', {class: 'loading'}, 'Loading…'));
            try {
                this.cache[key] = await fetcher(this.abort.signal);
            } catch (e) {
                if (this.id === id && this.tab === key)
                    fill(this.panel, h('p', {class: 'notice error', role: 'alert'}, `Could not load: ${e.message}`));
                return;
            }
        }
        if (this.id === id && this.tab === key) fill(this.panel, view(this.cache[key]));
    }

    headersTable(headers) {
        const names = Object.keys(headers || {}).sort();
        return h('table', {class: 'headers'},
            h('tbody', null, names.flatMap((name) => {
                const values = Array.isArray(headers[name]) ? headers[name] : [headers[name]];
                return values.map((v) => h('tr', null, h('th', {scope: 'row'}, name), h('td', null, String(v))));
            })));
    }

    source(raw) {
        const cut = raw.length > RAW_SHOW_MAX;
        return [
            cut ? h('p', {class: 'notice'}, `Showing the first ${formatSize(RAW_SHOW_MAX)} of ${formatSize(raw.length)}. `,
                h('a', {href: rawUrl(this.id)}, 'Open the whole source')) : null,
            h('pre', {class: 'raw-source'}, cut ? raw.slice(0, RAW_SHOW_MAX) : raw),
        ];
    }

    envelope(e) {
        const tls = e && e.TLS;
        const list = (v) => (Array.isArray(v) ? v.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(', ') : v ? String(v) : '');
        const rows = [
            ['Sender (MAIL FROM)', e.Sender === '' ? '<> (null sender)' : e.Sender],
            ['Recipients (RCPT TO)', list(e.Recipients)],
            ['Client address', e.ClientAddr],
            ['HELO/EHLO', e.Helo],
            ['TLS', tls ? [tls.Version, tls.Cipher].filter(Boolean).join(', ') || 'yes' : 'none (plain text)'],
            ['TLS client certificate', tls && tls.Peer ? tls.Peer : null],
            ['AUTH user', e.AuthUser || 'none'],
            ['Received', e.Received ? formatLongDate(e.Received) : null],
            ['Findings', list(e.Findings) || 'none'],
        ].filter(([, v]) => v !== null && v !== undefined);
        return h('dl', {class: 'envelope'}, rows.map(([k, v]) => [h('dt', null, k), h('dd', null, String(v))]));
    }
}
