"""Fixtures and helpers for the REST API tests (tests/http/test_api_*.py).

mailsink is started through tests/mailsink/mslib.py with SMTP and HTTP on 127.0.0.1:0,
its own database in the test's temporary directory, and is always stopped afterwards;
teardown fails the test unless it exits 0 on SIGTERM with no sanitizer report. Mail goes
in over real SMTP (smtplib); the API is called with http.client, one connection per
request, every call bounded by TIMEOUT. The contract is ../shared/reference/mailpit-api.md.
"""

import faulthandler
import hashlib
import http.client
import json
import os
import re
import sys
import time
import urllib.parse
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY

import pytest

# Appended, not prepended: the test modules import this file as `conftest`, and
# tests/mailsink has a conftest.py of its own.
sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "mailsink"))
from mslib import HOSTNAME, TIMEOUT, Db, Mailsink, clean_env, stop_all  # noqa: E402
from mslib import send as _smtp_send  # noqa: E402

TEST_DEADLINE = 240  # seconds; no test comes near it

# The field names clients read (reference: Objects). Values: the Python types allowed.
SUMMARY_FIELDS = {
    "ID": str, "MessageID": str, "Read": bool, "From": (dict, type(None)), "To": list,
    "Cc": list, "Bcc": list, "ReplyTo": list, "Subject": str, "Created": str,
    "Username": str, "Tags": list, "Size": int, "Attachments": int, "Snippet": str,
}
MESSAGES_SUMMARY_FIELDS = {
    "total": int, "unread": int, "count": int, "messages_count": int,
    "messages_unread": int, "start": int, "tags": list, "messages": list,
}
MESSAGE_FIELDS = {
    "ID": str, "MessageID": str, "From": (dict, type(None)), "To": list, "Cc": list,
    "Bcc": list, "ReplyTo": list, "ReturnPath": str, "Subject": str,
    "ListUnsubscribe": dict, "Date": str, "Tags": list, "Username": str, "Text": str,
    "HTML": str, "Size": int, "Inline": list, "Attachments": list,
}
ATTACHMENT_FIELDS = {
    "PartID": str, "FileName": str, "ContentType": str, "ContentID": str, "Size": int,
    "Checksums": dict,
}
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


# -- HTTP ------------------------------------------------------------------------------------


class Resp:
    def __init__(self, method, path, status, headers, body):
        self.method, self.path = method, path
        self.status = status
        self.headers = headers  # http.client.HTTPMessage (case-insensitive get)
        self.body = body  # bytes

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    @property
    def ctype(self):
        return (self.headers.get("Content-Type") or "").lower()

    def json(self):
        assert self.ctype.startswith("application/json"), (
            "%s %s: Content-Type %r, body %r" % (self.method, self.path, self.ctype,
                                                  self.body[:300]))
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError as e:
            raise AssertionError("%s %s: malformed JSON (%s): %r" % (
                self.method, self.path, e, self.body[:500]))

    def __repr__(self):
        return "<%s %s -> %d %s %r>" % (self.method, self.path, self.status, self.ctype,
                                        self.body[:300])


class Api:
    """The REST API of one server. base: "http://127.0.0.1:PORT"."""

    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        self.base = base
        self.host, self.port = u.hostname, u.port

    def request(self, method, path, body=None, params=None, headers=None, timeout=TIMEOUT):
        """One request on a fresh connection. body: bytes/str sent as is, anything else
        as JSON; None sends no body at all. params: dict or list of pairs for the query."""
        if params:
            path += ("&" if "?" in path else "?") + urllib.parse.urlencode(params)
        hdrs = dict(headers or {})
        data = None
        if body is not None:
            if isinstance(body, str):
                data = body.encode("utf-8")
            elif isinstance(body, (bytes, bytearray)):
                data = bytes(body)
            else:
                data = json.dumps(body).encode("utf-8")
                hdrs.setdefault("Content-Type", "application/json")
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            return Resp(method, path, r.status, r.headers, r.read())
        finally:
            conn.close()

    def get(self, path, **params):
        return self.request("GET", path, params=params or None)

    def ok(self, method, path, body=None, params=None):
        """A PUT/DELETE that must answer 200 "ok" (reference: success is exactly 200)."""
        r = self.request(method, path, body=body, params=params)
        assert r.status == 200, r
        assert r.text.strip() == "ok", r
        return r

    def json(self, path, status=200, **params):
        r = self.get(path, **params)
        assert r.status == status, r
        return r.json()

    def messages(self, **params):
        doc = self.json("/api/v1/messages", **params)
        check_messages_summary(doc)
        return doc

    def search(self, query, **params):
        doc = self.json("/api/v1/search", query=query, **params)
        check_messages_summary(doc)
        return doc

    def message(self, mid):
        doc = self.json("/api/v1/message/" + urllib.parse.quote(mid, safe=""))
        check_message(doc)
        return doc

    def ids(self, **params):
        return [m["ID"] for m in self.messages(limit=0, **params)["messages"]]

    def search_ids(self, query, **params):
        return [m["ID"] for m in self.search(query, limit=0, **params)["messages"]]

    def summary(self, mid):
        """The MessageSummary of mid from the list (does not mark it read)."""
        for m in self.messages(limit=0)["messages"]:
            if m["ID"] == mid:
                return m
        raise AssertionError("%s not in the list" % mid)


