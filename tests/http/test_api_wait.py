"""Our additions for tests that should not sleep and poll: GET /api/v1/wait (200 with a
MessagesSummary once `count` messages match `query`, 408 at `timeout` seconds) and
GET /api/events (server-sent events: new, delete, update, stats)."""

import http.client
import json
import queue
import socket
import threading
import time

import pytest

from conftest import check_messages_summary, check_summary, make_msg, send


def wait(api, timeout_s=10, **params):
    params.setdefault("timeout", str(timeout_s))
    t0 = time.monotonic()
    r = api.request("GET", "/api/v1/wait", params=params, timeout=timeout_s + 30)
    return r, time.monotonic() - t0


def later(delay, fn, *args):
    t = threading.Timer(delay, fn, args)
    t.start()
    return t


def test_wait_already_there(ms, api):
    mid = send(ms, make_msg(subject="ready already"))
    r, took = wait(api, timeout_s=30, query="subject:ready")
    assert r.status == 200, r
    doc = r.json()
    check_messages_summary(doc)
    assert [m["ID"] for m in doc["messages"]] == [mid]
    assert doc["messages_count"] == 1
    assert took < 10, "waited although a message matched (%.1fs)" % took


def test_wait_for_arrival(ms, api):
    send(ms, make_msg(subject="something else"))
    t = later(0.7, send, ms, make_msg(subject="the awaited one"))
    try:
        r, took = wait(api, timeout_s=20, query='subject:"awaited one"')
    finally:
        t.join(30)
    assert r.status == 200, r
    doc = r.json()
    assert [m["Subject"] for m in doc["messages"]] == ["the awaited one"]
    assert 0.5 < took < 15, took


def test_wait_any_message(ms, api):
    t = later(0.5, send, ms, make_msg(subject="anything"))
    try:
        r, _ = wait(api, timeout_s=20)
    finally:
        t.join(30)
    assert r.status == 200 and r.json()["messages_count"] == 1, r


def test_wait_count(ms, api):
    send(ms, make_msg(subject="batch 1"))

    def two_more():
        time.sleep(0.3)
        send(ms, make_msg(subject="batch 2"))
        time.sleep(0.5)
        send(ms, make_msg(subject="batch 3"))

    t = threading.Thread(target=two_more)
    t.start()
    try:
        r, took = wait(api, timeout_s=20, query="batch", count="3")
    finally:
        t.join(30)
    assert r.status == 200, r
    doc = r.json()
    assert doc["messages_count"] == 3, doc["messages_count"]
    assert [m["Subject"] for m in doc["messages"]] == ["batch 3", "batch 2", "batch 1"]
    assert took >= 0.7, "answered before the third message came (%.2fs)" % took


def test_wait_timeout(ms, api):
    send(ms, make_msg(subject="not it"))
    r, took = wait(api, timeout_s=1, query="subject:never")
    assert r.status == 408, r
    assert 0.8 <= took < 10, took


def test_wait_zero_timeout_answers_at_once(ms, api):
    r, took = wait(api, timeout_s=0, query="nothing")
    assert r.status == 408, r
    assert took < 10, took


@pytest.mark.parametrize("params", [
    {"timeout": "abc"}, {"timeout": "-1"}, {"count": "0"}, {"count": "x"}, {"count": "-2"},
    {"query": "before:never"}, {"query": "after:2024-01-01", "tz": "No/Where"},
])
def test_wait_bad_parameters(api, params):
    params.setdefault("timeout", "20")
    r, took = wait(api, **params)
    assert r.status == 400, r
    assert took < 10, took


