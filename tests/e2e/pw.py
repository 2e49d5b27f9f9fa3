"""Scripted visits in Debian's Chromium through playwright-core
(tests/browser/drive.mjs; `scripts/install-deps` runs `npm ci` there).
Each call starts a fresh browser, runs the steps and returns what they
produced plus every request, console call and page error."""
import json
import os
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DRIVER = os.path.join(ROOT, "tests", "browser", "drive.mjs")
MODULES = os.path.join(ROOT, "tests", "browser", "node_modules", "playwright-core")


def available():
    return bool(shutil.which("node")) and os.path.isdir(MODULES) and \
        bool(shutil.which("chromium"))


def run(steps, cookies=None, timeout=60):
    """steps: see drive.mjs. cookies: [(name, value, url)]. Raises with the
    driver's message when a step fails."""
    assert available(), "node, playwright-core or chromium missing: run scripts/install-deps"
    script = {"steps": steps,
              "cookies": [{"name": n, "value": v, "url": u} for n, v, u in cookies or []]}
    p = subprocess.run(["node", DRIVER], input=json.dumps(script), text=True,
                       capture_output=True, timeout=timeout, cwd=os.path.dirname(DRIVER))
    try:
        out = json.loads(p.stdout)
    except ValueError:
        raise AssertionError(f"driver failed: {p.stderr[-2000:]}")
    if p.returncode != 0:
        raise AssertionError(f"step {out.get('step')}: {out.get('error')}")
    return out
