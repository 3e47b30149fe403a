"""Connection limits (issue 7: "--max-connections and --max-connections-per-ip answer 421
beyond them").

- --max-connections-per-ip 3 with listeners on 127.0.0.1 and ::1: three connections from
  each address are greeted 220; a fourth from either gets 421 4.7.0 and is closed; the
  two loopback addresses count separately; after one closes, a new one from that address
  is greeted again.
- --max-connections 5 (per-ip 1000): the sixth open connection gets 421 4.7.0.
- churn: 300 connections opened past the limit and closed, then the descriptor count is
  back (a refused connection leaks nothing) and mail is still stored.
test_lifecycle.py has the basic --max-connections case."""

import socket

import pytest

from faultlib import Proc, greeted, serves, settle
from mslib import RawClient, have_ipv6, wait_until


def connect(addr, port):
    c = RawClient(addr, port)
    code, text = c.reply()
    return c, code, text


def refused(addr, port):
    c, code, text = connect(addr, port)
    try:
        assert code == 421 and text[0].startswith("4.7.0 "), (code, text)
        assert c.closed_by_peer(5), "a refused connection stays open"
    finally:
        c.close()
    return text[0]


def test_max_connections_per_ip_counts_each_address(start):
    if not have_ipv6():
        pytest.skip("no IPv6 loopback here")
    ms = start("--max-connections-per-ip", "3", "--smtp", "[::1]:0", listeners=2)
    v4, v6 = ms.listeners[0], ms.listeners[1]
    assert v4[0] == "127.0.0.1" and v6[0] == "::1", ms.listeners
    held = {}
    for addr, port in (v4, v6):
        held[addr] = []
        for _ in range(3):
            c, code, text = connect(addr, port)
            assert code == 220, (addr, code, text)
            held[addr].append(c)
    text = refused(*v4)
    assert "127.0.0.1" in text, text
    assert "::1" in refused(*v6)
    # one closes: that address is served again (the close is noticed on a loop turn)
    held["127.0.0.1"].pop().close()
    assert wait_until(lambda: greeted(ms, *v4) == 220, timeout=5)
    refused(*v6)
    for cs in held.values():
        for c in cs:
            c.cmd("QUIT")
            c.close()
    serves(ms, "after the per-address limit")


def test_max_connections_total(start):
    ms = start("--max-connections", "5")
    held = []
    for _ in range(5):
        c, code, _ = connect(ms.addr, ms.port)
        assert code == 220
        held.append(c)
    refused(ms.addr, ms.port)
    held.pop().close()
    assert wait_until(lambda: greeted(ms) == 220, timeout=5)
    for c in held:
        c.close()


def test_refused_connections_leak_nothing(start):
    ms = start("--max-connections-per-ip", "2", "--max-connections", "4")
    serves(ms, "baseline")
    before = Proc(ms.proc.pid).snapshot()
    held = [connect(ms.addr, ms.port)[0] for _ in range(2)]
    for i in range(300):
        s = socket.create_connection((ms.addr, ms.port), timeout=5)
        if i % 3 == 0:
            s.recv(512)
        s.close()
    for c in held:
        c.close()
    settle(ms, before)
    serves(ms, "after the churn")