def test_wait_many_waiters(ms, api):
    """Several waiters at once, some satisfied and some timing out, all answered."""
    results = []

    def one(q, t):
        results.append((q, wait(api, timeout_s=t, query=q)[0].status))

    threads = [threading.Thread(target=one, args=("subject:hit", 15)) for _ in range(5)]
    threads += [threading.Thread(target=one, args=("subject:miss", 1)) for _ in range(5)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    send(ms, make_msg(subject="hit"))
    for t in threads:
        t.join(40)
    assert sorted(results) == [("subject:hit", 200)] * 5 + [("subject:miss", 408)] * 5


# -- server-sent events -------------------------------------------------------------------


class Events:
    """An open GET /api/events; a thread parses the stream into (event, data) pairs."""

    def __init__(self, api):
        self.conn = http.client.HTTPConnection(api.host, api.port, timeout=30)
        self.conn.request("GET", "/api/events", headers={"Accept": "text/event-stream"})
        self.sock = self.conn.sock  # getresponse may drop it; close() must shut it down
        self.resp = self.conn.getresponse()
        self.q = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        event, data = "message", []
        try:
            for _ in range(100000):
                line = self.resp.readline()
                if not line:
                    break
                line = line.decode("utf-8").rstrip("\r\n")
                if line == "":
                    if data:
                        self.q.put((event, "\n".join(data)))
                    event, data = "message", []
                elif line.startswith(":"):
                    continue
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip(" "))
        except (OSError, ValueError, http.client.HTTPException):
            pass
        self.q.put(None)

    def expect(self, name, pred=lambda d: True, timeout=10):
        """The data (parsed JSON) of the first event `name` whose data satisfies pred."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r event within %ss; saw %r" % (name, timeout, seen))
            try:
                item = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if item is None:
                raise AssertionError("event stream ended; saw %r" % seen)
            ev, raw = item
            seen.append(item)
            try:
                d = json.loads(raw)
            except ValueError:
                raise AssertionError("event %r with malformed JSON data %r" % (ev, raw))
            if ev == name and pred(d):
                return d

    def close(self):
        """Shut the socket down so that the reader's blocking readline returns."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(10)
        self.resp.close()
        self.conn.close()


@pytest.fixture
def events(api):
    ev = Events(api)
    yield ev
    ev.close()


def test_events_stream(ms, api, events):
    assert events.resp.status == 200, events.resp.status
    ctype = events.resp.getheader("Content-Type", "")
    assert ctype.startswith("text/event-stream"), ctype
    mid = send(ms, make_msg(subject="live one"))
    new = events.expect("new", lambda d: d.get("ID") == mid)
    check_summary(new)
    assert new["Subject"] == "live one"
    events.expect("stats", lambda d: d.get("Total") == 1)

    api.ok("PUT", "/api/v1/messages", {"IDs": [mid], "Read": True})
    upd = events.expect("update", lambda d: d.get("ID") == mid)
    assert upd.get("Read") is True, upd
    events.expect("stats", lambda d: d.get("Unread") == 0 and d.get("Total") == 1)

    api.ok("PUT", "/api/v1/tags", {"IDs": [mid], "Tags": ["t1"]})
    upd = events.expect("update", lambda d: d.get("ID") == mid and "Tags" in d)
    assert upd["Tags"] == ["t1"], upd

    api.ok("DELETE", "/api/v1/messages", {"IDs": [mid]})
    events.expect("delete", lambda d: d.get("ID") == mid)
    events.expect("stats", lambda d: d.get("Total") == 0)


def test_events_from_api_send_and_delete_all(ms, api, events):
    r = api.request("POST", "/api/v1/send", {"From": {"Email": "a@x.example"},
                                             "To": [{"Email": "b@y.example"}],
                                             "Subject": "sent by API"})
    assert r.status == 200, r
    mid = r.json()["ID"]
    events.expect("new", lambda d: d.get("ID") == mid and d.get("Subject") == "sent by API")
    mid2 = send(ms, make_msg(subject="second"))
    events.expect("new", lambda d: d.get("ID") == mid2)
    api.ok("DELETE", "/api/v1/messages")
    got = set()
    for _ in range(2):
        got.add(events.expect("delete", lambda d: d.get("ID") in (mid, mid2))["ID"])
    assert got == {mid, mid2}


def test_many_event_streams_and_server_stops(start):
    """Streams left open do not keep the server from stopping (teardown checks exit 0)."""
    ms = start()
    streams = [Events(ms.api) for _ in range(8)]
    mid = send(ms, make_msg(subject="to all"))
    for s in streams:
        s.expect("new", lambda d: d.get("ID") == mid)
    for s in streams[:4]:
        s.close()
    t0 = time.monotonic()
    rc = ms.stop()
    assert rc == 0 and time.monotonic() - t0 < 15, rc
    for s in streams[4:]:
        s.close()
