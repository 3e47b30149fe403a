"""Pruning, oldest first: --max-messages N keeps the newest N, --max-age drops older mail."""

import time

from mslib import Db, field, json_messages, send, show, simple, wait_until


def test_max_messages_keeps_newest(start):
    ms = start("--max-messages", "5")
    ids = []
    for i in range(12):
        ids.append(send(ms, "a@x.example", ["b@y.example"], simple("n%d" % i))[0])

    def stored():
        with Db(ms.db) as db:
            return sorted(db.ids())

    wait_until(lambda: len(stored()) <= 5, timeout=5)
    assert stored() == sorted(ids[-5:])
    r = ms.cli("list", "--json")
    assert r.returncode == 0, show(r)
    assert [field(m, "id") for m in json_messages(r.stdout)] == ids[-5:][::-1]


def test_max_messages_from_one_session_burst(start):
    # a burst in one pipelined-ish session: never more than the limit once settled
    ms = start("--max-messages", "3")
    ids = []
    with ms.smtp() as s:
        for i in range(10):
            s.sendmail("a@x.example", ["b@y.example"], simple("burst %d" % i))
            ids.append(s.last_id())

    def stored():
        with Db(ms.db) as db:
            return sorted(db.ids())

    wait_until(lambda: len(stored()) <= 3, timeout=5)
    assert stored() == sorted(ids[-3:])


def test_max_age_prunes_old_mail(start):
    ms = start("--max-age", "3s")
    old = [send(ms, "a@x.example", ["b@y.example"], simple("old %d" % i))[0] for i in range(3)]
    time.sleep(4)
    new = send(ms, "a@x.example", ["b@y.example"], simple("new"))[0]
    checked = time.monotonic()

    def stored():
        with Db(ms.db) as db:
            return set(db.ids())

    wait_until(lambda: not (stored() & set(old)), timeout=2.5)
    now = stored()
    assert time.monotonic() - checked < 3, "the check itself took too long to judge 'new'"
    assert not (now & set(old)), "messages older than --max-age still stored: %r" % (now,)
    assert new in now


def test_max_age_zero_keeps_all(start):
    ms = start("--max-age", "0", "--max-messages", "0")
    ids = [send(ms, "a@x.example", ["b@y.example"], simple("k%d" % i))[0] for i in range(4)]
    time.sleep(1.5)
    with Db(ms.db) as db:
        assert sorted(db.ids()) == sorted(ids)
