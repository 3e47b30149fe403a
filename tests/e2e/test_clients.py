"""swaks and curl against examples/catch, through a recording proxy: the delivered
message is exactly the DATA content the client put on the wire, unstuffed."""

import re

from e2elib import (CRLF, accepted_id, check_delivery, data_blocks, require_tool, run)

SWAKS_HELO = "swaks.e2e.test"
CURL_HELO = "curl.e2e.test"

# A message with what tends to go wrong: dot lines, an empty line in the body, long-ish
# lines, tabs, trailing spaces.
EML = (b"From: Alice <alice@example.com>\r\n"
       b"To: Bob <bob@example.net>\r\n"
       b"Subject: e2e through a real client\r\n"
       b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
       b"Message-ID: <e2e-1@example.com>\r\n"
       b"\r\n"
       b"first line\r\n"
       b".a leading dot\r\n"
       b"..two leading dots\r\n"
       b"\r\n"
       b"\tindented with a tab, trailing space \r\n"
       + b"x" * 900 + b"\r\n"
       b"last line\r\n")


def swaks(proxy, *args):
    require_tool("swaks")
    return run(["swaks", "--server", "127.0.0.1:%d" % proxy.port, "--helo", SWAKS_HELO,
                "--timeout", "20", *args])


def swaks_ids(out):
    """The ids of the end-of-data 250s in a swaks transcript ('<-  250 2.0.0 ...')."""
    return [accepted_id(m) for m in
            re.findall(r"^<-\s+250 (2\.0\.0 \S+ Message accepted for delivery)\s*$", out, re.M)]


def one_block(proxy):
    proxy.wait_closed()
    assert len(proxy.conns) == 1
    blocks = data_blocks(bytes(proxy.conns[0]["c2s"]))
    assert len(blocks) == 1
    return blocks[0]


def test_swaks_data_file(catch, proxy_for, tmp_path):
    f = tmp_path / "msg.eml"
    f.write_bytes(EML)
    proxy = proxy_for(catch)
    r = swaks(proxy, "--protocol", "ESMTP", "--from", "alice@example.com",
              "--to", "bob@example.net", "--data", "@" + str(f))
    assert r.returncode == 0, r.stdout + r.stderr
    ids = swaks_ids(r.stdout)
    assert len(ids) == 1, r.stdout
    got = catch.next_message()
    sent = one_block(proxy)
    check_delivery(got, content=sent, sender="alice@example.com", rcpts=["bob@example.net"],
                   reply_id=ids[0], helo=SWAKS_HELO)
    # swaks sends a CRLF file as it is, then a CRLF of its own before the dot
    assert sent == EML + CRLF


def test_swaks_body_default_template(catch, proxy_for):
    proxy = proxy_for(catch)
    r = swaks(proxy, "--from", "alice@example.com", "--to", "bob@example.net",
              "--body", "Hello from swaks\n.dotted line\nbye")
    assert r.returncode == 0, r.stdout + r.stderr
    got = catch.next_message()
    sent = one_block(proxy)
    check_delivery(got, content=sent, sender="alice@example.com", rcpts=["bob@example.net"],
                   reply_id=swaks_ids(r.stdout)[0], helo=SWAKS_HELO)
    assert b"\r\n.dotted line\r\n" in got.body


def test_swaks_helo_protocol_smtp(catch, proxy_for):
    proxy = proxy_for(catch)
    r = swaks(proxy, "--protocol", "SMTP", "--from", "alice@example.com",
              "--to", "bob@example.net", "--body", "old style")
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^ -> HELO ", r.stdout, re.M), r.stdout
    got = catch.next_message()
    check_delivery(got, content=one_block(proxy), sender="alice@example.com",
                   rcpts=["bob@example.net"], reply_id=swaks_ids(r.stdout)[0],
                   helo=SWAKS_HELO, with_proto="SMTP")


def test_swaks_pipelined_recipients(catch, proxy_for, tmp_path):
    f = tmp_path / "msg.eml"
    f.write_bytes(EML)
    rcpts = ["r%d@example.net" % i for i in range(6)]
    proxy = proxy_for(catch)
    r = swaks(proxy, "--pipeline", "--from", "alice@example.com", "--to", ",".join(rcpts),
              "--data", "@" + str(f))
    assert r.returncode == 0, r.stdout + r.stderr
    proxy.wait_closed()
    c2s = bytes(proxy.conns[0]["c2s"])
    # it really pipelined: MAIL, every RCPT and DATA went out in one group
    assert re.search(rb"MAIL FROM:<alice@example.com>[^\r]*\r\n(RCPT TO:<[^>]+>[^\r]*\r\n){6}"
                     rb"DATA\r\n", c2s), c2s[:600]
    got = catch.next_message()
    check_delivery(got, content=one_block(proxy), sender="alice@example.com", rcpts=rcpts,
                   reply_id=swaks_ids(r.stdout)[0], helo=SWAKS_HELO)


