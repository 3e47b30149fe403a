"""POST /api/v1/send: Mailpit's SendRequest builds a message stored as if it came over
SMTP (envelope from From/To/Cc/Bcc, tags, attachments with checksums); errors are JSON
{"Error": "..."} with 400, or 413 when the body is too large (behaviour 10)."""

import base64
import json

import pytest

from conftest import addrs, checksums

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


def b64(data):
    return base64.b64encode(data).decode("ascii")


def post(api, body, **kw):
    return api.request("POST", "/api/v1/send", body=body, **kw)


def sent_id(r):
    assert r.status == 200, r
    doc = r.json()
    assert set(doc) >= {"ID"} and isinstance(doc["ID"], str) and doc["ID"], doc
    return doc["ID"]


def test_send_minimal(api):
    mid = sent_id(post(api, {"From": {"Email": "app@x.example"},
                             "To": [{"Email": "user@y.example"}],
                             "Subject": "Minimal", "Text": "Hello from the API\n"}))
    doc = api.messages()
    assert [m["ID"] for m in doc["messages"]] == [mid]
    s = doc["messages"][0]
    assert s["Subject"] == "Minimal" and s["Read"] is False
    assert s["From"]["Address"] == "app@x.example"
    assert addrs(s["To"]) == ["user@y.example"]
    m = api.message(mid)
    assert m["Text"].replace("\r\n", "\n").strip() == "Hello from the API"
    assert m["HTML"] == ""
    assert m["ReturnPath"] == "app@x.example"
    assert m["MessageID"] and "<" not in m["MessageID"]
    assert m["Date"]
    raw = api.get("/api/v1/message/%s/raw" % mid).body
    assert b"\r\n\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b""), "not CRLF"
    h = api.json("/api/v1/message/%s/headers" % mid)
    assert "Date" in h and "Message-Id" in h, sorted(h)


def test_send_full(api):
    req = {
        "From": {"Email": "app@x.example", "Name": "The App"},
        "To": [{"Email": "one@y.example", "Name": "One"}, {"Email": "two@y.example"}],
        "Cc": [{"Email": "cc@y.example", "Name": "See See"}],
        "Bcc": ["hidden@z.example"],
        "ReplyTo": [{"Email": "reply@x.example", "Name": "Reply Desk"}],
        "Subject": "Full send \u2713",
        "Text": "The text part\n",
        "HTML": "<p>The <b>HTML</b> part <img src=\"cid:logo@x.example\"></p>",
        "Headers": {"X-Custom": "custom value", "X-Other": "2"},
        "Tags": ["api", "Send Test"],
        "Attachments": [
            {"Content": b64(PDF), "Filename": "doc.pdf", "ContentType": "application/pdf"},
            {"Content": b64(PNG), "Filename": "logo.png", "ContentType": "image/png",
             "ContentID": "logo@x.example"},
        ],
    }
    mid = sent_id(post(api, req))
    m = api.message(mid)
    assert m["From"] == {"Name": "The App", "Address": "app@x.example"}
    assert m["To"] == [{"Name": "One", "Address": "one@y.example"},
                       {"Name": "", "Address": "two@y.example"}]
    assert m["Cc"] == [{"Name": "See See", "Address": "cc@y.example"}]
    assert m["ReplyTo"] == [{"Name": "Reply Desk", "Address": "reply@x.example"}]
    assert addrs(m["Bcc"]) == ["hidden@z.example"], m["Bcc"]
    assert m["Subject"] == "Full send \u2713"
    assert m["Text"].replace("\r\n", "\n").strip() == "The text part"
    assert "<b>HTML</b>" in m["HTML"]
    assert sorted(m["Tags"], key=str.lower) == ["api", "Send Test"], m["Tags"]
    assert len(m["Attachments"]) == 1, m["Attachments"]
    a = m["Attachments"][0]
    assert (a["FileName"], a["ContentType"], a["Size"]) == ("doc.pdf", "application/pdf",
                                                            len(PDF))
    assert a["Checksums"] == checksums(PDF)
    assert len(m["Inline"]) == 1, m["Inline"]
    i = m["Inline"][0]
    assert (i["ContentID"], i["ContentType"]) == ("logo@x.example", "image/png")
    assert i["Checksums"] == checksums(PNG)
    r = api.get("/api/v1/message/%s/part/%s" % (mid, a["PartID"]))
    assert r.status == 200 and r.body == PDF, r
    r = api.get("/api/v1/message/%s/part/%s" % (mid, i["PartID"]))
    assert r.status == 200 and r.body == PNG, r

    h = api.json("/api/v1/message/%s/headers" % mid)
    assert h.get("X-Custom") == ["custom value"] and h.get("X-Other") == ["2"], h
    assert "Bcc" not in h, "Bcc addresses are envelope only"
    head = api.get("/api/v1/message/%s/raw" % mid).body.split(b"\r\n\r\n", 1)[0]
    assert b"hidden@z.example" not in head, head

    e = api.json("/api/v1/message/%s/envelope" % mid)
    assert e["Sender"] == "app@x.example"
    assert e["Recipients"] == ["one@y.example", "two@y.example", "cc@y.example",
                               "hidden@z.example"], e["Recipients"]
    assert e["ClientAddr"] == "127.0.0.1", e
    s = api.summary(mid)
    assert s["Attachments"] == 1 and sorted(s["Tags"], key=str.lower) == ["api", "Send Test"]
    assert sorted(api.json("/api/v1/tags"), key=str.lower) == ["api", "Send Test"]
    assert api.search_ids("tag:api") == [mid]
    assert api.search_ids("hidden@z.example") == [mid]


