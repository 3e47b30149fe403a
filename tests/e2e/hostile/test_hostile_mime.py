"""Hostile message content for the MIME summary and the API views (issue 7: the MIME
summary code and the HTTP API under hostile input): deep multipart and message/rfc822
nesting, thousands of parts, huge folded headers, thousands of header fields and
parameters, RFC 2231 continuations, broken encodings and boundaries, an HTML bomb.
Sizes are chosen so that a sanitizer build stays quick (GMime's parser grows its
header buffer by realloc, which ASan makes quadratic: a 1 MiB folded header takes
minutes there, 0.4 s in a plain build).

Each message must get 250 2.0.0 and be stored byte-exact (the summary never decides
whether mail is kept); every per-message API view answers (never 5xx) with well-formed
JSON where JSON is promised; afterwards a normal client still gets 250."""

import json

import pytest

from hostlib import Case, Client, http_get
from mslib import Db, stuff


def nested_multipart(depth):
    head = b""
    tail = b""
    for i in range(depth):
        head += b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        tail = b"\r\n--b%d--\r\n" % i + tail
    return (b"Subject: nested\r\nMIME-Version: 1.0\r\n" + head +
            b"Content-Type: text/plain\r\n\r\ndeep\r\n" + tail)


def nested_rfc822(depth):
    m = b"Subject: innermost\r\n\r\nx\r\n"
    for i in range(depth):
        m = (b"Subject: level %d\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n"
             % i + m)
    return m


def many_parts(n):
    parts = b"".join(b"--b\r\nContent-Type: text/plain; name=p%d.txt\r\nContent-Disposition: "
                     b"attachment; filename=p%d.txt\r\n\r\nx\r\n" % (i, i) for i in range(n))
    return (b"Subject: many parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
            b"boundary=b\r\n\r\n" + parts + b"--b--\r\n")


def folded_header(lines):
    return (b"Subject: folded\r\nX-Big: a\r\n" + b" folded continuation line of text\r\n" * lines
            + b"\r\nbody\r\n")


def many_headers(n):
    return b"".join(b"X-H%d: v\r\n" % i for i in range(n)) + b"Subject: many headers\r\n\r\nb\r\n"


def encoded_words():
    return (b"Subject: =?utf-8?B?" + b"A" * 900 + b"?= " +
            b" ".join([b"=?x-unknown?Q?=ZZ=?="] * 80) + b"\r\nFrom: =?utf-8?q?" +
            b"=00" * 300 + b"?= <a@x.example>\r\nTo: =?utf-8?b?!!!?= <b@y.example>\r\n\r\nb\r\n")


def many_params(n):
    return (b"Subject: params\r\nMIME-Version: 1.0\r\nContent-Type: text/plain;" +
            b"".join(b"\r\n p%d=v;" % i for i in range(n)) + b" charset=utf-8\r\n\r\nbody\r\n")


def rfc2231_continuations(n):
    return (b"Subject: rfc2231\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
            b"boundary=b\r\n\r\n--b\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Disposition: attachment;" +
            b"".join(b"\r\n filename*%d*=%%41%%42;" % i for i in range(n)) +
            b"\r\n\r\nx\r\n--b--\r\n")


def base64_garbage():
    return (b"Subject: b64\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + b"!!!!====@@@@\r\n" * 1000 +
            b"PGI+aGk8L2I+\r\n")


def qp_garbage():
    return (b"Subject: qp\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + b"=\r\n" * 20000 +
            b"=ZZ=0=\r\n=")


def empty_boundary():
    return (b"Subject: empty boundary\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
            b"boundary=\"\"\r\n\r\n--\r\n\r\nx\r\n----\r\n")


def prefix_boundaries():
    return (b"Subject: prefix\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
            b"boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=aa\r\n\r\n"
            b"--aa\r\n\r\nx\r\n--a--\r\n--aa--\r\n")


def unterminated_multipart():
    return (b"Subject: unterminated\r\nMIME-Version: 1.0\r\nContent-Type: multipart/"
            b"alternative; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/html\r\n\r\n<p>open")


def html_bomb():
    return (b"Subject: html\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n" +
            (b"<div>" * 150 + b"\r\n") * 1000 + b"<a href=cid:" + b"cid:" * 150 +
            b">x</a><img src=\"cid:" + b"%" * 500 + b"\">\r\n")


def binary_headers():
    return (b"Subject: \x00\x01\x02\xff\xfe\x1b[31m\r\nFrom: \xff <\x00@x>\r\nDate: \x00\r\n"
            b"Content-Type: \xff/\xfe; charset=\"\x00\"\r\n\r\nbody\r\n")


MESSAGES = {
    "multipart-depth-3000": nested_multipart(3000),
    "rfc822-depth-2000": nested_rfc822(2000),
    "2000-parts": many_parts(2000),
    "folded-header-2000-lines": folded_header(2000),
    "5000-header-fields": many_headers(5000),
    "encoded-word-garbage": encoded_words(),
    "5000-content-type-params": many_params(5000),
    "rfc2231-2000-continuations": rfc2231_continuations(2000),
    "base64-garbage": base64_garbage(),
    "qp-garbage": qp_garbage(),
    "empty-boundary": empty_boundary(),
    "prefix-boundaries": prefix_boundaries(),
    "unterminated-multipart": unterminated_multipart(),
    "html-bomb": html_bomb(),
    "binary-headers": binary_headers(),
}

JSON_VIEWS = ["", "/headers", "/envelope"]
PART_VIEWS = ["/part/1", "/part/2", "/part/1.1"]


@pytest.mark.parametrize("name", list(MESSAGES))
def test_hostile_mime_is_stored_and_served(shared, name):
    """Input: one message, the content in the table. Expected: 250 2.0.0, stored
    byte-exact; /api/v1/message/ID, /headers, /envelope answer 200 with JSON; /raw 200
    with the stored octets; parts, /view/ID.html and .txt answer 200 or 404; the list
    and a search by subject answer 200; never a 5xx."""
    ms = shared()
    case = Case(ms)
    content = MESSAGES[name]
    with Client(ms) as c:
        c.envelope()
        r = c.data(stuff(content) + (b"" if content.endswith(b"\r\n") else b"\r\n") +
                   b".\r\n")
        assert r.is_(250, "2.0.0"), r
    mid = r.lines[-1].split()[1]
    want = content if content.endswith(b"\r\n") else content + b"\r\n"
    with Db(ms.db) as db:
        assert db.body(mid) == want
    for view in JSON_VIEWS:
        st, head, body = http_get(ms, "/api/v1/message/%s%s" % (mid, view))
        assert st == 200 and b"application/json" in head, (view, st, body[:200])
        json.loads(body)
    st, _, body = http_get(ms, "/api/v1/message/%s/raw" % mid)
    assert st == 200 and body.endswith(want), (st, body[-100:])
    for path in ["/api/v1/message/%s%s" % (mid, v) for v in PART_VIEWS] + [
            "/view/%s.html" % mid, "/view/%s.txt" % mid]:
        st, _, body = http_get(ms, path)
        assert st in (200, 404), (path, st, body[:200])
    for path in ("/api/v1/messages?limit=5", "/api/v1/search?query=subject%3Anested"):
        st, _, body = http_get(ms, path)
        assert st == 200, (path, st)
        json.loads(body)
    case.check(1)
