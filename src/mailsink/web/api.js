// api.js - every URL the UI uses, built below the web root, and small fetch helpers.
// The server puts its web root ("/" or "/prefix/") into the page's
// <meta name="mailsink-webroot">; <base> is not allowed (CSP base-uri 'none').

function findWebroot() {
    const meta = document.querySelector('meta[name="mailsink-webroot"]');
    const value = meta ? meta.getAttribute('content') || '' : '';
    // Not substituted (page opened some other way): the directory of this page.
    if (!value.startsWith('/') || value.includes('{{')) return location.pathname.replace(/[^/]*$/, '');
    return value.endsWith('/') ? value : `${value}/`;
}

export const webroot = findWebroot();

// url('api/v1/messages', {start: 0}) -> "/prefix/api/v1/messages?start=0"
export function url(path, params) {
    let u = webroot + path;
    if (params) {
        const qs = new URLSearchParams();
        for (const [k, v] of Object.entries(params))
            if (v !== undefined && v !== null && v !== '') qs.set(k, String(v));
        const s = qs.toString();
        if (s) u += `?${s}`;
    }
    return u;
}

const id = (x) => encodeURIComponent(x);
export const messageUrl = (msgId) => url(`api/v1/message/${id(msgId)}`);
export const partUrl = (msgId, partId) => url(`api/v1/message/${id(msgId)}/part/${id(partId)}`);
export const rawUrl = (msgId) => url(`api/v1/message/${id(msgId)}/raw`);
export const viewHtmlUrl = (msgId, remote) =>
    url(`view/${id(msgId)}.html`, remote ? {remote: 1} : null);

export class HttpError extends Error {
    constructor(status, text) {
        super(text ? `${status}: ${text}` : `HTTP ${status}`);
        this.status = status;
    }
}

async function check(resp) {
    if (resp.ok) return resp;
    let text = '';
    try {
        text = (await resp.text()).slice(0, 300).trim();
    } catch {
        // the reason is a nicety; the status alone says enough
    }
    throw new HttpError(resp.status, text);
}

export async function getJSON(path, params, signal) {
    const resp = await check(await fetch(url(path, params), {signal, cache: 'no-store'}));
    return resp.json();
}

export async function getText(path, signal) {
    const resp = await check(await fetch(url(path), {signal, cache: 'no-store'}));
    return resp.text();
}

// PUT/DELETE with a JSON body; Mailpit answers a plain "ok".
export async function send(method, path, body, params) {
    const init = {method, headers: {}};
    if (body !== undefined) {
        init.headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(body);
    }
    await check(await fetch(url(path, params), init));
}

export const api = {
    list: (start, limit, signal) => getJSON('api/v1/messages', {start, limit}, signal),
    search: (query, start, limit, signal) =>
        getJSON('api/v1/search', {query, start, limit, tz: timezone()}, signal),
    message: (msgId, signal) => getJSON(`api/v1/message/${id(msgId)}`, null, signal),
    headers: (msgId, signal) => getJSON(`api/v1/message/${id(msgId)}/headers`, null, signal),
    envelope: (msgId, signal) => getJSON(`api/v1/message/${id(msgId)}/envelope`, null, signal),
    webui: () => getJSON('api/v1/webui'),
    raw: (msgId, signal) => getText(`api/v1/message/${id(msgId)}/raw`, signal),
    setRead: (ids, read) =>
        ids.length ? send('PUT', 'api/v1/messages', {IDs: ids, Read: read}) : Promise.resolve(),
    // every message, or every one matching a search (Mailpit's PUT takes "Search")
    markAllRead: (query) => send('PUT', 'api/v1/messages', query ? {Search: query, Read: true} : {Read: true}),
    // An empty IDs list would mean "all" to the server: refuse it here.
    remove: (ids) =>
        ids.length ? send('DELETE', 'api/v1/messages', {IDs: ids}) : Promise.resolve(),
    removeAll: () => send('DELETE', 'api/v1/messages'),
    removeSearch: (query) => send('DELETE', 'api/v1/search', undefined, {query, tz: timezone()}),
};

function timezone() {
    try {
        return Intl.DateTimeFormat().resolvedOptions().timeZone || '';
    } catch {
        return '';
    }
}