def test_send_html_only_and_duplicates(api):
    mid = sent_id(post(api, {"From": {"Email": "app@x.example"},
                             "To": [{"Email": "dup@y.example"}],
                             "Cc": [{"Email": "dup@y.example"}],
                             "Bcc": ["dup@y.example", "other@y.example"],
                             "Subject": "html", "HTML": "<h1>Only HTML</h1>"}))
    m = api.message(mid)
    assert "Only HTML" in m["Text"] and "<h1>" not in m["Text"], m["Text"]
    e = api.json("/api/v1/message/%s/envelope" % mid)
    assert e["Recipients"] == ["dup@y.example", "other@y.example"], e["Recipients"]


def test_send_header_cannot_override(api):
    r = post(api, {"From": {"Email": "app@x.example"}, "To": [{"Email": "u@y.example"}],
                   "Subject": "real subject", "Headers": {"Subject": "fake", "From": "x@evil"}})
    if r.status == 200:
        m = api.message(r.json()["ID"])
        assert m["Subject"] == "real subject" and m["From"]["Address"] == "app@x.example"
        h = api.json("/api/v1/message/%s/headers" % m["ID"])
        assert h["Subject"] == ["real subject"] and len(h["From"]) == 1, h
    else:
        assert r.status == 400 and "Error" in r.json(), r


def error_of(r, status=400):
    assert r.status == status, r
    doc = r.json()
    assert isinstance(doc, dict) and isinstance(doc.get("Error"), str) and doc["Error"], doc
    return doc["Error"]


GOOD = {"From": {"Email": "app@x.example"}, "To": [{"Email": "u@y.example"}], "Subject": "s",
        "Text": "t"}


@pytest.mark.parametrize("body", [
    None, b"", b"{not json", b"[]", b"null", b"42", b'"a string"',
    {"To": [{"Email": "u@y.example"}], "Subject": "no from"},
    {"From": {}, "To": [{"Email": "u@y.example"}]},
    {"From": {"Email": ""}, "To": [{"Email": "u@y.example"}]},
    {"From": {"Email": "not an address"}, "To": [{"Email": "u@y.example"}]},
    {"From": "app@x.example", "To": [{"Email": "u@y.example"}]},
    {"From": {"Email": "app@x.example"}},
    {"From": {"Email": "app@x.example"}, "To": []},
    {"From": {"Email": "app@x.example"}, "To": [{"Email": "bad address"}]},
    {"From": {"Email": "app@x.example"}, "To": [{"Name": "no email"}]},
    {"From": {"Email": "app@x.example"}, "To": "u@y.example"},
    {"From": {"Email": "app@x.example"}, "To": [{"Email": "u@y.example"}], "Bcc": [5]},
    {"From": {"Email": "app@x.example"}, "To": [{"Email": "u@y.example"}],
     "Attachments": [{"Content": "!!! not base64 !!!", "Filename": "x.bin"}]},
    {"From": {"Email": "app@x.example"}, "To": [{"Email": "u@y.example"}], "Subject": 5},
    {"From": {"Email": "app@x.example"}, "To": [{"Email": "u@y.example"}], "Tags": "t"},
    {"From": {"Email": "app@x.example\r\nBcc: evil@z.example"}, "To": [{"Email": "u@y.example"}]},
])
def test_send_errors(api, body):
    r = post(api, body, headers={"Content-Type": "application/json"})
    error_of(r)
    assert api.messages()["total"] == 0, "a rejected send stored a message"


@pytest.mark.parametrize("headers", [{"X-Bad": "line\r\nInjected: yes"},
                                     {"X-Bad": "line\nInjected: yes"},
                                     {"X-Bad\r\nInjected": "yes"}, {"Bad Name:": "v"}])
def test_send_header_injection(api, headers):
    """A header value or name with a line break is refused (400) or made harmless: no
    header of its own, no extra recipient."""
    r = post(api, dict(GOOD, Headers=headers))
    if r.status != 200:
        error_of(r)
        return
    mid = r.json()["ID"]
    h = api.json("/api/v1/message/%s/headers" % mid)
    assert "Injected" not in h, h
    assert api.json("/api/v1/message/%s/envelope" % mid)["Recipients"] == ["u@y.example"]


def test_send_error_names_the_field(api):
    msg = error_of(post(api, {"To": [{"Email": "u@y.example"}]}))
    assert "From" in msg, msg


def test_send_too_large(start):
    ms = start("--max-message-size", "20k", "--max-send-size", "64k")
    big = dict(GOOD, Text="x" * 200000)
    error_of(post(ms.api, big), status=413)
    att = dict(GOOD, Attachments=[{"Content": b64(b"\0" * 40000), "Filename": "a.bin"}])
    r = post(ms.api, att)  # under the body cap but the message is over 20k
    assert r.status in (400, 413), r
    assert ms.api.messages()["total"] == 0
    sent_id(post(ms.api, GOOD))  # and the server still works


def test_send_wrong_method(api):
    for method in ("GET", "PUT", "DELETE"):
        r = api.request(method, "/api/v1/send")
        assert r.status == 405, r


def test_send_is_counted_and_evented(api):
    before = api.json("/api/v1/info")["Messages"]
    sent_id(post(api, GOOD))
    sent_id(post(api, json.dumps(GOOD)))
    assert api.json("/api/v1/info")["Messages"] == before + 2
