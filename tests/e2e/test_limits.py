"""Every limit and timeout of the HTTP server, and hostile request bytes.
Each case checks the status, the JSON error body, and that the server
keeps serving afterwards."""
import socket
import time

import pytest

from conftest import TESTSERVER, Reader, build, connect, request, send

FAST = {
    "DD_HTTP_HEAD_TIMEOUT_MS": "400",
    "DD_HTTP_BODY_TIMEOUT_MS": "400",
    "DD_HTTP_IDLE_TIMEOUT_MS": "400",
    "DD_HTTP_WRITE_TIMEOUT_MS": "600",
    "DD_HTTP_MAX_BODY_UNAUTH": "1024",
    "DD_HTTP_MAX_BODY": "65536",
    "DD_HTTP_MAX_HEAD_BYTES": "4096",
    "DD_HTTP_MAX_HEADERS": "16",
}


@pytest.fixture
def srv(start):
    return start([TESTSERVER], FAST)


def raw(port, data, timeout=3.0):
    """Sends bytes, returns the first response (or None) and whether the
    server then closed the connection."""
    s = connect(port, timeout)
    try:
        s.sendall(data)
        rd = Reader(s)
        try:
            r = rd.response()
        except (EOFError, ConnectionResetError):
            return None, True
        return r, rd.closed(timeout)
    finally:
        s.close()


def assert_error(r, status, code=None):
    assert r is not None
    assert r.status == status, (r.status, r.body)
    assert r.header("content-type") == "application/json"
    body = r.json()
    assert set(body) == {"code", "message"}
    if code:
        assert body["code"] == code
    assert r.header("x-request-id")


def still_serving(port):
    assert request(port, path="/hello").body == b"hello\n"


# --- sizes -------------------------------------------------------------------

def test_header_too_large_is_431(srv):
    r, closed = raw(srv.port, build(headers={"X-Big": "a" * 5000}))
    assert_error(r, 431, "HEADERS_TOO_LARGE")
    assert closed
    still_serving(srv.port)


def test_too_many_headers_is_431(srv):
    hdrs = {f"X-H{i}": "v" for i in range(20)}
    r, closed = raw(srv.port, build(headers=hdrs))
    assert_error(r, 431)
    assert closed
    still_serving(srv.port)


def test_long_request_target_is_414(srv):
    r, closed = raw(srv.port, build(path="/hello?" + "q" * 5000))
    assert_error(r, 414, "URI_TOO_LONG")
    assert closed


def test_too_many_path_segments_is_414(srv):
    r, _ = raw(srv.port, build(path="/a" * 40))
    assert_error(r, 414)


def test_declared_body_too_large_is_413_before_reading(srv):
    s = connect(srv.port)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
    rd = Reader(s)
    r = rd.response()
    assert_error(r, 413, "PAYLOAD_TOO_LARGE")
    assert r.header("connection") == "close"
    # The client may keep sending the refused body; the server lingers
    # briefly instead of resetting, then closes.
    try:
        s.sendall(b"x" * 50000)
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert rd.closed(5)
    s.close()
    still_serving(srv.port)


def test_chunked_body_over_cap_is_413(srv):
    chunk = b"400\r\n" + b"y" * 1024 + b"\r\n"
    data = (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunk * 3 + b"0\r\n\r\n")
    r, closed = raw(srv.port, data)
    assert_error(r, 413)
    assert closed


def test_body_at_cap_is_fine(srv):
    r = request(srv.port, "POST", "/echo", body=b"z" * 1024)
    assert r.status == 200
    assert r.body == b"z" * 1024


def test_authenticated_gate_raises_the_body_cap(srv):
    big = b"k" * 20000
    r = request(srv.port, "POST", "/gated/echo", body=big)
    assert_error(r, 413)
    r = request(srv.port, "POST", "/gated/echo", {"Authorization": "Bearer good"},
                body=big)
    assert r.status == 200
    assert r.body == big
    r = request(srv.port, "POST", "/gated/echo",
                {"Authorization": "Bearer good"}, body=b"k" * 70000)
    assert_error(r, 413)


def test_gate_refusal_happens_before_the_body(srv):
    s = connect(srv.port)
    s.sendall(b"POST /gated/echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer bad\r\n"
              b"Content-Length: 60000\r\n\r\n")
    r = Reader(s).response()  # answered without sending any body byte
    assert_error(r, 401, "UNAUTHORIZED")
    s.close()


def test_max_connections(start):
    srv = start([TESTSERVER], {"DD_HTTP_MAX_CONNECTIONS": "4"})
    held = [connect(srv.port) for _ in range(4)]
    for s in held:
        send(s, "GET", "/hello")
        assert Reader(s).response().status == 200
    extra = connect(srv.port)
    extra.sendall(build("GET", "/hello"))
    assert Reader(extra).closed(3)
    extra.close()
    for s in held:
        s.close()
    time.sleep(0.2)
    still_serving(srv.port)


# --- timeouts ------------------------------------------------------------------

