"""The HTTP chassis end to end: routing, keep-alive, pipelining, HEAD,
error bodies, request ids, streaming, and the access log."""
import http.client
import json
import re
import time

from conftest import Reader, build, connect, request, send, wait_for


def test_cp_health_shape(cp):
    r = request(cp.port, path="/health")
    assert r.status == 200
    assert r.header("content-type") == "application/json"
    body = r.json()
    assert body["ok"] is True
    assert body["service"] == "cp"
    assert body["env"] == "dev"
    assert isinstance(body["uptime_secs"], int)
    assert re.fullmatch(r"[0-9a-f]{16}", r.header("x-request-id"))


def test_keep_alive_reuses_one_connection(testserver):
    conn = http.client.HTTPConnection("127.0.0.1", testserver.port, timeout=5)
    conn.request("GET", "/health")
    r = conn.getresponse()
    r.read()
    first_sock = conn.sock
    local = first_sock.getsockname()
    ids = set()
    for i in range(20):
        conn.request("GET", f"/params/{i}/x")
        r = conn.getresponse()
        assert r.status == 200
        assert json.loads(r.read())["a"] == str(i)
        ids.add(r.getheader("X-Request-Id"))
        # http.client reconnects silently when the server closes: the
        # socket and its local port prove it did not.
        assert conn.sock is first_sock
        assert conn.sock.getsockname() == local
    assert len(ids) == 20
    conn.close()


def test_pipelined_requests_answer_in_order(testserver):
    s = connect(testserver.port)
    reqs = b"".join(build("GET", f"/params/p{i}/q") for i in range(10))
    reqs += build("POST", "/echo", body=b"payload") + build("GET", "/hello")
    s.sendall(reqs)
    rd = Reader(s)
    for i in range(10):
        r = rd.response()
        assert r.status == 200
        assert r.json()["a"] == f"p{i}"
    assert rd.response().body == b"payload"
    assert rd.response().body == b"hello\n"
    s.close()


def test_pipelined_slow_response_keeps_order(testserver):
    s = connect(testserver.port)
    s.sendall(build("GET", "/slow?ms=300") + build("GET", "/hello"))
    rd = Reader(s)
    assert rd.response().body == b"slow\n"
    assert rd.response().body == b"hello\n"
    s.close()


def test_head_has_length_but_no_body(testserver):
    s = connect(testserver.port)
    send(s, "HEAD", "/hello")
    send(s, "GET", "/hello")
    rd = Reader(s)
    r = rd.response(head_only=True)
    assert r.status == 200
    assert r.header("content-length") == "6"
    # The very next bytes must be the GET's response, not a HEAD body.
    r2 = rd.response()
    assert r2.body == b"hello\n"
    s.close()


def test_not_found_is_json(testserver):
    r = request(testserver.port, path="/nope")
    assert r.status == 404
    assert r.header("content-type") == "application/json"
    assert r.json() == {"code": "NOT_FOUND", "message": "unmatched route"}
    assert r.header("x-request-id")


def test_wrong_method_is_405_with_allow(testserver):
    r = request(testserver.port, "DELETE", "/hello")
    assert r.status == 405
    assert r.header("allow") == "GET, HEAD"
    assert r.json()["code"] == "METHOD_NOT_ALLOWED"
    r = request(testserver.port, "PATCH", "/echo")
    assert r.status == 405
    assert r.header("allow") == "POST, PUT"


def test_unknown_but_valid_method_token(testserver):
    # PROPFIND is a method llhttp knows and no route has.
    r = request(testserver.port, "PROPFIND", "/hello")
    assert r.status == 405


def test_path_and_query_parameters(testserver):
    r = request(testserver.port, path="/params/a%20b/c?x=1%2B1+2&y=z")
    assert r.json() == {"a": "a b", "b": "c", "x": "1+1 2", "rest": None}
    r = request(testserver.port, path="/files/css/site/app.css")
    assert r.json()["rest"] == "css/site/app.css"


def test_hostile_paths_are_400(testserver):
    for path in ("/params/a%2Fb/c", "/params/%00/c", "/params/%zz/c",
                 "/files/../../etc/passwd", "/files/a/%2e%2e/b"):
        r = request(testserver.port, path=path)
        assert r.status == 400, path
        assert r.json()["code"] == "BAD_REQUEST"


def test_204_has_no_body_or_length(testserver):
    s = connect(testserver.port)
    send(s, "DELETE", "/things/1")
    send(s, "GET", "/hello")
    rd = Reader(s)
    r = rd.response()
    assert r.status == 204
    assert r.header("content-length") is None
    assert r.header("location") == "/things/1"
    assert rd.response().body == b"hello\n"
    s.close()


