// The mailpit-api npm client (MailpitClient) against a running mailsink: every call a
// test author makes (list, search, message, headers, source, attachment, read status,
// tags, info, send, wait, delete) with its values checked. Mail comes in over real SMTP
// from a small client below. run.sh starts mailsink and passes MAILSINK_SMTP_PORT and
// MAILSINK_HTTP_URL; this file is copied next to the installed node_modules.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import net from "node:net";
import { test } from "node:test";

import { MailpitClient } from "mailpit-api";

const SMTP_PORT = Number(process.env.MAILSINK_SMTP_PORT);
const HTTP_URL = process.env.MAILSINK_HTTP_URL;
const WEBROOT_URL = process.env.MAILSINK_WEBROOT_URL; // a second mailsink, --webroot /mail/
const TIMEOUT_MS = 20000;

// -- a minimal SMTP client: one reply per command, bounded by TIMEOUT_MS ------------------

function smtpConnect(port) {
    return new Promise((resolve, reject) => {
        const sock = net.createConnection({ host: "127.0.0.1", port });
        const replies = [];
        const waiters = [];
        let buf = "";
        let lines = [];
        let failed = null;
        const fail = (err) => {
            failed = err;
            while (waiters.length) waiters.shift().reject(err);
        };
        sock.setEncoding("utf8");
        sock.setTimeout(TIMEOUT_MS, () => sock.destroy(new Error("SMTP: no reply in time")));
        sock.on("data", (chunk) => {
            buf += chunk;
            for (let i = buf.indexOf("\r\n"); i >= 0; i = buf.indexOf("\r\n")) {
                const line = buf.slice(0, i);
                buf = buf.slice(i + 2);
                lines.push(line);
                if (/^\d{3}(?: |$)/.test(line)) {
                    const reply = { code: Number(line.slice(0, 3)), text: lines.map((l) => l.slice(4)).join("\n") };
                    lines = [];
                    if (waiters.length) waiters.shift().resolve(reply);
                    else replies.push(reply);
                }
            }
        });
        sock.on("error", fail);
        sock.on("close", () => fail(new Error("SMTP: connection closed")));
        const next = () => {
            if (replies.length) return Promise.resolve(replies.shift());
            if (failed) return Promise.reject(failed);
            return new Promise((res, rej) => waiters.push({ resolve: res, reject: rej }));
        };
        const cmd = async (line, want) => {
            if (line !== null) sock.write(line + "\r\n");
            const r = await next();
            assert.equal(r.code, want, `SMTP ${line ?? "greeting"}: ${r.code} ${r.text}`);
            return r;
        };
        sock.once("connect", () => resolve({ sock, cmd }));
        sock.once("error", reject);
    });
}

// Send one message (a string with CRLF line ends); returns the id from the 250 reply.
async function smtpSend(from, rcpts, data) {
    const c = await smtpConnect(SMTP_PORT);
    try {
        await c.cmd(null, 220);
        await c.cmd("EHLO compat.client", 250);
        await c.cmd(`MAIL FROM:<${from}>`, 250);
        for (const r of rcpts) await c.cmd(`RCPT TO:<${r}>`, 250);
        await c.cmd("DATA", 354);
        const stuffed = data.replace(/^\./gm, "..");
        const reply = await c.cmd(stuffed + (stuffed.endsWith("\r\n") ? "" : "\r\n") + ".", 250);
        await c.cmd("QUIT", 221);
        const m = /^2\.0\.0 (\S+) Message accepted/.exec(reply.text);
        assert.ok(m, `no id in the 250 reply: ${reply.text}`);
        return m[1];
    } finally {
        c.sock.destroy();
    }
}

function crlf(lines) {
    return lines.join("\r\n") + "\r\n";
}

function base64Lines(buf) {
    return buf.toString("base64").match(/.{1,76}/g).join("\r\n");
}

const BIN = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

const MSG_ONE = crlf([
    "From: Alice Compat <alice@compat.example>",
    "To: Bob <bob@compat.example>",
    "Subject: Compat one",
    "Date: Tue, 02 Jan 2024 09:00:00 +0000",
    "Message-ID: <one@compat.example>",
    "X-Compat: first",
    "",
    "Plain body of message one.",
    ".a line with a leading dot",
]);