def test_swaks_drop_after_data_then_server_still_serves(catch, proxy_for):
    proxy = proxy_for(catch)
    r = swaks(proxy, "--from", "alice@example.com", "--to", "bob@example.net",
              "--body", "never finished", "--drop-after", "DATA")
    assert "354" in r.stdout, r.stdout + r.stderr
    catch.assert_no_message()
    r = swaks(proxy, "--from", "carol@example.com", "--to", "dave@example.net",
              "--body", "after the drop")
    assert r.returncode == 0, r.stdout + r.stderr
    got = catch.next_message()
    assert got.sender == "carol@example.com" and got.id == swaks_ids(r.stdout)[0]


def curl(proxy, *args):
    require_tool("curl")
    return run(["curl", "-sS", "-v", "--max-time", "20",
                "smtp://127.0.0.1:%d/%s" % (proxy.port, CURL_HELO), *args])


def curl_ids(err):
    return [accepted_id(m) for m in
            re.findall(r"^< 250 (2\.0\.0 \S+ Message accepted for delivery)\s*$", err, re.M)]


def test_curl_upload(catch, proxy_for, tmp_path):
    f = tmp_path / "msg.eml"
    f.write_bytes(EML)
    proxy = proxy_for(catch)
    r = curl(proxy, "--mail-from", "alice@example.com", "--mail-rcpt", "bob@example.net",
             "--mail-rcpt", "carol@example.org", "--upload-file", str(f))
    assert r.returncode == 0, r.stderr
    got = catch.next_message()
    sent = one_block(proxy)
    assert sent == EML
    check_delivery(got, content=sent, sender="alice@example.com",
                   rcpts=["bob@example.net", "carol@example.org"],
                   reply_id=curl_ids(r.stderr)[0], helo=CURL_HELO)


def test_curl_crlf_converts_lf_file(catch, proxy_for, tmp_path):
    f = tmp_path / "msg.eml"
    f.write_bytes(EML.replace(CRLF, b"\n"))
    proxy = proxy_for(catch)
    r = curl(proxy, "--crlf", "--mail-from", "alice@example.com", "--mail-rcpt",
             "bob@example.net", "--upload-file", str(f))
    assert r.returncode == 0, r.stderr
    got = catch.next_message()
    sent = one_block(proxy)
    assert sent == EML
    check_delivery(got, content=sent, sender="alice@example.com", rcpts=["bob@example.net"],
                   reply_id=curl_ids(r.stderr)[0], helo=CURL_HELO)


def test_curl_bare_lf_is_refused_by_default(catch, proxy_for, tmp_path):
    # without --crlf curl sends the LF-only file as it is: bare LFs, refused (smuggling)
    f = tmp_path / "msg.eml"
    f.write_bytes(b"Subject: bare\n\nline one\nline two\n")
    proxy = proxy_for(catch)
    r = curl(proxy, "--mail-from", "alice@example.com", "--mail-rcpt", "bob@example.net",
             "--upload-file", str(f))
    assert r.returncode != 0
    assert re.search(r"^< 550 5\.5\.2 Message refused: bare <CR> or <LF> in data", r.stderr,
                     re.M), r.stderr
    catch.assert_no_message()


def test_curl_bare_lf_normalized_on_request(start, proxy_for, tmp_path):
    ex = start("catch", "-o", "bare-lf=normalize")
    f = tmp_path / "msg.eml"
    f.write_bytes(b"Subject: bare\n\nline one\nline two\n")
    proxy = proxy_for(ex)
    r = curl(proxy, "--mail-from", "alice@example.com", "--mail-rcpt", "bob@example.net",
             "--upload-file", str(f))
    assert r.returncode == 0, r.stderr
    got = ex.next_message()
    sent = one_block(proxy)
    assert b"\r" not in sent.rstrip(CRLF)  # bare LFs did go out
    normalized = re.sub(rb"(?<!\r)\n", CRLF, sent)
    check_delivery(got, content=normalized, sender="alice@example.com",
                   rcpts=["bob@example.net"], reply_id=curl_ids(r.stderr)[0], helo=CURL_HELO)
    assert "bare-lf" in got.findings
