"""GET/PUT/DELETE /api/v1/messages and DELETE /api/v1/search: the MessagesSummary and
MessageSummary objects, newest first, paging edges, read flags, deleting (behaviours 1,
2, 3, 5 and 8 of the reference)."""

from datetime import datetime, timedelta, timezone

import pytest

from conftest import addrs, make_msg, parse_time, send, send_many


def test_empty_mailbox(api):
    r = api.get("/api/v1/messages")
    assert r.status == 200, r
    assert r.headers.get("X-Content-Type-Options", "").lower() == "nosniff", r.headers
    doc = r.json()
    assert {k: doc[k] for k in ("total", "unread", "count", "messages_count",
                                "messages_unread", "start", "tags", "messages")} == {
        "total": 0, "unread": 0, "count": 0, "messages_count": 0, "messages_unread": 0,
        "start": 0, "tags": [], "messages": []}


def test_summary_fields(ms, api):
    msg = make_msg(subject="Summary check", frm='"Alice Example" <alice@x.example>',
                   to="Bob <bob@y.example>, carol@y.example", reply_to="replies@x.example",
                   text="The first words of the body.\n",
                   attachments=[("a.txt", "text/plain", b"one\n"),
                                ("b.bin", "application/octet-stream", b"\x00\x01\x02")],
                   msgid="<sum-1@x.example>")
    mid = send(ms, msg, sender="alice@x.example",
               rcpts=["bob@y.example", "carol@y.example", "hidden@z.example"])
    before = datetime.now(timezone.utc)
    doc = api.messages()
    assert doc["total"] == 1 and doc["unread"] == 1 and doc["messages_count"] == 1
    assert doc["messages_unread"] == 1 and doc["count"] == 1 and doc["start"] == 0
    m = doc["messages"][0]
    assert m["ID"] == mid
    assert m["MessageID"] == "sum-1@x.example"
    assert m["Read"] is False
    assert m["From"] == {"Name": "Alice Example", "Address": "alice@x.example"}
    assert m["To"] == [{"Name": "Bob", "Address": "bob@y.example"},
                       {"Name": "", "Address": "carol@y.example"}]
    assert m["Cc"] == []
    assert m["ReplyTo"] == [{"Name": "", "Address": "replies@x.example"}]
    # behaviour 11: envelope recipients absent from To/Cc are the Bcc
    assert addrs(m["Bcc"]) == ["hidden@z.example"], m["Bcc"]
    assert m["Subject"] == "Summary check"
    created = parse_time(m["Created"])
    assert abs((created - before).total_seconds()) < 120, m["Created"]
    assert m["Username"] == ""
    assert m["Tags"] == []
    assert m["Attachments"] == 2
    assert m["Snippet"].startswith("The first words of the body."), m["Snippet"]
    raw = api.get("/api/v1/message/%s/raw" % mid)
    assert m["Size"] == len(raw.body), (m["Size"], len(raw.body))


def test_empty_address_lists_are_arrays(ms, api):
    send(ms, b"From: a@x.example\r\nSubject: bare\r\n\r\nno To at all\r\n",
         rcpts=["bob@y.example"])
    m = api.messages()["messages"][0]
    for k in ("Cc", "ReplyTo"):
        assert m[k] == [], (k, m[k])
    assert isinstance(m["To"], list) and isinstance(m["Bcc"], list)
    full = api.message(m["ID"])
    for k in ("Cc", "ReplyTo", "Inline", "Attachments"):
        assert full[k] == [], (k, full[k])


def test_snippet_is_short_and_from_html(ms, api):
    send(ms, make_msg(subject="long", text="word " * 500))
    send(ms, make_msg(subject="html only", text=None,
                      html="<html><body><h1>Big title</h1><p>Para &amp; text</p>"
                           "<script>var x = 1;</script></body></html>"))
    long_m, html_m = reversed(api.messages()["messages"])
    assert 0 < len(long_m["Snippet"]) <= 260, len(long_m["Snippet"])
    assert "Big title" in html_m["Snippet"] and "Para & text" in html_m["Snippet"]
    assert "<" not in html_m["Snippet"] and "var x" not in html_m["Snippet"], html_m


