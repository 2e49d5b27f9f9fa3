"""What every fake HTTP service in tests/e2e shares: a threaded server on
loopback (HTTP, or HTTPS with an ssl context) that stops promptly, even
with keep-alive connections open, and a request handler with the reply
and body helpers the fakes used to write each for itself.

A fake subclasses FakeServer and serves a Handler subclass; the handler
reaches its fake as self.fake:

    class _Handler(fakehttp.Handler):
        def do_GET(self):
            self.send(200, self.fake.state())

    class FakeThing(fakehttp.FakeServer):
        def start(self):
            return self.serve(_Handler, name="fake-thing")
"""
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1 << 20


class Server(ThreadingHTTPServer):
    """One thread a connection; the sockets are remembered so that stop()
    can cut keep-alive connections idling in their threads."""
    daemon_threads = True

    def __init__(self, addr, handler):
        self.open_socks = set()
        super().__init__(addr, handler)


class Handler(BaseHTTPRequestHandler):
    fake = None          # the FakeServer serving this handler
    protocol_version = "HTTP/1.1"
    timeout = 10         # an idle keep-alive connection goes after this
    max_body = MAX_BODY

    def setup(self):
        super().setup()
        self.server.open_socks.add(self.connection)

    def finish(self):
        self.server.open_socks.discard(self.connection)
        super().finish()

    def log_message(self, fmt, *args):  # quiet: pytest shows failures
        pass

    def send(self, status, body=b"", ctype="application/json", extra=None):
        """One reply. body: bytes, str, or a dict or list sent as JSON.
        A 204 has no body nor content headers; HEAD gets the headers only.
        A peer that has gone away is not an error of the fake's."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if status != 204:
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status == 204 or self.command == "HEAD":
            return
        try:
            self.wfile.write(body)
        except OSError:
            pass

    def read_body(self):
        """The request body (b"" without a Content-Length), or None when
        the length is malformed, negative or over max_body: answer 413
        and close, the rest of the body is still on the wire."""
        n = self.headers.get("Content-Length")
        if n is None:
            return b""
        try:
            n = int(n)
        except ValueError:
            return None
        if n < 0 or n > self.max_body:
            return None
        return self.rfile.read(n) if n else b""

    def lower_headers(self):
        return {k.lower(): v for k, v in self.headers.items()}

    def split_path(self):
        """(path, query string) of the request target."""
        u = urllib.parse.urlsplit(self.path)
        return u.path, u.query


class FakeServer:
    """start()/stop() (also as a context manager), port and url, for a
    fake that serves with serve()."""
    _http = None
    _thread = None
    scheme = "http"
    _serve_host = "127.0.0.1"

    def serve(self, handler, host="127.0.0.1", port=0, ssl_context=None,
              name="fake-http"):
        """Serves handler (a Handler subclass, given self as its fake) on
        host:port, port 0 for a free one, in a daemon thread."""
        bound = type(handler.__name__, (handler,), {"fake": self})
        self._http = Server((host, port), bound)
        self._serve_host = host
        self.scheme = "http"
        if ssl_context is not None:
            # The handshake runs in the connection's thread, not in accept:
            # one stalled client does not hold up the others.
            self._http.socket = ssl_context.wrap_socket(
                self._http.socket, server_side=True,
                do_handshake_on_connect=False)
            self.scheme = "https"
        self._thread = threading.Thread(target=self._http.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=name, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stops serving and cuts open connections; safe to repeat."""
        if self._http is None:
            return
        self._http.shutdown()
        for s in list(self._http.open_socks):
            try:
                s.shutdown(2)
            except OSError:
                pass
        self._http.server_close()
        self._thread.join(5)
        self._http = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._http.server_address[1]

    @property
    def url(self):
        return f"{self.scheme}://{self._serve_host}:{self.port}"
