"""GET /api/v1/search: Mailpit's query syntax against a small fixed mailbox (one server for
the module; nothing here changes it after setup), counts (messages_count vs total),
paging, before:/after: with time zones, and garbage that must never crash the server."""

import string
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from conftest import make_msg, parse_time, send

PDF = b"%PDF-1.4\n" + bytes(range(256)) + b"\n%%EOF\n"


@pytest.fixture(scope="module")
def corpus(module_server):
    """name -> id of five messages M1..M5 (M5 newest); M1 read; M2 tagged urgent, M5
    tagged Later and urgent."""
    ms = module_server
    ids = {}
    ids["M1"] = send(ms, make_msg(subject="Weekly report", frm="Alice Smith <alice@alpha.example>",
                                  to="bob@beta.example", text="numbers are up this quarter\n",
                                  msgid="<m1@alpha.example>"),
                     sender="alice@alpha.example", rcpts=["bob@beta.example"])
    ids["M2"] = send(ms, make_msg(subject="Lunch plans", frm="carol@gamma.example",
                                  to="dave@delta.example", cc="Erin <erin@eps.example>",
                                  text="pizza or sushi?\n",
                                  attachments=[("menu.pdf", "application/pdf", PDF)]),
                     sender="carol@gamma.example", rcpts=["dave@delta.example", "erin@eps.example"])
    ids["M3"] = send(ms, make_msg(subject="weekly sync", frm="alice@alpha.example",
                                  to="frank@beta.example", text=None,
                                  html="<html><body><p>Agenda: <b>roadmap</b></p></body></html>"),
                     sender="alice@alpha.example", rcpts=["frank@beta.example"])
    ids["M4"] = send(ms, make_msg(subject="Large file", frm="gus@gamma.example",
                                  to="hal@delta.example",
                                  text=("lorem ipsum dolor sit amet " * 800)[:21000] + "\n"),
                     sender="gus@gamma.example", rcpts=["hal@delta.example"])
    ids["M5"] = send(ms, make_msg(subject="Re: report delayed", frm="Zed <zed@zeta.example>",
                                  to="bob@beta.example", reply_to="help@zeta.example",
                                  text="sorry, caf\u00e9 tomorrow\n"),
                     sender="zed@zeta.example", rcpts=["bob@beta.example", "hidden@secret.example"])
    api = ms.api
    api.ok("PUT", "/api/v1/messages", {"IDs": [ids["M1"]], "Read": True})
    api.ok("PUT", "/api/v1/tags", {"IDs": [ids["M2"]], "Tags": ["urgent"]})
    api.ok("PUT", "/api/v1/tags", {"IDs": [ids["M5"]], "Tags": ["Later", "urgent"]})
    return ids


def names(corpus, ids):
    back = {v: k for k, v in corpus.items()}
    return [back.get(i, i) for i in ids]


def newest_first(*names_):
    return sorted(names_, key=lambda n: -int(n[1:]))