def test_slow_head_gets_408_and_close(srv):
    s = connect(srv.port)
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n")
    t0 = time.monotonic()
    rd = Reader(s)
    r = rd.response()
    assert time.monotonic() - t0 < 3
    assert_error(r, 408, "REQUEST_TIMEOUT")
    assert rd.closed()
    s.close()


def test_trickled_head_cannot_outlive_the_timeout(srv):
    """Slowloris: one byte at a time never resets the head deadline."""
    s = connect(srv.port)
    t0 = time.monotonic()
    closed = False
    try:
        for ch in b"GET /hello HTTP/1.1\r\nX-Slow: " + b"a" * 100:
            s.send(bytes([ch]))
            time.sleep(0.05)
            if time.monotonic() - t0 > 3:
                break
    except (BrokenPipeError, ConnectionResetError):
        closed = True
    assert closed or Reader(s).closed(2)
    assert time.monotonic() - t0 < 3.5
    s.close()


def test_slow_body_gets_408(srv):
    s = connect(srv.port)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123")
    rd = Reader(s)
    assert_error(rd.response(), 408)
    assert rd.closed()
    s.close()


def test_idle_keep_alive_connection_is_closed(srv):
    s = connect(srv.port)
    send(s, "GET", "/hello")
    rd = Reader(s)
    assert rd.response().status == 200
    t0 = time.monotonic()
    assert rd.closed(3)
    assert time.monotonic() - t0 < 2
    s.close()


def test_silent_connection_is_closed_without_a_response(srv):
    s = connect(srv.port)
    rd = Reader(s)
    assert rd.closed(3)
    assert rd.buf == b""
    s.close()


def test_client_that_never_reads_is_dropped(srv):
    s = connect(srv.port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    send(s, "GET", "/stream?chunks=100000&size=65536")
    time.sleep(2.5)  # well past the write timeout; nothing read
    got = 0
    s.settimeout(3)
    try:
        while True:
            d = s.recv(1 << 20)
            if not d:
                break
            got += len(d)
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    assert got < 100000 * 65536
    still_serving(srv.port)


# --- hostile bytes ------------------------------------------------------------

@pytest.mark.parametrize("data,status", [
    (b"FOO@ / HTTP/1.1\r\nHost: x\r\n\r\n", 400),          # bad method token
    (b"GET / HTTP/1.7\r\nHost: x\r\n\r\n", None),          # bad version
    (b"GET / XTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /hello HTTP/1.1\r\nHost x\r\n\r\n", 400),       # no colon
    (b"GET /hello HTTP/1.1\r\nHost : x\r\n\r\n", 400),     # space before colon
    (b"GET /hello HTTP/1.1\r\nX-A: a\x00b\r\n\r\n", 400),  # NUL in value
    (b"GET /he\x00llo HTTP/1.1\r\n\r\n", 400),             # NUL in target
    (b"GET /hello HTTP/1.1\r\nX-A: \x7f\x01\r\n\r\n", 400),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),   # TLS hello
], ids=["bad-method", "bad-version", "bad-protocol", "no-colon",
        "space-before-colon", "nul-in-value", "nul-in-target",
        "control-in-value", "tls-hello"])
def test_malformed_requests(srv, data, status):
    r, closed = raw(srv.port, data)
    if status is None:
        assert r is not None and r.status in (400, 505)
    else:
        assert_error(r, status)
    assert closed
    still_serving(srv.port)


@pytest.mark.parametrize("data", [
    # Both framings: the classic request-smuggling vector.
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /hello HTTP/1.1\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Length: 4\r\n\r\n0\r\n\r\n",
    # Conflicting lengths.
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 5\r\n\r\nabcde",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n",
    # Transfer codings other than a final chunked.
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabc",
    # Obsolete line folding hides a header from some parsers.
    b"POST /echo HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n",
    # Malformed chunking.
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"ffffffffffffffffff\r\nabc\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n",
], ids=["cl-then-te", "te-then-cl", "two-lengths", "length-list",
        "negative-length", "hex-length", "chunked-not-last", "gzip-coding",
        "obs-fold", "bad-chunk-size", "chunk-longer-than-size",
        "huge-chunk-size", "negative-chunk-size"])
def test_smuggling_and_bad_framing_rejected(srv, data):
    r, closed = raw(srv.port, data)
    assert_error(r, 400, "BAD_REQUEST")
    assert closed
    still_serving(srv.port)


def test_very_long_header_line_without_end(srv):
    s = connect(srv.port)
    try:
        s.sendall(b"GET /hello HTTP/1.1\r\nX-Long: " + b"a" * 200000)
    except (BrokenPipeError, ConnectionResetError):
        pass
    rd = Reader(s)
    try:
        assert_error(rd.response(), 431)
    except (EOFError, ConnectionResetError):
        pass  # the reset may overtake the reply; the server survives either way
    s.close()
    still_serving(srv.port)


def test_garbage_flood_is_bounded(srv):
    s = connect(srv.port)
    try:
        for _ in range(50):
            s.sendall(b"\x00\xff" * 4096)
    except (BrokenPipeError, ConnectionResetError):
        pass
    s.close()
    still_serving(srv.port)
