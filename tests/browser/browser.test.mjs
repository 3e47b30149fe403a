// browser.test.mjs - mailsink's web UI in headless chromium (playwright-core): live list,
// message view with the HTML in a sandboxed iframe, attachment download, delete, search,
// keyboard, phone width, and a hostile message that must run nothing.
//
// Environment (run.sh sets it; not MAILSINK_* names: mailsink reads those): UI_HTTP (http://127.0.0.1:PORT/), UI_SMTP
// (127.0.0.1:PORT), PW_MODULES (where playwright-core is installed), CHROMIUM,
// TEST_OUTPUT_DIR (screenshots).

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import {createRequire} from 'node:module';
import path from 'node:path';
import {after, before, describe, test} from 'node:test';

import {sendMail} from './smtp.mjs';

const HTTP = process.env.UI_HTTP;
const SMTP = process.env.UI_SMTP;
const OUT = process.env.TEST_OUTPUT_DIR;
const PREFIXED = process.env.UI_HTTP_PREFIXED || ''; // same UI under --webroot
const {chromium} = createRequire(path.join(process.env.PW_MODULES, 'package.json'))('playwright-core');

const WAIT = 20000; // any single UI wait (generous: test machines are busy)
const T = {timeout: 120000}; // any single test

let browser;
let context;
let page;
const pwned = []; // anything a message managed to run
const external = []; // requests that tried to leave 127.0.0.1
const pageErrors = [];

function isLocal(u) {
    if (/^(data|blob|about):/.test(u)) return true;
    try {
        return ['127.0.0.1', '[::1]', 'localhost'].includes(new URL(u).hostname);
    } catch {
        return false;
    }
}

async function newContext(options) {
    const ctx = await browser.newContext({acceptDownloads: true, ...options});
    // Nothing may leave the machine: record and abort every other request.
    await ctx.route('**/*', (route) => {
        const u = route.request().url();
        if (isLocal(u)) return route.continue();
        external.push(u);
        return route.abort();
    });
    await ctx.exposeFunction('__pwned', (what) => pwned.push(`__pwned(${what})`));
    ctx.setDefaultTimeout(WAIT);
    return ctx;
}