const MSG_TWO = crlf([
    "From: carol@compat.example",
    "To: dave@compat.example",
    "Subject: Compat two",
    "Date: Tue, 02 Jan 2024 10:00:00 +0000",
    "Message-ID: <two@compat.example>",
    "MIME-Version: 1.0",
    'Content-Type: multipart/mixed; boundary="outer"',
    "",
    "--outer",
    'Content-Type: multipart/alternative; boundary="alt"',
    "",
    "--alt",
    "Content-Type: text/plain; charset=utf-8",
    "",
    "Text of message two.",
    "--alt",
    "Content-Type: text/html; charset=utf-8",
    "",
    "<p>HTML of <b>message two</b> marker-two</p>",
    "--alt--",
    "--outer",
    'Content-Type: application/octet-stream; name="data.bin"',
    'Content-Disposition: attachment; filename="data.bin"',
    "Content-Transfer-Encoding: base64",
    "",
    base64Lines(BIN),
    "--outer--",
]);

const MSG_THREE = crlf([
    "From: Erin <erin@compat.example>",
    "To: carol@compat.example",
    "Cc: Frank <frank@compat.example>",
    "Subject: Weekly compat report",
    "Date: Tue, 02 Jan 2024 11:00:00 +0000",
    "Message-ID: <three@compat.example>",
    "",
    "Numbers for the week.",
]);

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");
const subjects = (summary) => summary.messages.map((m) => m.Subject);