def test_newest_first(ms, api):
    ids = send_many(ms, [make_msg(subject="n%d" % i) for i in range(4)])
    assert api.ids() == list(reversed(ids))
    doc = api.messages()
    assert [m["Subject"] for m in doc["messages"]] == ["n3", "n2", "n1", "n0"]
    times = [parse_time(m["Created"]) for m in doc["messages"]]
    assert times == sorted(times, reverse=True), times


@pytest.fixture
def five(ms):
    """Five messages p0..p4; their ids newest first."""
    ids = send_many(ms, [make_msg(subject="p%d" % i) for i in range(5)])
    return list(reversed(ids))


@pytest.mark.parametrize("first,limit,want", [
    (0, 2, [0, 1]), (2, 2, [2, 3]), (4, 2, [4]), (3, 10, [3, 4]), (5, 2, []),
    (100, 2, []), (0, 0, [0, 1, 2, 3, 4]), (2, 0, [2, 3, 4]), (0, 5, [0, 1, 2, 3, 4]),
    (0, 1, [0]), (4, 1, [4]),
])
def test_paging(api, five, first, limit, want):
    doc = api.messages(start=first, limit=limit)
    assert [m["ID"] for m in doc["messages"]] == [five[i] for i in want]
    assert doc["start"] == first
    assert doc["count"] == len(want)
    assert doc["total"] == 5 and doc["messages_count"] == 5 and doc["unread"] == 5


def test_paging_defaults(ms, api):
    ids = send_many(ms, [make_msg(subject="d%d" % i) for i in range(53)])
    doc = api.messages()
    assert doc["count"] == 50 and doc["start"] == 0, doc["count"]
    assert [m["ID"] for m in doc["messages"]] == list(reversed(ids))[:50]
    assert doc["total"] == 53 and doc["messages_count"] == 53
    assert len(api.messages(limit=0)["messages"]) == 53  # behaviour 8
    assert [m["ID"] for m in api.messages(start=50)["messages"]] == list(reversed(ids[:3]))


@pytest.mark.parametrize("params", [
    {"start": "-1"}, {"limit": "-1"}, {"start": "abc"}, {"limit": "ten"}, {"limit": "1.5"},
    {"start": "1e3"}, {"limit": "0x10"},
    {"start": "99999999999999999999999999"}, {"limit": "5abc"},
])
def test_paging_bad_parameters(api, five, params):
    for path in ("/api/v1/messages", "/api/v1/search"):
        p = dict(params)
        if path.endswith("search"):
            p["query"] = "p1"
        r = api.get(path, **p)
        assert r.status == 400, r
        assert r.ctype.startswith("text/plain"), r
        assert r.text.strip(), r


def test_get_message_marks_read(ms, api, five):
    api.message(five[1])
    doc = api.messages()
    assert doc["unread"] == 4 and doc["messages_unread"] == 4 and doc["total"] == 5
    assert [m["Read"] for m in doc["messages"]] == [False, True, False, False, False]
    api.message(five[1])  # a second read changes nothing
    assert api.messages()["unread"] == 4


def read_flags(api):
    return {m["ID"]: m["Read"] for m in api.messages(limit=0)["messages"]}


def test_put_read_by_ids(api, five):
    api.ok("PUT", "/api/v1/messages", {"IDs": [five[0], five[3]], "Read": True})
    flags = read_flags(api)
    assert [flags[i] for i in five] == [True, False, False, True, False]
    assert api.messages()["unread"] == 3
    api.ok("PUT", "/api/v1/messages", {"IDs": [five[3]], "Read": False})
    flags = read_flags(api)
    assert [flags[i] for i in five] == [True, False, False, False, False]


def test_put_read_by_search(api, five):
    # behaviour 5: "Search" instead of IDs
    api.ok("PUT", "/api/v1/messages", {"Search": "subject:p2", "Read": True})
    flags = read_flags(api)
    assert [flags[i] for i in five] == [False, False, True, False, False]
    api.ok("PUT", "/api/v1/messages", {"Search": "is:read", "Read": False})
    assert api.messages()["unread"] == 5