# -- shape checks -----------------------------------------------------------------------------


def check_fields(obj, fields, what):
    assert isinstance(obj, dict), "%s is not an object: %r" % (what, obj)
    for name, types in fields.items():
        assert name in obj, "%s has no field %r (fields: %s)" % (what, name, sorted(obj))
        v = obj[name]
        ok = isinstance(v, types) and not (types is int and isinstance(v, bool))
        assert ok, "%s.%s is %r (%s), expected %s" % (what, name, v, type(v).__name__, types)


def check_address(a, what):
    check_fields(a, {"Name": str, "Address": str}, what)


def check_addresses(obj, what):
    if obj.get("From") is not None:
        check_address(obj["From"], what + ".From")
    for k in ("To", "Cc", "Bcc", "ReplyTo"):
        assert isinstance(obj[k], list), "%s.%s is %r, expected [] or addresses" % (
            what, k, obj[k])
        for a in obj[k]:
            check_address(a, "%s.%s[]" % (what, k))


def check_summary(m):
    check_fields(m, SUMMARY_FIELDS, "MessageSummary")
    check_addresses(m, "MessageSummary")
    assert RFC3339.match(m["Created"]), "Created not RFC 3339: %r" % m["Created"]
    assert not m["MessageID"].startswith("<") and not m["MessageID"].endswith(">"), m
    for t in m["Tags"]:
        assert isinstance(t, str), m["Tags"]


def check_messages_summary(doc):
    check_fields(doc, MESSAGES_SUMMARY_FIELDS, "MessagesSummary")
    assert doc["count"] == len(doc["messages"]), "count %d, %d messages" % (
        doc["count"], len(doc["messages"]))
    for m in doc["messages"]:
        check_summary(m)


def check_attachment(a, what="Attachment"):
    check_fields(a, ATTACHMENT_FIELDS, what)
    check_fields(a["Checksums"], {"MD5": str, "SHA1": str, "SHA256": str}, what + ".Checksums")


def check_message(doc):
    check_fields(doc, MESSAGE_FIELDS, "Message")
    check_addresses(doc, "Message")
    check_fields(doc["ListUnsubscribe"], {"Header": str, "Links": list, "Errors": str,
                                          "HeaderPost": str}, "Message.ListUnsubscribe")
    for k in ("Inline", "Attachments"):
        for a in doc[k]:
            check_attachment(a, "Message.%s[]" % k)
    assert not doc["MessageID"].startswith("<"), doc["MessageID"]


def checksums(data):
    return {"MD5": hashlib.md5(data).hexdigest(), "SHA1": hashlib.sha1(data).hexdigest(),
            "SHA256": hashlib.sha256(data).hexdigest()}


def parse_time(s):
    """An RFC 3339 string as an aware datetime."""
    assert RFC3339.match(s), "not RFC 3339: %r" % s
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def addrs(lst):
    return [a["Address"] for a in lst]


def json_strings(v):
    """Every string (keys and values) inside a JSON document."""
    if isinstance(v, str):
        yield v
    elif isinstance(v, dict):
        for k, x in v.items():
            yield k
            yield from json_strings(x)
    elif isinstance(v, list):
        for x in v:
            yield from json_strings(x)


# -- mail -------------------------------------------------------------------------------------


