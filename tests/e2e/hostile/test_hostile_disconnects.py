"""Clients that vanish (the fault table's "client disconnect mid-DATA", "disconnect
after end of data, before reading 250" and "peer reset while writing"): storms of
connections closed with a reset (SO_LINGER 0) at every stage, and clients that close
right after the final dot without reading the 250. A vanished transaction is never
stored partially; a message whose final dot arrived is the server's and is kept."""

import socket
import struct

import pytest

from hostlib import Case, count, wait_until
from mslib import TIMEOUT

N = 60  # connections per storm

HEAD = (b"EHLO client.test\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n"
        b"DATA\r\n")
# stage -> what the client sends before resetting
STAGES = {
    "on-connect": b"",
    "mid-command": b"EHLO client.test\r\nMAIL FROM:<a@x.ex",
    "after-data-command": HEAD,
    "mid-data": HEAD + b"Subject: reset\r\n\r\n" + b"partial line " * 2000,
    "mid-final-dot": HEAD + b"Subject: reset\r\n\r\nbody\r\n.",
    "flooding-noops": b"NOOP\r\n" * 5000,
}


def _reset(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.parametrize("stage", list(STAGES))
def test_reset_storm(shared, stage):
    """Input: 60 connections that each send the stage's bytes (without reading any
    reply) and then reset the connection. Expected: nothing stored (no final dot ever
    arrived); the server serves a normal client afterwards."""
    ms = shared()
    case = Case(ms)
    for _ in range(N):
        s = socket.create_connection((ms.addr, ms.port), timeout=TIMEOUT)
        try:
            if STAGES[stage]:
                s.sendall(STAGES[stage])
        except (BrokenPipeError, ConnectionResetError):
            pass
        _reset(s)
    case.check(0)


def test_close_after_final_dot_without_reading(shared):
    """Input: 60 clients that each send a whole transaction (EHLO .. final dot) in one
    write and close at once, reading no reply. Expected: every message is stored (once
    the final dot arrived the message is the server's, RFC 5321 6.1), and none twice."""
    ms = shared()
    case = Case(ms)
    for i in range(N):
        s = socket.create_connection((ms.addr, ms.port), timeout=TIMEOUT)
        s.sendall(HEAD + b"Subject: gone %d\r\n\r\nbody\r\n.\r\n" % i)
        s.close()
    assert wait_until(lambda: case.stored_since() >= N, timeout=TIMEOUT), \
        case.stored_since()
    case.check(N)
    assert count(ms) == case.before + N + 1