def test_chunked_streaming_response(testserver):
    r = request(testserver.port, path="/stream?chunks=5&size=10")
    assert r.status == 200
    assert r.header("transfer-encoding") == "chunked"
    assert r.body == (b"x" * 9 + b"\n") * 5


def test_http10_stream_is_close_delimited(testserver):
    r = request(testserver.port, path="/stream?chunks=3&size=4", version="1.0")
    assert r.status == 200
    assert r.version == "HTTP/1.0"
    assert r.header("transfer-encoding") is None
    assert r.header("connection") == "close"
    assert r.body == b"xxx\n" * 3


def test_http10_keep_alive_only_when_asked(testserver):
    s = connect(testserver.port)
    send(s, "GET", "/hello", {"Connection": "keep-alive"}, version="1.0")
    rd = Reader(s)
    r = rd.response()
    assert r.header("connection") == "keep-alive"
    send(s, "GET", "/hello", version="1.0")
    r = rd.response()
    assert r.header("connection") == "close"
    assert rd.closed()


def test_connection_close_is_honoured(testserver):
    s = connect(testserver.port)
    send(s, "GET", "/hello", {"Connection": "close"})
    rd = Reader(s)
    r = rd.response()
    assert r.header("connection") == "close"
    assert rd.closed()


def test_expect_100_continue(testserver):
    s = connect(testserver.port)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
              b"Expect: 100-continue\r\n\r\n")
    rd = Reader(s)
    r = rd.response()
    assert r.status == 100
    s.sendall(b"hello")
    assert rd.response().body == b"hello"
    s.close()


def test_expect_100_not_sent_when_refused(testserver):
    s = connect(testserver.port)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n"
              b"Expect: 100-continue\r\n\r\n")
    r = Reader(s).response()
    assert r.status == 413
    s.close()


def test_abort_while_handler_waits_is_safe(testserver):
    for q in ("ms=300", "ms=300&abortable=1"):
        s = connect(testserver.port)
        send(s, "GET", f"/slow?{q}")
        time.sleep(0.05)
        s.close()
    # The handlers end 300 ms later; the aborted request is logged as 499.
    wait_for(lambda: "status=499" in testserver.output(),
             what="the aborted request logged as 499")
    assert request(testserver.port, path="/hello").status == 200


def test_access_log_one_line_without_query_or_secrets(testserver):
    request(testserver.port, path="/params/a/b?x=topsecret",
            headers={"Authorization": "Bearer sekrit-token"})
    time.sleep(0.1)
    out = testserver.output()
    lines = [l for l in out.splitlines() if "msg=request" in l and "/params/a/b" in l]
    assert len(lines) == 1
    assert "status=200" in lines[0]
    assert "topsecret" not in out
    assert "sekrit-token" not in out
    assert re.search(r"rid=[0-9a-f]{16}", lines[0])


def test_embedded_assets_with_etag_and_revalidation(cp):
    r = request(cp.port, path="/static/dd.css")
    assert r.status == 200
    assert r.header("content-type") == "text/css; charset=utf-8"
    assert b"--accent" in r.body
    etag = r.header("etag")
    assert etag and etag.startswith('"')
    assert "max-age" in r.header("cache-control")
    r2 = request(cp.port, path="/static/dd.css", headers={"If-None-Match": etag})
    assert r2.status == 304
    assert r2.body == b""
    assert r2.header("etag") == etag
    r3 = request(cp.port, path="/static/dd.css",
                 headers={"If-None-Match": '"stale"'})
    assert r3.status == 200
    r4 = request(cp.port, "HEAD", "/static/favicon.svg")
    assert r4.status == 200
    assert r4.header("content-type") == "image/svg+xml"
    assert int(r4.header("content-length")) > 0
    assert request(cp.port, path="/static/missing.js").status == 404
    assert request(cp.port, path="/static/%2e%2e/main.c").status == 400


def test_large_pipelined_backlog_behind_a_slow_handler(testserver):
    """More pipelined bytes than the server buffers: it stops reading, then
    resumes once the backlog drains, and every request is answered."""
    s = connect(testserver.port)
    n = 3000
    s.sendall(build("GET", "/slow?ms=300") + build("GET", "/hello") * n)
    rd = Reader(s)
    assert rd.response().body == b"slow\n"
    for _ in range(n):
        assert rd.response().body == b"hello\n"
    s.close()
