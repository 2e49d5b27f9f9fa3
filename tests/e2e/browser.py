"""Headless Chromium driven over the DevTools protocol, just enough to load
our pages as a real browser does: set a cookie, navigate, wait for the
load, read the DOM text, and record every request the page made and every
console message or exception it produced. Uses Debian's chromium and
python3-websockets; nothing is downloaded."""
import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time

import websockets

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Page:
    def __init__(self, ws):
        self.ws = ws
        self.n = 0
        self.requests = []
        self.console = []
        self.errors = []
        self.loaded = asyncio.Event()

    async def call(self, method, **params):
        self.n += 1
        want = self.n
        await self.ws.send(json.dumps({"id": want, "method": method,
                                       "params": params}))
        while True:
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), 20))
            if msg.get("id") == want:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.event(msg)

    def event(self, msg):
        m, p = msg.get("method"), msg.get("params", {})
        if m == "Network.requestWillBeSent":
            self.requests.append(p["request"]["url"])
        elif m == "Runtime.consoleAPICalled":
            self.console.append(p.get("type"))
        elif m == "Runtime.exceptionThrown":
            self.errors.append(p.get("exceptionDetails", {}).get("text"))
        elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
            self.errors.append(p["entry"].get("text"))
        elif m == "Page.loadEventFired":
            self.loaded.set()

    async def pump_until_loaded(self):
        deadline = time.monotonic() + 20
        while not self.loaded.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("page did not load")
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), left))
            self.event(msg)


async def _visit(ws_url, url, cookies):
    async with websockets.connect(ws_url, max_size=None) as ws:
        page = Page(ws)
        for domain in ("Network", "Page", "Runtime", "Log"):
            await page.call(f"{domain}.enable")
        for name, value in cookies.items():
            await page.call("Network.setCookie", name=name, value=value, url=url)
        await page.call("Page.navigate", url=url)
        await page.pump_until_loaded()
        r = await page.call("Runtime.evaluate",
                            expression="JSON.stringify({title: document.title,"
                            " text: document.body.innerText,"
                            " sheets: document.styleSheets.length})",
                            returnByValue=True)
        info = json.loads(r["result"]["value"])
        info.update(requests=page.requests, console=page.console,
                    errors=page.errors)
        return info


def _launch():
    """Starts a headless Chromium; returns (process, profile dir, the
    page target's DevTools WebSocket URL)."""
    assert CHROMIUM, "chromium is not installed (scripts/install-deps)"
    profile = tempfile.mkdtemp(prefix="dd-chromium-")
    proc = subprocess.Popen(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
         "--no-first-run", "--no-default-browser-check",
         "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--metrics-recording-only",
         "--remote-debugging-port=0", f"--user-data-dir={profile}",
         "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = os.path.join(profile, "DevToolsActivePort")
        deadline = time.monotonic() + 30
        while not os.path.exists(port_file) or os.path.getsize(port_file) == 0:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("chromium did not start")
            time.sleep(0.05)
        port = int(open(port_file).read().split()[0])
        import urllib.request
        targets = json.load(urllib.request.urlopen(
            f"http://127.0.0.1:{port}/json/list", timeout=10))
        ws_url = [t for t in targets if t["type"] == "page"][0]["webSocketDebuggerUrl"]
    except BaseException:
        _stop(proc, profile)
        raise
    return proc, profile, ws_url


def _stop(proc, profile):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    shutil.rmtree(profile, ignore_errors=True)


def visit(url, cookies=None):
    """Loads url in a fresh headless Chromium; returns title, text,
    stylesheet count, requests made, console calls and errors."""
    proc, profile, ws_url = _launch()
    try:
        return asyncio.run(_visit(ws_url, url, cookies or {}))
    finally:
        _stop(proc, profile)


async def _connect(ws_url):
    return await websockets.connect(ws_url, max_size=None)


class Browser:
    """One headless Chromium tab kept open across steps, for pages that
    change while they are watched: navigate, fill and submit forms, read
    the DOM as it changes, all without reloading unless asked to.
    Use as a context manager."""

    def __enter__(self):
        self.proc, self.profile, ws_url = _launch()
        self.loop = asyncio.new_event_loop()
        try:
            self.ws = self.loop.run_until_complete(_connect(ws_url))
            self.page = Page(self.ws)
            for domain in ("Network", "Page", "Runtime", "Log"):
                self._run(self.page.call(f"{domain}.enable"))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        ws = getattr(self, "ws", None)
        if ws is not None:
            self.loop.run_until_complete(ws.close())
        self.loop.close()
        _stop(self.proc, self.profile)

    def _run(self, coro):
        return self.loop.run_until_complete(coro)

    @property
    def requests(self):
        return self.page.requests

    @property
    def errors(self):
        return self.page.errors

    @property
    def console(self):
        return self.page.console

    def goto(self, url):
        """Navigates and waits for the load event."""
        self.page.loaded.clear()
        self._run(self.page.call("Page.navigate", url=url))
        self._run(self.page.pump_until_loaded())

    def eval(self, expression):
        """The value of a JavaScript expression in the page (JSON-able)."""
        r = self._run(self.page.call("Runtime.evaluate", expression=expression,
                                     returnByValue=True, awaitPromise=True))
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def submit(self, form_selector, fields):
        """Fills a form's fields ({name: value}; True ticks a checkbox)
        and submits it as a person would, then waits for the next page."""
        self.page.loaded.clear()
        self.eval("(() => { const f = document.querySelector(%s);"
                  " const v = %s; for (const k in v) { const e = f.elements[k];"
                  " if (e.type === 'checkbox') e.checked = !!v[k];"
                  " else e.value = v[k]; } f.requestSubmit(); return 1; })()"
                  % (json.dumps(form_selector), json.dumps(fields)))
        self._run(self.page.pump_until_loaded())

    def wait_for(self, expression, timeout=30.0, step=0.25):
        """Polls a JavaScript expression until it is truthy; returns its
        value. Events keep being recorded meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.eval(expression)
            if v:
                return v
            if time.monotonic() > deadline:
                raise TimeoutError(f"never true: {expression}")
            self._run(asyncio.sleep(step))

    def clear_cookies(self):
        self._run(self.page.call("Network.clearBrowserCookies"))

    def screenshot(self, path):
        import base64
        r = self._run(self.page.call("Page.captureScreenshot", format="png"))
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))