CASES = [
    # plain words: subject, addresses, names, text, HTML as text, file names; any case
    ("weekly", ["M1", "M3"]),
    ("WEEKLY", ["M1", "M3"]),
    ("pizza", ["M2"]),
    ("quarter", ["M1"]),
    ("roadmap", ["M3"]),
    ("lorem", ["M4"]),
    ("menu.pdf", ["M2"]),
    ("menu", ["M2"]),
    ("Smith", ["M1"]),
    ("zeta", ["M5"]),
    ("alpha.example", ["M1", "M3"]),
    ("caf\u00e9", ["M5"]),
    ("CAF\u00c9", ["M5"]),
    ("nosuchwordanywhere", []),
    ("weekly pizza", []),  # terms combine with AND
    ("weekly report", ["M1"]),
    # quoted phrases
    ('"weekly report"', ["M1"]),
    ('"report weekly"', []),
    ('"Lunch plans"', ["M2"]),
    # field filters
    ("from:alice@alpha.example", ["M1", "M3"]),
    ("from:alice", ["M1", "M3"]),
    ("from:gamma.example", ["M2", "M4"]),
    ("from:smith", ["M1"]),
    ("From:ALICE", ["M1", "M3"]),
    ("to:bob@beta.example", ["M1", "M5"]),
    ("to:beta.example", ["M1", "M3", "M5"]),
    ("to:hidden@secret.example", ["M5"]),  # envelope recipients count as To
    ("to:erin", ["M2"]),  # Cc in the header, but an envelope recipient
    ("cc:erin", ["M2"]),
    ("cc:eps.example", ["M2"]),
    ("bcc:hidden", ["M5"]),
    ("reply-to:help@zeta.example", ["M5"]),
    ("subject:weekly", ["M1", "M3"]),
    ("SUBJECT:weekly", ["M1", "M3"]),
    ("subject:report", ["M1", "M5"]),
    ('subject:"weekly report"', ["M1"]),
    ('subject:"lunch plans"', ["M2"]),
    ('subject:"plans lunch"', []),
    ("subject:pizza", []),
    ("message-id:m1@alpha.example", ["M1"]),
    ("tag:urgent", ["M2", "M5"]),
    ("tag:URGENT", ["M2", "M5"]),
    ("tag:later", ["M5"]),
    ("tag:urg", []),  # tag names match exactly
    ("is:read", ["M1"]),
    ("is:unread", ["M2", "M3", "M4", "M5"]),
    ("is:tagged", ["M2", "M5"]),
    ("has:attachment", ["M2"]),
    ("has:attachments", ["M2"]),
    ("larger:10k", ["M4"]),
    ("larger:10K", ["M4"]),
    ("larger:10240", ["M4"]),
    ("smaller:10k", ["M1", "M2", "M3", "M5"]),
    ("larger:1m", []),
    ("smaller:1", []),
    # negation with - and !
    ("-subject:weekly", ["M2", "M4", "M5"]),
    ("!subject:weekly", ["M2", "M4", "M5"]),
    ("-weekly", ["M2", "M4", "M5"]),
    ("-is:read", ["M2", "M3", "M4", "M5"]),
    ("!is:unread", ["M1"]),
    ("!has:attachment", ["M1", "M3", "M4", "M5"]),
    ("-tag:urgent", ["M1", "M3", "M4"]),
    ('-"weekly report"', ["M2", "M3", "M4", "M5"]),
    ("-from:alice -from:gamma.example", ["M5"]),
    # combinations
    ("from:alice subject:sync", ["M3"]),
    ("weekly -is:read", ["M3"]),
    ("to:bob@beta.example -tag:urgent", ["M1"]),
    ("is:unread has:attachment", ["M2"]),
    ("tag:urgent report", ["M5"]),
    ("from:alice smaller:10k is:read", ["M1"]),
    ("unknownfilter:value", []),  # not a filter: a plain word nobody contains
]


@pytest.mark.parametrize("query,want", CASES, ids=[c[0] for c in CASES])
def test_search(module_server, corpus, query, want):
    got = module_server.api.search_ids(query)
    assert names(corpus, got) == newest_first(*want), "query %r" % query


def test_counts(module_server, corpus):
    doc = module_server.api.search("weekly")
    assert doc["total"] == 5, "total is the mailbox, also in search results"
    assert doc["unread"] == 4
    assert doc["messages_count"] == 2
    assert doc["messages_unread"] == 1
    assert doc["count"] == 2 and doc["start"] == 0
    assert sorted(doc["tags"], key=str.lower) == ["Later", "urgent"], doc["tags"]
    doc = module_server.api.messages()
    assert (doc["total"], doc["messages_count"], doc["unread"]) == (5, 5, 4)


def test_search_paging(module_server, corpus):
    doc = module_server.api.search("-is:read", start=1, limit=2)
    assert names(corpus, [m["ID"] for m in doc["messages"]]) == ["M4", "M3"]
    assert doc["messages_count"] == 4 and doc["count"] == 2 and doc["start"] == 1
    doc = module_server.api.search("-is:read", start=4)
    assert doc["messages"] == [] and doc["messages_count"] == 4 and doc["count"] == 0
    doc = module_server.api.search("-is:read", limit=0)
    assert doc["count"] == 4


def test_search_summary_fields(module_server, corpus):
    m = module_server.api.search("has:attachment")["messages"][0]
    assert m["ID"] == corpus["M2"]
    assert m["Attachments"] == 1 and m["Tags"] == ["urgent"] and m["Read"] is False
    assert m["Cc"] == [{"Name": "Erin", "Address": "erin@eps.example"}]


def _created(module_server, corpus):
    return {n: parse_time(module_server.api.summary(i)["Created"]) for n, i in corpus.items()}


def _zone(tz):
    if tz in ("", None):
        return timezone.utc
    if tz[0] in "+-":
        sign = 1 if tz[0] == "+" else -1
        h, m = int(tz[1:3]), int(tz[-2:])
        return timezone(sign * timedelta(hours=h, minutes=m))
    return ZoneInfo(tz)


