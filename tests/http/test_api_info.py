"""GET /api/v1/info, /api/v1/webui, GET/PUT /api/v1/tags, /livez and /readyz,
/api/v1/openapi, unknown paths and wrong methods."""

import json
import re

import pytest

from conftest import check_fields, make_msg, send, send_many


def test_info(ms, api):
    ids = send_many(ms, [make_msg(subject="i%d" % i) for i in range(3)])
    api.message(ids[0])
    api.ok("PUT", "/api/v1/tags", {"IDs": ids[:2], "Tags": ["alpha"]})
    api.ok("PUT", "/api/v1/tags", {"IDs": [ids[2]], "Tags": ["alpha", "beta"]})
    api.ok("DELETE", "/api/v1/messages", {"IDs": [ids[1]]})
    info = api.json("/api/v1/info")
    check_fields(info, {"Version": str, "LatestVersion": str, "Database": str,
                        "DatabaseSize": int, "Messages": int, "Unread": int, "Tags": dict,
                        "RuntimeStats": dict}, "AppInformation")
    assert info["Version"], info
    assert info["Messages"] == 2 and info["Unread"] == 1, info
    assert info["Tags"] == {"alpha": 2, "beta": 1}, info["Tags"]
    assert info["Database"] == ms.db, info["Database"]
    assert info["DatabaseSize"] > 0
    rs = info["RuntimeStats"]
    check_fields(rs, {k: int for k in ("Uptime", "Memory", "MessagesDeleted", "SMTPAccepted",
                                       "SMTPAcceptedSize", "SMTPRejected", "SMTPIgnored")},
                 "RuntimeStats")
    assert rs["MessagesDeleted"] == 1, rs
    assert rs["SMTPAccepted"] == 3, rs
    assert rs["SMTPAcceptedSize"] >= 3 * 100, rs
    assert rs["Uptime"] >= 0 and rs["Memory"] >= 0


def test_webui(start):
    ms = start("--ui-label", "Staging <b>sink</b>")
    w = ms.api.json("/api/v1/webui")
    check_fields(w, {"Label": str, "MessageRelay": dict, "SpamAssassin": bool,
                     "ChaosEnabled": bool, "DuplicatesIgnored": bool}, "WebUIConfiguration")
    assert w["Label"] == "Staging <b>sink</b>"
    check_fields(w["MessageRelay"], {"Enabled": bool, "SMTPServer": str,
                                     "AllowedRecipients": str, "BlockedRecipients": str,
                                     "ReturnPath": str, "OverrideFrom": str}, "MessageRelay")
    assert w["MessageRelay"]["Enabled"] is False


def test_webui_default_label(api):
    assert api.json("/api/v1/webui")["Label"] == ""


def test_tags(ms, api):
    assert api.json("/api/v1/tags") == []
    ids = send_many(ms, [make_msg(subject="t%d" % i) for i in range(3)])
    api.ok("PUT", "/api/v1/tags", {"IDs": ids[:2], "Tags": ["Beta", "alpha", " gamma "]})
    assert api.json("/api/v1/tags") == ["alpha", "Beta", "gamma"]
    assert api.summary(ids[0])["Tags"] == ["alpha", "Beta", "gamma"]
    assert api.summary(ids[2])["Tags"] == []
    assert api.message(ids[1])["Tags"] == ["alpha", "Beta", "gamma"]
    assert api.messages()["tags"] == ["alpha", "Beta", "gamma"]
    # PUT replaces; duplicates (case-insensitive) kept once, empty names dropped
    api.ok("PUT", "/api/v1/tags", {"IDs": [ids[0]], "Tags": ["beta", "BETA", "", "  "]})
    assert len(api.summary(ids[0])["Tags"]) == 1
    assert api.summary(ids[0])["Tags"][0].lower() == "beta"
    # no Tags, or [] removes them
    api.ok("PUT", "/api/v1/tags", {"IDs": [ids[1]], "Tags": []})
    assert api.summary(ids[1])["Tags"] == []
    api.ok("PUT", "/api/v1/tags", {"IDs": [ids[0]]})
    assert api.summary(ids[0])["Tags"] == []
    assert api.json("/api/v1/tags") == []
    assert api.search_ids("tag:alpha") == []


def test_tags_survive_read_and_show_in_search(ms, api):
    ids = send_many(ms, [make_msg(subject="s%d" % i) for i in range(2)])
    api.ok("PUT", "/api/v1/tags", {"IDs": [ids[1]], "Tags": ["keep"]})
    api.ok("PUT", "/api/v1/messages", {"Read": True})
    assert api.summary(ids[1])["Tags"] == ["keep"]
    assert api.search_ids("tag:keep") == [ids[1]]
    assert api.search("tag:keep")["tags"] == ["keep"]


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"IDs": "x", "Tags": ["a"]}',
                                  b'{"IDs": ["x"], "Tags": "a"}', b'{"IDs": ["x"], "Tags": [1]}'])