test("mailpit-api against mailsink", { timeout: 240000 }, async (t) => {
    assert.ok(SMTP_PORT > 0 && HTTP_URL, "MAILSINK_SMTP_PORT and MAILSINK_HTTP_URL must be set");
    const mailpit = new MailpitClient(HTTP_URL);
    const ids = {};

    await t.test("start empty: deleteMessages() with no body deletes all", async () => {
        assert.equal(await mailpit.deleteMessages(), "ok");
        const list = await mailpit.listMessages();
        assert.equal(list.total, 0);
        assert.deepEqual(list.messages, []);
    });

    await t.test("messages sent over SMTP are listed newest first", async () => {
        ids.one = await smtpSend("alice@compat.example", ["bob@compat.example"], MSG_ONE);
        ids.two = await smtpSend("carol@compat.example", ["dave@compat.example"], MSG_TWO);
        ids.three = await smtpSend("erin@compat.example", ["carol@compat.example", "frank@compat.example"], MSG_THREE);
        const list = await mailpit.listMessages();
        assert.equal(list.total, 3);
        assert.equal(list.unread, 3);
        assert.equal(list.messages_count, 3);
        assert.equal(list.count, 3);
        assert.deepEqual(subjects(list), ["Weekly compat report", "Compat two", "Compat one"]);
        assert.deepEqual(list.messages.map((m) => m.ID), [ids.three, ids.two, ids.one]);
        const two = list.messages[1];
        assert.equal(two.Attachments, 1);
        assert.equal(two.Read, false);
        assert.deepEqual(two.From, { Name: "", Address: "carol@compat.example" });
        const three = list.messages[0];
        assert.deepEqual(three.Cc, [{ Name: "Frank", Address: "frank@compat.example" }]);
        assert.deepEqual(three.ReplyTo, []);
        assert.ok(!Number.isNaN(Date.parse(three.Created)), three.Created);
        assert.equal(list.messages[2].MessageID, "one@compat.example");
    });

    await t.test("listMessages(start, limit) pages", async () => {
        const page = await mailpit.listMessages(1, 1);
        assert.equal(page.start, 1);
        assert.equal(page.count, 1);
        assert.equal(page.messages_count, 3);
        assert.deepEqual(subjects(page), ["Compat two"]);
        const rest = await mailpit.listMessages(2, 50);
        assert.deepEqual(subjects(rest), ["Compat one"]);
    });

    await t.test("searchMessages", async () => {
        let r = await mailpit.searchMessages({ query: 'subject:"weekly compat"' });
        assert.deepEqual(subjects(r), ["Weekly compat report"]);
        assert.equal(r.messages_count, 1);
        assert.equal(r.total, 3);
        r = await mailpit.searchMessages({ query: "to:carol@compat.example" });
        assert.deepEqual(subjects(r), ["Weekly compat report"]);
        r = await mailpit.searchMessages({ query: "from:carol@compat.example" });
        assert.deepEqual(subjects(r), ["Compat two"]);
        r = await mailpit.searchMessages({ query: "compat -subject:weekly" });
        assert.deepEqual(subjects(r), ["Compat two", "Compat one"]);
        r = await mailpit.searchMessages({ query: "has:attachment" });
        assert.deepEqual(subjects(r), ["Compat two"]);
        r = await mailpit.searchMessages({ query: "after:2000-01-01", tz: "America/Chicago" });
        assert.equal(r.messages_count, 3);
        r = await mailpit.searchMessages({ query: "nosuchthing" });
        assert.equal(r.messages_count, 0);
        assert.deepEqual(r.messages, []);
    });

    await t.test("getMessageSummary marks read and has the Message fields", async () => {
        const m = await mailpit.getMessageSummary(ids.one);
        assert.equal(m.ID, ids.one);
        assert.equal(m.Subject, "Compat one");
        assert.equal(m.MessageID, "one@compat.example");
        assert.deepEqual(m.From, { Name: "Alice Compat", Address: "alice@compat.example" });
        assert.deepEqual(m.To, [{ Name: "Bob", Address: "bob@compat.example" }]);
        assert.deepEqual(m.Cc, []);
        assert.equal(m.ReturnPath, "alice@compat.example");
        assert.match(m.Text, /Plain body of message one\.\r?\n\.a line with a leading dot/);
        assert.equal(m.HTML, "");
        assert.deepEqual(m.Attachments, []);
        assert.equal(Date.parse(m.Date), Date.parse("2024-01-02T09:00:00Z"));
        const list = await mailpit.listMessages();
        assert.equal(list.unread, 2);
        assert.equal(list.messages.find((x) => x.ID === ids.one).Read, true);
    });

    await t.test("getMessageSummary() defaults to the latest", async () => {
        const m = await mailpit.getMessageSummary();
        assert.equal(m.ID, ids.three);
        assert.equal(m.Subject, "Weekly compat report");
    });

    await t.test("getMessageHeaders", async () => {
        const h = await mailpit.getMessageHeaders(ids.one);
        const keys = Object.keys(h);
        assert.deepEqual(keys, [...keys].sort());
        assert.deepEqual(h.Subject, ["Compat one"]);
        assert.deepEqual(h["X-Compat"], ["first"]);
        assert.deepEqual(h["Message-Id"], ["<one@compat.example>"]);
        assert.ok(h["Return-Path"], keys.join(","));
    });

    await t.test("getMessageSource is the message as sent, after the trace headers", async () => {
        const src = await mailpit.getMessageSource(ids.one);
        assert.ok(src.endsWith(MSG_ONE), JSON.stringify(src.slice(-300)));
        assert.ok(src.startsWith("Return-Path: "), src.slice(0, 100));
        const list = await mailpit.listMessages();
        assert.equal(list.messages.find((x) => x.ID === ids.one).Size, Buffer.byteLength(src));
    });

    await t.test("getMessageAttachment returns the bytes with their type", async () => {
        const m = await mailpit.getMessageSummary(ids.two);
        assert.equal(m.Attachments.length, 1);
        const a = m.Attachments[0];
        assert.equal(a.FileName, "data.bin");
        assert.equal(a.ContentType, "application/octet-stream");
        assert.equal(a.Size, 256);
        assert.equal(a.Checksums.SHA256, sha256(BIN));
        const blob = await mailpit.getMessageAttachment(ids.two, a.PartID);
        assert.ok(blob.type.startsWith("application/octet-stream"), blob.type);
        assert.deepEqual(Buffer.from(await blob.arrayBuffer()), BIN);
        assert.match(m.HTML, /marker-two/);
        assert.match(m.Text, /Text of message two\./);
    });

    await t.test("renderMessageHTML and renderMessageText", async () => {
        const html = await mailpit.renderMessageHTML(ids.two);
        assert.match(html, /marker-two/);
        const text = await mailpit.renderMessageText(ids.two);
        assert.equal(text.trim(), "Text of message two.");
        await assert.rejects(mailpit.renderMessageHTML(ids.one), /404/);
    });

    await t.test("setReadStatus by IDs, by Search, all", async () => {
        // getMessageSummary read all three by now
        let list = await mailpit.listMessages();
        assert.equal(list.unread, 0);
        assert.equal(await mailpit.setReadStatus(), "ok"); // {} : all unread
        list = await mailpit.listMessages();
        assert.equal(list.unread, 3);
        assert.equal(await mailpit.setReadStatus({ IDs: [ids.two], Read: true }), "ok");
        list = await mailpit.listMessages();
        assert.equal(list.unread, 2);
        assert.deepEqual(list.messages.map((m) => m.Read), [false, true, false]);
        assert.equal(await mailpit.setReadStatus({ IDs: [ids.two], Read: false }), "ok");
        assert.equal(await mailpit.setReadStatus({ Search: "subject:weekly", Read: true }), "ok");
        list = await mailpit.listMessages();
        assert.deepEqual(list.messages.map((m) => m.Read), [true, false, false]);
        assert.equal(await mailpit.setReadStatus({ Read: true }), "ok");
        assert.equal((await mailpit.listMessages()).unread, 0);
        assert.equal(await mailpit.setReadStatus({ Search: "after:2000-01-01", Read: false }, { tz: "Europe/Berlin" }), "ok");
        assert.equal((await mailpit.listMessages()).unread, 3);
    });

    await t.test("setTags, getTags, info", async () => {
        assert.deepEqual(await mailpit.getTags(), []);
        assert.equal(await mailpit.setTags({ IDs: [ids.one, ids.three], Tags: ["compat", "Two"] }), "ok");
        assert.deepEqual(await mailpit.getTags(), ["compat", "Two"]);
        const r = await mailpit.searchMessages({ query: "tag:compat" });
        assert.deepEqual(r.messages.map((m) => m.ID), [ids.three, ids.one]);
        assert.deepEqual(r.messages[0].Tags, ["compat", "Two"]);
        const info = await mailpit.getInfo();
        assert.equal(info.Messages, 3);
        assert.equal(info.Unread, 3);
        assert.deepEqual(info.Tags, { compat: 2, Two: 2 });
        assert.equal(typeof info.Version, "string");
        assert.equal(typeof info.RuntimeStats.SMTPAccepted, "number");
        assert.ok(info.RuntimeStats.SMTPAccepted >= 3);
        assert.equal(await mailpit.setTags({ IDs: [ids.three] }), "ok"); // no Tags: removes
        assert.deepEqual(await mailpit.getTags(), ["compat", "Two"]);
        assert.deepEqual((await mailpit.getMessageSummary(ids.three)).Tags, []);
    });

    await t.test("getConfiguration", async () => {
        const c = await mailpit.getConfiguration();
        assert.equal(typeof c.Label, "string");
        assert.equal(c.MessageRelay.Enabled, false);
        assert.equal(c.SpamAssassin, false);
    });

    await t.test("sendMessage stores a message like SMTP would", async () => {
        const payload = Buffer.from("attachment from the API \u2713\n", "utf8");
        const res = await mailpit.sendMessage({
            From: { Email: "api@compat.example", Name: "API Sender" },
            To: [{ Email: "to@compat.example", Name: "To Person" }, { Email: "two@compat.example" }],
            Bcc: ["secret@compat.example"],
            Subject: "Sent through mailpit-api",
            Text: "Body from sendMessage",
            HTML: "<p>HTML from sendMessage</p>",
            Tags: ["from-api"],
            Attachments: [{ Content: payload.toString("base64"), Filename: "api.txt", ContentType: "text/plain" }],
        });
        assert.equal(typeof res.ID, "string");
        ids.sent = res.ID;
        const m = await mailpit.getMessageSummary(res.ID);
        assert.equal(m.Subject, "Sent through mailpit-api");
        assert.deepEqual(m.From, { Name: "API Sender", Address: "api@compat.example" });
        assert.deepEqual(m.To.map((a) => a.Address), ["to@compat.example", "two@compat.example"]);
        assert.deepEqual(m.Bcc.map((a) => a.Address), ["secret@compat.example"]);
        assert.equal(m.Text.trim(), "Body from sendMessage");
        assert.match(m.HTML, /HTML from sendMessage/);
        assert.deepEqual(m.Tags, ["from-api"]);
        assert.equal(m.Attachments.length, 1);
        assert.equal(m.Attachments[0].FileName, "api.txt");
        assert.equal(m.Attachments[0].Checksums.SHA256, sha256(payload));
        const blob = await mailpit.getMessageAttachment(res.ID, m.Attachments[0].PartID);
        assert.deepEqual(Buffer.from(await blob.arrayBuffer()), payload);
        assert.equal((await mailpit.listMessages()).total, 4);
        await assert.rejects(mailpit.sendMessage({ To: [{ Email: "x@compat.example" }] }), /400/);
    });

    await t.test("waitForMessage and waitForMessages", async () => {
        const later = setTimeout(() => {
            smtpSend("late@compat.example", ["bob@compat.example"],
                crlf(["From: late@compat.example", "To: bob@compat.example", "Subject: Arrives later", "", "late"]))
                .then((id) => { ids.late = id; }, () => {});
        }, 300);
        try {
            const m = await mailpit.waitForMessage({ query: 'subject:"arrives later"' }, { timeout: 10000, interval: 100 });
            assert.equal(m.Subject, "Arrives later");
        } finally {
            clearTimeout(later);
        }
        const r = await mailpit.waitForMessages({ query: "compat.example", count: 5 }, { timeout: 5000, interval: 100 });
        assert.ok(r.messages_count >= 5, String(r.messages_count));
    });

    await t.test("deleteMessages by IDs, by search, then all", async () => {
        assert.equal(await mailpit.deleteMessages({ IDs: [ids.one] }), "ok");
        let list = await mailpit.listMessages();
        assert.equal(list.total, 4);
        assert.ok(!list.messages.some((m) => m.ID === ids.one));
        await assert.rejects(mailpit.getMessageSummary(ids.one), /404/);
        assert.equal(await mailpit.deleteMessagesBySearch({ query: "subject:weekly" }), "ok");
        list = await mailpit.listMessages();
        assert.deepEqual(list.messages.map((m) => m.Subject), ["Arrives later", "Sent through mailpit-api", "Compat two"]);
        assert.equal(await mailpit.deleteMessages(), "ok");
        list = await mailpit.listMessages();
        assert.equal(list.total, 0);
        assert.equal(list.unread, 0);
        await assert.rejects(mailpit.getMessageSummary(), /404/);
        assert.equal((await mailpit.getInfo()).Messages, 0);
    });

    await t.test("a base URL with a path: mailsink --webroot /mail/ behind a proxy", async () => {
        assert.match(WEBROOT_URL, /\/mail$/);
        const prefixed = new MailpitClient(WEBROOT_URL);
        assert.equal(await prefixed.deleteMessages(), "ok");
        const res = await prefixed.sendMessage({
            From: { Email: "p@compat.example" },
            To: [{ Email: "q@compat.example" }],
            Subject: "Behind a proxy",
            Text: "prefixed body",
        });
        assert.deepEqual(subjects(await prefixed.listMessages()), ["Behind a proxy"]);
        const m = await prefixed.getMessageSummary();
        assert.equal(m.ID, res.ID);
        assert.equal(m.Text.trim(), "prefixed body");
        assert.match(await prefixed.getMessageSource(res.ID), /Subject: Behind a proxy/);
        assert.equal((await prefixed.searchMessages({ query: "subject:proxy" })).messages_count, 1);
        assert.equal((await prefixed.getInfo()).Messages, 1);
        assert.equal((await mailpit.listMessages()).total, 0, "the other instance saw it");
        assert.equal(await prefixed.deleteMessages(), "ok");
        assert.equal((await prefixed.listMessages()).total, 0);
    });
});