@pytest.mark.parametrize("tz", [None, "UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago",
                                "Europe/Berlin", "+02:00", "-0530"])
def test_before_after_dates(module_server, corpus, tz):
    """A bare date is midnight in tz: for the days around now, every message is either
    before or after it, as Python's zoneinfo says."""
    api = module_server.api
    created = _created(module_server, corpus)
    zone = _zone(tz)
    today = datetime.now(zone).date()
    extra = {"tz": tz} if tz else {}
    for delta in (-2, -1, 0, 1, 2):
        day = today + timedelta(days=delta)
        midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
        after = newest_first(*[n for n, t in created.items() if t >= midnight])
        before = newest_first(*[n for n, t in created.items() if t < midnight])
        q = day.isoformat()
        assert names(corpus, api.search_ids("after:" + q, **extra)) == after, (q, tz)
        assert names(corpus, api.search_ids("before:" + q, **extra)) == before, (q, tz)
        assert names(corpus, api.search_ids("-after:" + q, **extra)) == before, (q, tz)


def test_before_after_rfc3339(module_server, corpus):
    api = module_server.api
    all5 = newest_first("M1", "M2", "M3", "M4", "M5")
    assert names(corpus, api.search_ids("after:2000-01-01T00:00:00Z")) == all5
    assert names(corpus, api.search_ids("before:2000-01-01T00:00:00Z")) == []
    assert names(corpus, api.search_ids("before:2999-01-01T00:00:00+02:00")) == all5
    assert names(corpus, api.search_ids("after:2000-01-01 before:2999-12-31 weekly")) == [
        "M3", "M1"]
    assert names(corpus, api.search_ids(
        "after:%s" % (date.today() + timedelta(days=3)).isoformat())) == []


@pytest.mark.parametrize("params", [
    {}, {"query": ""}, {"query": "before:yesterdayish"}, {"query": "after:2024-13-45"},
    {"query": "larger:lots"}, {"query": "smaller:-5"}, {"query": "larger:10q"},
    {"query": "after:2024-01-01", "tz": "Mars/Olympus_Mons"},
    {"query": "after:2024-01-01", "tz": "../../../../etc/passwd"},
    {"query": "after:2024-01-01", "tz": "+99:99"},
])
def test_search_bad_parameters(module_server, corpus, params):
    r = module_server.api.get("/api/v1/search", **params)
    assert r.status == 400, r
    assert r.ctype.startswith("text/plain") and r.text.strip(), r


GARBAGE = [
    '"', '""', '"unterminated phrase', "from:", "subject:", 'subject:"', "-", "!", "--", "!!",
    "- !", ":", ":::", "::weekly", "*", "weekly*", "^weekly", "NEAR(weekly report)",
    "weekly OR pizza", "weekly AND pizza", "NOT weekly", "(", ")", "((weekly)", "{x}",
    "a:b:c", "subject:subject:weekly", "-is:", "is:nothing", "has:nothing", "tag:",
    "'", "';DROP TABLE messages;--", "%", "_", "\\", "\\\"", "\t", "\u0000", "\u00ff",
    "\U0001F600", "x" * 5000, "weekly " * 300, '"' * 101, "larger:", "before:",
    "message-id:<>", "to:<script>", string.punctuation, "\u202e", "\r\n", "id:1",
]


def test_search_garbage_never_breaks(module_server, corpus):
    """Odd queries search as text or get a 400; never a 500, never a crash, never
    malformed JSON; the server answers normally afterwards."""
    api = module_server.api
    for q in GARBAGE:
        r = api.get("/api/v1/search", query=q)
        assert r.status in (200, 400), (q, r)
        if r.status == 200:
            doc = r.json()
            assert isinstance(doc.get("messages"), list), (q, doc)
            assert doc["total"] == 5, (q, doc["total"])
        r = api.get("/api/v1/search", query=q, start=0, limit=1)
        assert r.status in (200, 400), (q, r)
    assert api.get("/livez").status == 200
    assert names(corpus, api.search_ids("weekly")) == ["M3", "M1"]


def test_fts_operators_are_not_operators(module_server, corpus):
    # FTS5's own syntax must not leak through: these are words, and nobody has them
    api = module_server.api
    for q in ("weekly OR pizza", "NOT weekly", "weekly AND report", "pizza NEAR sushi"):
        ids = api.search_ids(q)
        assert names(corpus, ids) == [], (q, names(corpus, ids))


def test_search_never_marks_read(module_server, corpus):
    doc = module_server.api.messages()
    assert doc["unread"] == 4, "searching changed read flags"