def test_tags_bad_body(ms, api, body):
    send(ms, make_msg())
    r = api.request("PUT", "/api/v1/tags", body=body,
                    headers={"Content-Type": "application/json"})
    assert r.status == 400, r
    assert api.json("/api/v1/tags") == []


def test_tags_are_data_not_markup(ms, api):
    mid = send(ms, make_msg())
    tag = "<img src=x onerror=alert(1)>"
    r = api.request("PUT", "/api/v1/tags", {"IDs": [mid], "Tags": [tag]})
    assert r.status in (200, 400), r  # Mailpit strips such characters; both are fine
    for t in api.json("/api/v1/tags"):
        assert t == tag or "<" not in t, t


@pytest.mark.parametrize("path", ["/livez", "/readyz"])
def test_health(api, path):
    r = api.get(path)
    assert r.status == 200, r


def norm(path):
    return re.sub(r"\{[^}]*\}", "{}", path)


SERVED = {
    "/api/v1/messages": {"get", "put", "delete"},
    "/api/v1/search": {"get", "delete"},
    "/api/v1/message/{}": {"get"},
    "/api/v1/message/{}/headers": {"get"},
    "/api/v1/message/{}/raw": {"get"},
    "/api/v1/message/{}/part/{}": {"get"},
    "/api/v1/message/{}/envelope": {"get"},
    "/api/v1/send": {"post"},
    "/api/v1/info": {"get"},
    "/api/v1/webui": {"get"},
    "/api/v1/tags": {"get", "put"},
    "/api/v1/wait": {"get"},
    "/api/v1/openapi": {"get"},
    "/api/events": {"get"},
    "/view/{}.html": {"get"},
    "/view/{}.txt": {"get"},
    "/livez": {"get"},
    "/readyz": {"get"},
}


def test_openapi(api):
    r = api.get("/api/v1/openapi")
    assert r.status == 200, r
    assert "json" in r.ctype or "yaml" in r.ctype, r.ctype
    doc = json.loads(r.body.decode("utf-8"))
    assert "openapi" in doc or "swagger" in doc, sorted(doc)
    paths = {norm(p): {m.lower() for m in v} for p, v in doc["paths"].items()}
    for p, methods in SERVED.items():
        assert p in paths, "OpenAPI lacks %s (has %s)" % (p, sorted(paths))
        assert methods <= paths[p], (p, methods, paths[p])
    # and everything it lists answers something other than 404 (no route left out)
    for p, methods in doc["paths"].items():
        if "get" not in {m.lower() for m in methods} or "{" in p or p == "/api/events":
            continue
        q = {"query": "x"} if p.endswith("/search") else {}
        if p.endswith("/wait"):
            q = {"timeout": "1"}
        r = api.request("GET", p, params=q)
        assert r.status != 404 and r.status < 500, (p, r)


def test_openapi_events_are_sse(api):
    doc = json.loads(api.get("/api/v1/openapi").body.decode("utf-8"))
    ev = json.dumps(doc["paths"]["/api/events"])
    assert "text/event-stream" in ev, ev[:500]


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/messagesx", "/api/v2/messages",
                                  "/api/v1/message/", "/api/v1/message/x/nope",
                                  "/api/v1/message/x/part/", "/view/x.pdf",
                                  "/api/v1/tags/x/y/z"])
def test_unknown_path_is_404(api, path):
    r = api.get(path)
    assert r.status == 404, r


@pytest.mark.parametrize("method,path", [
    ("POST", "/api/v1/messages"), ("PATCH", "/api/v1/messages"), ("POST", "/api/v1/search"),
    ("PUT", "/api/v1/search"), ("DELETE", "/api/v1/message/x"), ("POST", "/api/v1/info"),
    ("PUT", "/api/v1/webui"), ("DELETE", "/api/v1/tags"), ("POST", "/api/v1/tags"),
    ("PUT", "/api/v1/message/x/raw"), ("POST", "/view/x.html"), ("POST", "/api/v1/wait"),
])
def test_wrong_method_is_405(api, method, path):
    r = api.request(method, path, body=b"{}")
    if method == "PATCH" and r.status == 501:
        # RFC 9110 15.6.2: 501 for a method the server does not implement at all is fine
        return
    assert r.status == 405, r


def test_json_replies_have_nosniff(ms, api):
    mid = send(ms, make_msg())
    for path in ("/api/v1/messages", "/api/v1/message/%s" % mid, "/api/v1/info",
                 "/api/v1/tags", "/api/v1/webui", "/api/v1/message/%s/headers" % mid,
                 "/api/v1/message/%s/raw" % mid, "/api/v1/message/nope"):
        r = api.get(path)
        assert r.headers.get("X-Content-Type-Options", "").lower() == "nosniff", (path, r)