function watch(p) {
    p.on('dialog', (d) => {
        // our own confirm() for "delete all" is the only dialog the UI may show
        if (d.type() === 'confirm' && /^Delete/.test(d.message())) return d.accept();
        pwned.push(`dialog ${d.type()}: ${d.message()}`);
        return d.dismiss();
    });
    p.on('console', (m) => {
        // the payload logs; the browser's own reports of what it blocked are warnings/errors
        if (m.type() === 'log' && /PWNED-LOG/.test(m.text())) pwned.push(`console: ${m.text()}`);
        // the UI itself must live within its CSP (the message frame's blocks are expected)
        const where = m.location().url || '';
        if (/Content Security Policy/i.test(m.text()) && !/\/view\/|^about:srcdoc/.test(where) && !/view\//.test(m.text()))
            pageErrors.push(`CSP (${where}): ${m.text()}`);
    });
    p.on('pageerror', (e) => pageErrors.push(e.message));
    return p;
}

const shot = async (p, name) => {
    const file = path.join(OUT, `${name}.png`);
    await p.screenshot({path: file, fullPage: false});
    console.log(`screenshot: ${file}`);
};

async function apiJSON(p) {
    const r = await fetch(HTTP + p);
    assert.equal(r.status, 200, `GET ${p}: ${r.status}`);
    return r.json();
}

const uniq = (s) => `${s} ${crypto.randomBytes(4).toString('hex')}`;

// A multipart/mixed message: text and HTML alternatives and, optionally, one attachment.
function richMessage({subject, fromName = 'Browser Test', html, text, attName, attBytes}) {
    const b1 = `=-outer-${crypto.randomBytes(6).toString('hex')}`;
    const b2 = `=-alt-${crypto.randomBytes(6).toString('hex')}`;
    const lines = [
        `From: ${fromName} <sender@example.com>`,
        'To: Receiver <rcpt@example.com>',
        `Subject: ${subject}`,
        `Message-ID: <${crypto.randomBytes(8).toString('hex')}@browser.test>`,
        `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
        'MIME-Version: 1.0',
        `Content-Type: multipart/mixed; boundary="${b1}"`,
        '',
        `--${b1}`,
        `Content-Type: multipart/alternative; boundary="${b2}"`,
        '',
        `--${b2}`,
        'Content-Type: text/plain; charset=utf-8',
        '',
        text,
        `--${b2}`,
        'Content-Type: text/html; charset=utf-8',
        '',
        html,
        `--${b2}--`,
    ];
    if (attName)
        lines.push(
            `--${b1}`,
            `Content-Type: application/octet-stream; name="${attName}"`,
            `Content-Disposition: attachment; filename="${attName}"`,
            'Content-Transfer-Encoding: base64',
            '',
            attBytes.toString('base64').replace(/.{76}/g, '$&\n'),
        );
    lines.push(`--${b1}--`, '');
    return lines.join('\n');
}

function plainMessage(subject, body = 'Hello from the browser test.') {
    return [
        'From: Plain Sender <plain@example.com>',
        'To: rcpt@example.com',
        `Subject: ${subject}`,
        `Message-ID: <${crypto.randomBytes(8).toString('hex')}@browser.test>`,
        `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
        '',
        body,
        '',
    ].join('\n');
}

const send = (data, to = ['rcpt@example.com']) => sendMail(SMTP, [{from: 'sender@example.com', to, data}]);

// ID of the newest message matching a search (through the API).
async function idOf(subject) {
    const r = await apiJSON(`api/v1/search?query=${encodeURIComponent(`subject:"${subject}"`)}`);
    assert.equal(r.messages.length, 1, `one message with subject ${subject}`);
    return r.messages[0].ID;
}

// The payload of the hostile message: if it ever ran, it would mark the document, retitle
// the page, call the exposed __pwned (here or in the parent) and open a dialog.
const beacon = (w) =>
    `document.documentElement.setAttribute('data-pwned','${w}');document.title='PWNED';` +
    `console.log('PWNED-LOG ${w}');window.__pwned&&__pwned('${w}');parent.__pwned&&parent.__pwned('${w}');alert('pwned ${w}')`;

const row = (p, subject) => p.locator('li.msg', {hasText: subject});

async function openList(p, base = HTTP) {
    await p.goto(base);
    await p.waitForSelector('#live.on'); // the event stream is connected
    await p.waitForSelector('#list-view:not([hidden])');
}

describe('mailsink web UI', () => {
    before(async () => {
        assert.ok(HTTP && SMTP && OUT && process.env.PW_MODULES, 'run through run.sh');
        browser = await chromium.launch({executablePath: process.env.CHROMIUM || '/usr/bin/chromium', timeout: 60000});
        context = await newContext({viewport: {width: 1200, height: 850}});
        page = watch(await context.newPage());
    });

    after(async () => {
        if (browser) await browser.close();
    });

    test('a mail sent over SMTP appears live, opens, renders in the sandbox, downloads, deletes', T, async () => {
        await openList(page);
        await page.evaluate(() => (window.__noReload = true));
        const subject = uniq('Live arrival');
        const attBytes = crypto.randomBytes(3000);
        await send(richMessage({
            subject,
            html: '<html><body><h1 id="hello">HTML-MARKER</h1><p>Some <b>bold</b> text.</p></body></html>',
            text: 'TEXT-MARKER plain alternative',
            attName: 'data.bin',
            attBytes,
        }));
        await row(page, subject).waitFor();
        assert.equal(await page.evaluate(() => window.__noReload), true, 'the page did not reload');
        assert.match(await row(page, subject).getAttribute('class'), /unread/);
        await shot(page, 'list');

        await row(page, subject).locator('a.open').click();
        await page.waitForSelector('#message-view h2');
        assert.equal(await page.textContent('#message-view h2'), subject);
        const iframe = page.locator('iframe.html-body');
        assert.equal(await iframe.getAttribute('sandbox'), '', 'sandbox with no permissions');
        const id = await idOf(subject);
        assert.match(await iframe.getAttribute('src'), new RegExp(`view/${id}\\.html$`));
        const frame = page.frameLocator('iframe.html-body');
        assert.equal(await frame.locator('#hello').textContent(), 'HTML-MARKER');
        assert.equal(await frame.locator('b').textContent(), 'bold');
        await shot(page, 'message');

        // the other tabs
        await page.click('[role=tab][data-tab=text]');
        assert.match(await page.textContent('#msg-panel'), /TEXT-MARKER/);
        await page.click('[role=tab][data-tab=headers]');
        await page.waitForSelector('#msg-panel table.headers');
        assert.match(await page.textContent('#msg-panel'), new RegExp(subject));
        await page.click('[role=tab][data-tab=source]');
        await page.waitForSelector('#msg-panel pre.raw-source');
        assert.match(await page.textContent('#msg-panel'), /MIME-Version: 1\.0/);
        await page.click('[role=tab][data-tab=envelope]');
        await page.waitForSelector('#msg-panel dl.envelope');
        const env = await page.textContent('#msg-panel');
        assert.match(env, /sender@example\.com/);
        assert.match(env, /rcpt@example\.com/);
        assert.match(env, /127\.0\.0\.1/);
        assert.match(env, /browser-test\.example/);

        // attachment download: same bytes as sent
        const [download] = await Promise.all([page.waitForEvent('download'), page.click('a.attachment')]);
        const got = fs.readFileSync(await download.path());
        assert.ok(got.equals(attBytes), `downloaded ${got.length} bytes, sent ${attBytes.length}`);

        // opening it marked it read
        const read = await apiJSON(`api/v1/search?query=${encodeURIComponent(`subject:"${subject}"`)}`);
        assert.equal(read.messages[0].Read, true);

        // delete from the message view: gone from the list (without reload) and the API
        await page.click('#message-view button.delete');
        await row(page, subject).waitFor({state: 'detached'});
        assert.equal(await page.evaluate(() => window.__noReload), true, 'the page did not reload');
        const r = await fetch(`${HTTP}api/v1/message/${id}`);
        assert.equal(r.status, 404, 'deleted message is gone from the API');
    });

    test('deletes and read state from elsewhere show up without reload', T, async () => {
        await openList(page);
        const a = uniq('Elsewhere A');
        const b = uniq('Elsewhere B');
        await send(plainMessage(a));
        await send(plainMessage(b));
        await row(page, b).waitFor();
        await row(page, a).waitFor();
        const [ida, idb] = [await idOf(a), await idOf(b)];
        let r = await fetch(`${HTTP}api/v1/messages`, {method: 'PUT', body: JSON.stringify({IDs: [ida], Read: true})});
        assert.equal(r.status, 200);
        await page.waitForFunction((s) => {
            const li = [...document.querySelectorAll('li.msg')].find((x) => x.textContent.includes(s));
            return li && !li.classList.contains('unread');
        }, a);
        r = await fetch(`${HTTP}api/v1/messages`, {method: 'DELETE', body: JSON.stringify({IDs: [idb]})});
        assert.equal(r.status, 200);
        await row(page, b).waitFor({state: 'detached'});
        assert.equal(await row(page, a).count(), 1);
    });

    test('a hostile message shows as text and runs nothing', T, async () => {
        const tag = crypto.randomBytes(3).toString('hex');
        const subject = `<script>${beacon('subject')}</script><img src=x onerror="${beacon('subject-img')}"> ${tag}`;
        const fromName = `"<img src=x onerror=${beacon('from').replace(/"/g, '')}><script>${beacon('from2')}</script>"`;
        const attName = `<img src=x onerror=alert(1)>${tag}.html`;
        const html = [
            '<html><head><meta http-equiv="refresh" content="0;url=javascript:alert(\'pwned refresh\')"></head><body>',
            `<script>${beacon('html')}</script>`,
            `<img src="x" onerror="${beacon('html-img')}">`,
            `<svg onload="${beacon('svg')}"></svg>`,
            `<iframe srcdoc="<script>parent.parent.__pwned('srcdoc')</script>"></iframe>`,
            `<body onload="${beacon('onload')}">`,
            `<p id="visible">HOSTILE-BODY ${tag}</p>`,
            `<form action="javascript:alert('pwned form')"><button id="go">go</button></form>`,
            '</body></html>',
        ].join('\n');
        await openList(page);
        await send(richMessage({
            subject,
            fromName,
            html,
            text: `<script>${beacon('text')}</script> TEXT ${tag}`,
            attName,
            attBytes: Buffer.from(`<script>${beacon('attachment')}</script>`),
        }));
        const r = page.locator('li.msg', {hasText: tag});
        await r.waitFor();
        // the subject is shown literally, as text
        assert.equal(await r.locator('.subject').textContent(), subject);
        assert.equal(await page.locator('li.msg img, li.msg script').count(), 0);
        await r.locator('a.open').click();
        await page.waitForSelector('#message-view h2');
        assert.equal(await page.textContent('#message-view h2'), subject);
        assert.match(await page.textContent('#message-view dl.addresses'), /<img src=x onerror=/);
        assert.equal(await page.locator('a.attachment').textContent(), attName);
        assert.equal(await page.locator('#message-view img, #message-view script, #message-view svg').count(), 0);
        const frame = page.frameLocator('iframe.html-body');
        assert.match(await frame.locator('#visible').textContent(), /HOSTILE-BODY/);
        await frame.locator('#go').click({timeout: 3000}).catch(() => {}); // forms are sandboxed too
        await page.click('[role=tab][data-tab=text]');
        assert.match(await page.textContent('#msg-panel pre'), /<script>/);
        await page.click('[role=tab][data-tab=source]');
        await page.waitForSelector('#msg-panel pre.raw-source');
        await page.click('[role=tab][data-tab=html]');
        await frame.locator('#visible').waitFor();
        // the hostile attachment (an .html file with a script) downloads, never renders here
        const [download] = await Promise.all([page.waitForEvent('download'), page.click('a.attachment')]);
        assert.match(fs.readFileSync(await download.path(), 'latin1'), /<script>/);
        // ...and opened directly (a new tab on its URL) it is a download or a sandboxed page
        const direct = watch(await context.newPage());
        const href = await page.getAttribute('a.attachment', 'href');
        await direct.goto(new URL(href, HTTP).href).catch(() => {}); // "Download is starting" is fine
        await direct.waitForTimeout(500);
        await direct.close();
        await page.waitForTimeout(1000); // give anything that might run the time to do it
        await shot(page, 'hostile');
        // inside the frame: no script changed the document
        assert.equal(await frame.locator('[data-pwned]').count(), 0);
        assert.equal(await page.locator('[data-pwned]').count(), 0);
        assert.notEqual(await page.title(), 'PWNED');
        assert.deepEqual(pwned, [], `something ran: ${pwned.join('; ')}`);
        assert.deepEqual(pageErrors, [], `page errors: ${pageErrors.join('; ')}`);
    });

    test('the hostile payload does run where scripts are allowed (the detector works)', T, async () => {
        // Same beacon in a page that allows scripts: if this does not fire, the test above proves nothing.
        const p = watch(await context.newPage());
        const before = pwned.length;
        await p.setContent(`<p>x</p><img src="data:," onerror="${beacon('control')}">`);
        for (let i = 0; i < 50 && pwned.length < before + 3; i++) await p.waitForTimeout(100);
        assert.ok(pwned.some((x) => x.includes('__pwned(control)')), 'the exposed function was called');
        assert.ok(pwned.some((x) => /dialog alert/.test(x)), 'the dialog was seen');
        assert.ok(pwned.some((x) => /console: PWNED-LOG control/.test(x)), 'the console line was seen');
        assert.equal(await p.locator('[data-pwned]').count(), 1, 'the document was marked');
        pwned.length = before; // expected: not a finding
        await p.close();
    });

    test('keyboard: j/k, Enter, Esc, u, #, /', T, async () => {
        const subjects = [uniq('Key one'), uniq('Key two'), uniq('Key three')];
        for (const s of subjects) await send(plainMessage(s));
        await openList(page);
        await row(page, subjects[2]).waitFor();
        // newest first: three, two, one
        await page.locator('body').press('Escape');
        const current = () => page.locator('li.msg.current .subject').textContent();
        await page.evaluate(() => document.activeElement && document.activeElement.blur());
        assert.equal(await current(), subjects[2]);
        await page.keyboard.press('j');
        assert.equal(await current(), subjects[1]);
        await page.keyboard.press('ArrowDown');
        assert.equal(await current(), subjects[0]);
        await page.keyboard.press('k');
        assert.equal(await current(), subjects[1]);
        await page.keyboard.press('Enter');
        await page.waitForSelector('#message-view:not([hidden]) h2');
        assert.equal(await page.textContent('#message-view h2'), subjects[1]);
        await page.keyboard.press('u');
        await page.waitForFunction(async (s) => {
            const r = await fetch(`api/v1/search?query=${encodeURIComponent(`subject:"${s}"`)}`);
            return !(await r.json()).messages[0].Read;
        }, subjects[1]);
        await page.keyboard.press('Escape');
        await page.waitForSelector('#list-view:not([hidden])');
        assert.equal(await current(), subjects[1]);
        assert.match(await page.locator('li.msg.current').getAttribute('class'), /unread/);
        await page.keyboard.press('o');
        await page.waitForSelector('#message-view:not([hidden]) h2');
        // j/k in a message move to the older/newer one; Esc still returns to the list
        await page.keyboard.press('j');
        await page.waitForFunction((s) => document.querySelector('#message-view h2')?.textContent === s, subjects[0]);
        await page.keyboard.press('k');
        await page.waitForFunction((s) => document.querySelector('#message-view h2')?.textContent === s, subjects[1]);
        await page.keyboard.press('Escape');
        await page.waitForSelector('#list-view:not([hidden])');
        await page.keyboard.press('#');
        await row(page, subjects[1]).waitFor({state: 'detached'});
        const left = await apiJSON(`api/v1/search?query=${encodeURIComponent(`subject:"${subjects[1]}"`)}`);
        assert.equal(left.messages.length, 0, 'deleted with #');
        await page.keyboard.press('/');
        assert.equal(await page.evaluate(() => document.activeElement.id), 'search');
        // focus is visible on the current row's link
        await page.keyboard.press('Escape');
        const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
        assert.notEqual(outline, 'none');
    });

    test('search with Mailpit syntax', T, async () => {
        const word = `zq${crypto.randomBytes(3).toString('hex')}`;
        await send(plainMessage(`Weekly report ${word}`));
        await send(plainMessage(`Daily report ${word}`));
        await send(plainMessage(`Unrelated zq${crypto.randomBytes(3).toString('hex')}`));
        await openList(page);
        await page.fill('#search', `subject:"weekly report" ${word}`);
        await page.press('#search', 'Enter');
        await page.waitForFunction(() => document.querySelector('#counts').textContent.includes('matching'));
        await page.waitForFunction(() => document.querySelectorAll('li.msg').length === 1);
        assert.match(await page.textContent('li.msg .subject'), /Weekly report/);
        assert.match(page.url(), /#\/\?q=/);
        await page.fill('#search', `${word} -subject:daily`);
        await page.press('#search', 'Enter');
        await page.waitForFunction(() => document.querySelectorAll('li.msg').length === 1);
        assert.match(await page.textContent('li.msg .subject'), /Weekly/);
        await page.waitForSelector('#live.on');
        // a new matching message shows up in the open search
        await send(plainMessage(`Weekly report ${word} late`));
        await page.waitForFunction(() => document.querySelectorAll('li.msg').length === 2);
        // "mark matching read" marks the search's messages only
        assert.equal(await page.textContent('#mark-all-read'), 'Mark matching read');
        await page.click('#mark-all-read');
        await page.waitForFunction(() => document.querySelectorAll('li.msg.unread').length === 0);
        const after = await apiJSON(`api/v1/search?query=${encodeURIComponent(`${word} -subject:daily is:unread`)}`);
        assert.equal(after.messages_count, 0, 'the matching message is read');
        const still = await apiJSON(`api/v1/search?query=${encodeURIComponent(`${word} subject:daily is:unread`)}`);
        assert.equal(still.messages_count, 1, 'the one not matching is still unread');
        // a search the server cannot read: its reason, and no stale rows
        await page.fill('#search', 'before:not-a-date');
        await page.press('#search', 'Enter');
        await page.waitForSelector('#list-notice.error:not([hidden])');
        assert.match(await page.textContent('#list-notice'), /Search failed: 400/);
        assert.equal(await page.locator('li.msg').count(), 0);
        await page.click('#search-clear');
        await page.waitForFunction(() => !document.querySelector('#counts').textContent.includes('matching'));
        await page.waitForSelector('#list-notice', {state: 'hidden'});
        assert.ok((await page.locator('li.msg').count()) >= 3);
    });

    test('paging: 50 per page', T, async () => {
        const word = `pg${crypto.randomBytes(3).toString('hex')}`;
        const msgs = [];
        for (let i = 0; i < 55; i++) msgs.push({from: 'pager@example.com', to: ['rcpt@example.com'], data: plainMessage(`Page ${word} ${i}`)});
        await sendMail(SMTP, msgs);
        await openList(page);
        await page.fill('#search', word);
        await page.press('#search', 'Enter');
        await page.waitForFunction(() => document.querySelector('#range').textContent.startsWith('1–50 of 55'));
        assert.equal(await page.locator('li.msg').count(), 50);
        await page.click('#next');
        await page.waitForFunction(() => document.querySelector('#range').textContent.startsWith('51–55 of 55'));
        assert.equal(await page.locator('li.msg').count(), 5);
        assert.equal(await page.isDisabled('#next'), true);
        await page.click('#first');
        await page.waitForFunction(() => document.querySelector('#range').textContent.startsWith('1–50'));
        await page.click('#last');
        await page.waitForFunction(() => document.querySelector('#range').textContent.startsWith('51–55 of 55'));
        await page.click('#prev');
        await page.waitForFunction(() => document.querySelector('#range').textContent.startsWith('1–50'));
        // select the page and delete the selection (confirm accepted)
        await page.check('#select-all');
        await page.click('#delete-selected');
        await page.waitForFunction(() => document.querySelector('#range').textContent.startsWith('1–5 of 5'));
    });

    test('remote images stay blocked until asked', T, async () => {
        const subject = uniq('Remote image');
        await send(richMessage({
            subject,
            html: '<p id="r">remote</p><img id="img" src="http://remote.invalid/pixel.png">',
            text: 'remote',
        }));
        const seen = external.length;
        await openList(page);
        await row(page, subject).locator('a.open').click();
        await page.frameLocator('iframe.html-body').locator('#r').waitFor();
        await page.waitForTimeout(500);
        assert.equal(external.length, seen, 'no remote request before asking');
        assert.equal(await page.locator('button.load-remote').count(), 1);
        await page.click('button.load-remote');
        await page.frameLocator('iframe.html-body').locator('#r').waitFor();
        for (let i = 0; i < 50 && external.length === seen; i++) await page.waitForTimeout(100);
        assert.ok(external.slice(seen).some((u) => u.includes('remote.invalid')), 'the remote image was asked for (and stopped by the test)');
        external.length = seen; // that request was the point of this test
    });

    test('inline images (cid:) show inside the sandbox', T, async () => {
        const subject = uniq('Inline image');
        const png = Buffer.from(
            'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
        const b = `=-rel-${crypto.randomBytes(6).toString('hex')}`;
        await send([
            'From: Inline <inline@example.com>',
            'To: rcpt@example.com',
            `Subject: ${subject}`,
            'MIME-Version: 1.0',
            `Content-Type: multipart/related; boundary="${b}"`,
            '',
            `--${b}`,
            'Content-Type: text/html; charset=utf-8',
            '',
            '<p id="i">inline</p><img id="dot" width="20" height="20" src="cid:dot@browser.test">',
            `--${b}`,
            'Content-Type: image/png',
            'Content-ID: <dot@browser.test>',
            'Content-Disposition: inline; filename="dot.png"',
            'Content-Transfer-Encoding: base64',
            '',
            png.toString('base64'),
            `--${b}--`,
            '',
        ].join('\n'));
        await openList(page);
        await row(page, subject).locator('a.open').click();
        const frame = page.frameLocator('iframe.html-body');
        await frame.locator('#i').waitFor();
        const loaded = async () => frame.locator('#dot').evaluate((img) => img.complete && img.naturalWidth);
        for (let i = 0; i < 50 && !(await loaded()); i++) await page.waitForTimeout(100);
        assert.equal(await loaded(), 1, 'the inline image loaded from the server');
        assert.match(await page.textContent('.attachments'), /dot\.png/);
    });

    test('toolbar: select, mark read and unread; every control has a name', T, async () => {
        const subject = uniq('Toolbar');
        await send(plainMessage(subject));
        await openList(page);
        const r = row(page, subject);
        await r.waitFor();
        const id = await idOf(subject);
        const isRead = async () => (await apiJSON(`api/v1/search?query=${encodeURIComponent(`subject:"${subject}"`)}`)).messages[0].Read;
        await r.locator('input.select').check();
        assert.equal(await page.textContent('#delete-selected'), 'Delete (1)');
        await page.click('#mark-read');
        await page.waitForFunction((i) => !document.querySelector(`li.msg[data-id="${i}"]`).classList.contains('unread'), id);
        assert.equal(await isRead(), true);
        await page.click('#mark-unread');
        await page.waitForFunction((i) => document.querySelector(`li.msg[data-id="${i}"]`).classList.contains('unread'), id);
        assert.equal(await isRead(), false);
        // accessibility basics: buttons and inputs all have a name
        const unnamed = await page.evaluate(() => {
            const bad = [];
            for (const b of document.querySelectorAll('button, a[href]'))
                if (!(b.getAttribute('aria-label') || b.textContent.trim())) bad.push(b.outerHTML.slice(0, 80));
            for (const i of document.querySelectorAll('input'))
                if (!(i.getAttribute('aria-label') || (i.id && document.querySelector(`label[for="${i.id}"]`)))) bad.push(i.outerHTML.slice(0, 80));
            return bad;
        });
        assert.deepEqual(unnamed, []);
        await r.locator('input.select').uncheck();
    });

    test('phone width (375 px)', T, async () => {
        const phone = watch(await context.newPage());
        await phone.setViewportSize({width: 375, height: 740});
        const subject = uniq('Phone');
        await send(plainMessage(subject));
        await openList(phone);
        await row(phone, subject).waitFor();
        const overflow = await phone.evaluate(() => document.documentElement.scrollWidth);
        assert.ok(overflow <= 375, `no sideways scrolling (width ${overflow})`);
        await shot(phone, 'phone');
        await row(phone, subject).locator('a.open').click();
        await phone.waitForSelector('#message-view h2');
        assert.ok((await phone.evaluate(() => document.documentElement.scrollWidth)) <= 375);
        await shot(phone, 'phone-message');
        await phone.close();
    });

    if (PREFIXED)
        test('under --webroot the UI builds every URL below the prefix', T, async () => {
            const subject = uniq('Prefixed');
            await sendMail(process.env.UI_SMTP_PREFIXED, [{from: 'p@example.com', to: ['r@example.com'], data: richMessage({
                subject, html: '<p id="p">PREFIX-HTML</p>', text: 'x'})}]);
            const p = watch(await context.newPage());
            const paths = [];
            p.on('request', (r) => paths.push(new URL(r.url()).pathname));
            await openList(p, PREFIXED);
            await row(p, subject).locator('a.open').click();
            await p.frameLocator('iframe.html-body').locator('#p').waitFor();
            // --ui-label (given by run.sh, markup and all) shows as text
            assert.equal(await p.textContent('#label'), 'Prefixed <i>box</i>');
            assert.equal(await p.locator('.top i').count(), 0);
            const prefix = new URL(PREFIXED).pathname;
            const outside = paths.filter((x) => !x.startsWith(prefix));
            assert.deepEqual(outside, [], 'every request stays below the prefix');
            await p.close();
        });

    test('delete all (with confirmation) empties the list', T, async () => {
        await send(plainMessage(uniq('Before delete all')));
        await openList(page);
        await page.waitForSelector('li.msg');
        await page.click('#delete-all');
        await page.waitForSelector('#empty:not([hidden])');
        const r = await apiJSON('api/v1/messages');
        assert.equal(r.total, 0);
    });

    test('nothing left 127.0.0.1, nothing ran, no page errors', () => {
        assert.deepEqual(external, [], `requests to other hosts: ${external.join(' ')}`);
        assert.deepEqual(pwned, [], `something ran: ${pwned.join('; ')}`);
        assert.deepEqual(pageErrors, [], `page errors: ${pageErrors.join('; ')}`);
    });
});