def test_put_read_all(api, five):
    api.ok("PUT", "/api/v1/messages", {"Read": True})
    doc = api.messages()
    assert doc["unread"] == 0 and all(m["Read"] for m in doc["messages"])
    # mailpit-api's setReadStatus() sends {}: Read defaults to false, all become unread
    api.ok("PUT", "/api/v1/messages", {})
    assert api.messages()["unread"] == 5
    api.ok("PUT", "/api/v1/messages", {"IDs": [], "Read": True})
    assert api.messages()["unread"] == 0


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"IDs": "abc", "Read": true}',
                                  b'{"IDs": [1, 2], "Read": true}',
                                  b'{"Read": "yes"}', b'{"Search": 5, "Read": true}'])
def test_put_read_bad_body(api, five, body):
    r = api.request("PUT", "/api/v1/messages", body=body,
                    headers={"Content-Type": "application/json"})
    assert r.status == 400, r
    assert api.messages()["unread"] == 5  # nothing changed


def test_put_read_bad_search(api, five):
    r = api.request("PUT", "/api/v1/messages", {"Search": "before:notadate", "Read": True})
    assert r.status == 400, r
    assert api.messages()["unread"] == 5


@pytest.mark.parametrize("body", [None, b"", b"   ", b"garbage", b"{}", b'{"IDs": []}',
                                  b"null"])
def test_delete_all(api, five, body):
    # behaviour 1: no body, an empty one or an invalid one deletes everything
    r = api.request("DELETE", "/api/v1/messages", body=body)
    assert r.status == 200 and r.text.strip() == "ok", r
    doc = api.messages()
    assert doc["total"] == 0 and doc["messages"] == [] and doc["unread"] == 0


def test_delete_by_ids(ms, api, five):
    api.ok("DELETE", "/api/v1/messages", {"IDs": [five[1], five[4]]})
    assert api.ids() == [five[0], five[2], five[3]]
    assert api.get("/api/v1/message/" + five[1]).status == 404
    assert api.messages()["total"] == 3
    # unknown ids: nothing else goes
    r = api.request("DELETE", "/api/v1/messages", {"IDs": ["no-such-id"]})
    assert r.status in (200, 404), r
    assert api.ids() == [five[0], five[2], five[3]]


def test_delete_by_search(api, five):
    api.ok("DELETE", "/api/v1/search", params={"query": "subject:p3"})  # five[1]
    assert api.ids() == [five[0], five[2], five[3], five[4]]
    api.ok("DELETE", "/api/v1/search", params={"query": "-subject:p0"})
    assert api.ids() == [five[4]]


@pytest.mark.parametrize("params", [{}, {"query": ""}, {"query": "before:xyz"},
                                    {"query": "after:2024-01-01", "tz": "Nowhere/City"}])
def test_delete_by_search_bad_query(api, five, params):
    r = api.request("DELETE", "/api/v1/search", params=params)
    assert r.status == 400, r
    assert len(api.ids()) == 5, "a rejected search deleted messages"


def test_unread_counts_after_delete(api, five):
    api.message(five[0])
    api.ok("DELETE", "/api/v1/messages", {"IDs": [five[0], five[1]]})
    doc = api.messages()
    assert doc["total"] == 3 and doc["unread"] == 3


def test_created_is_received_time_not_date_header(ms, api):
    send(ms, make_msg(subject="old date", date="Tue, 01 Jan 2002 00:00:00 +0000"))
    created = parse_time(api.messages()["messages"][0]["Created"])
    assert abs(created - datetime.now(timezone.utc)) < timedelta(minutes=5), created


def test_snippet_prefers_html_as_text(ms, api):
    # reference: "Snippet (about 200 characters of text, from the HTML converted to text,
    # else the text part)"
    send(ms, make_msg(subject="both", text="plain-part words\n",
                      html="<p>html-part <i>words</i></p>"))
    snippet = api.messages()["messages"][0]["Snippet"]
    assert snippet.startswith("html-part words"), snippet
