// dom.js - build the page from data without ever parsing data as HTML. Subjects,
// addresses, file names and headers come from strangers: every string becomes a text
// node or an attribute value (never innerHTML), so nothing in a message can execute.

// h('a', {class: 'x', href: u, onclick: fn}, 'text', child, [more]) -> element.
// Strings and numbers become text nodes; null/undefined/false children are skipped.
export function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
        if (value === null || value === undefined || value === false) continue;
        if (key === 'class') el.className = value;
        else if (key.startsWith('on') && typeof value === 'function')
            el.addEventListener(key.slice(2), value);
        else if (key === 'innerHTML' || key === 'style' || key.startsWith('on'))
            throw new Error(`h(): refusing to set ${key}`); // CSP and safety: never markup
        else if (value === true) el.setAttribute(key, '');
        else el.setAttribute(key, String(value));
    }
    append(el, children);
    return el;
}

function append(el, children) {
    for (const child of children) {
        if (child === null || child === undefined || child === false) continue;
        if (Array.isArray(child)) append(el, child);
        else if (child instanceof Node) el.appendChild(child);
        else el.appendChild(document.createTextNode(String(child)));
    }
}

// Replace everything inside el with the given children.
export function fill(el, ...children) {
    el.replaceChildren();
    append(el, children);
    return el;
}

export function $(selector, root = document) {
    return root.querySelector(selector);
}

// "1.2 kB" (1000-based like most mail clients show sizes).
export function formatSize(n) {
    if (typeof n !== 'number' || !isFinite(n) || n < 0) return '';
    if (n < 1000) return `${n} B`;
    const units = ['kB', 'MB', 'GB'];
    let v = n / 1000;
    let i = 0;
    while (v >= 1000 && i < units.length - 1) {
        v /= 1000;
        i++;
    }
    return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

// Short date for the list: the time for today, day and month this year, else the date.
export function formatShortDate(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return '';
    const now = new Date();
    if (d.toDateString() === now.toDateString())
        return d.toLocaleTimeString(undefined, {hour: '2-digit', minute: '2-digit'});
    if (d.getFullYear() === now.getFullYear())
        return d.toLocaleDateString(undefined, {day: 'numeric', month: 'short'});
    return d.toLocaleDateString();
}

export function formatLongDate(iso) {
    const d = new Date(iso);
    return isNaN(d) ? String(iso || '') : d.toLocaleString();
}

// "Name <addr>" or just the address; tolerant of missing fields.
export function formatAddress(a) {
    if (!a || typeof a !== 'object') return '';
    const name = a.Name || '';
    const addr = a.Address || '';
    if (name && addr) return `${name} <${addr}>`;
    return name || addr;
}

export function formatAddresses(list) {
    return Array.isArray(list) ? list.map(formatAddress).filter(Boolean).join(', ') : '';
}