def make_msg(subject="hello", frm="Alice <alice@x.example>", to="bob@y.example", cc=None,
             reply_to=None, text="hello world\n", html=None, attachments=(), inline=(),
             headers=(), date="Mon, 01 Jan 2024 10:00:00 +0200", msgid=None):
    """An RFC 5322 message as bytes with CRLF line ends. attachments: (filename,
    content type, bytes); inline: (content id, content type, bytes) related to the HTML."""
    m = EmailMessage(policy=SMTP_POLICY)
    m["From"] = frm
    if to:
        m["To"] = to
    if cc:
        m["Cc"] = cc
    if reply_to:
        m["Reply-To"] = reply_to
    m["Subject"] = subject
    if date:
        m["Date"] = date
    if msgid:
        m["Message-ID"] = msgid
    for k, v in headers:
        m[k] = v
    if text is not None:
        m.set_content(text)
    if html is not None:
        if text is None:
            m.set_content(html, subtype="html")
        else:
            m.add_alternative(html, subtype="html")
    for cid, ctype, data in inline:
        html_part = m.get_body(("html",))
        main, sub = ctype.split("/")
        html_part.add_related(data, maintype=main, subtype=sub, cid="<%s>" % cid)
    for name, ctype, data in attachments:
        main, sub = ctype.split("/")
        # bytes, so base64: the decoded part is exactly data (text would get CRLFs)
        m.add_attachment(data, maintype=main, subtype=sub, filename=name)
    return m.as_bytes()


def send(ms, msg, sender="sender@x.example", rcpts=("bob@y.example",)):
    """Send msg (bytes) over SMTP; the id from the 250 (the API's ID)."""
    mid, _ = _smtp_send(ms, sender, list(rcpts), msg)
    return mid


def send_many(ms, msgs, sender="sender@x.example", rcpts=("bob@y.example",)):
    """Several messages over one SMTP connection; their ids, in order."""
    ids = []
    with ms.smtp() as s:
        for msg in msgs:
            assert s.sendmail(sender, list(rcpts), msg) == {}
            ids.append(s.last_id())
    return ids


def wait_until(pred, timeout=10, interval=0.05):
    """Poll pred() until it is true or timeout passes; its last value."""
    deadline = time.monotonic() + timeout
    v = pred()
    for _ in range(int(timeout / interval) + 2):
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)
        v = pred()
    return v


# -- servers ----------------------------------------------------------------------------------


def _launch(tmp, started, args=(), db="default"):
    argv = ["--smtp", "127.0.0.1:0", "--hostname", HOSTNAME]
    if db == "default":
        db = os.path.join(str(tmp), "mail.db")
    if db is not None:
        argv += ["--db", db]
    argv += list(args)
    ms = Mailsink(argv, tmp, env=clean_env(tmp), db=db if db != ":memory:" else None,
                  name="mailsink-%d" % len(started))
    started.append(ms)
    url = ms.http_url
    assert url, "mailsink printed no 'HTTP on http://...' line; stderr:\n" + ms.stderr()
    ms.api = Api(url)
    return ms


def _shutdown(started):
    bad = stop_all(started)
    if bad:
        pytest.fail("mailsink did not end cleanly: " + "; ".join(bad))


@pytest.fixture(autouse=True)
def _deadline():
    faulthandler.dump_traceback_later(TEST_DEADLINE, exit=True, file=sys.stderr)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def start(tmp_path):
    """start(*args, db=...) runs mailsink (SMTP and HTTP on 127.0.0.1:0, tmp/mail.db
    unless db is given); the server has .api (Api) and .db (path)."""
    started = []
    yield lambda *args, db="default": _launch(tmp_path, started, args, db)
    _shutdown(started)


@pytest.fixture
def ms(start):
    """A plain mailsink with an empty mailbox."""
    return start()


@pytest.fixture
def api(ms):
    return ms.api


@pytest.fixture(scope="module")
def module_server(tmp_path_factory):
    """One server shared by a module's read-only tests (each module fills it itself)."""
    started = []
    tmp = tmp_path_factory.mktemp("module")
    yield _launch(tmp, started)
    _shutdown(started)


__all__ = ["Api", "Db", "Resp", "TIMEOUT", "addrs", "check_attachment", "check_message",
           "check_messages_summary", "check_summary", "checksums", "json_strings",
           "make_msg", "parse_time", "send", "send_many", "wait_until"]
