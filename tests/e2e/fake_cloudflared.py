#!/usr/bin/python3
"""A fake cloudflared for end-to-end tests, driven by tests/e2e/fake_cf.py.

Run as `cloudflared tunnel --no-autoupdate --metrics= run` with the tunnel
token in TUNNEL_TOKEN (never on the command line), like the real one.
It "connects" by telling the fake Cloudflare API its token
(POST {FAKE_CF_CTL}/_ctl/connect), then watches its tunnel
(GET {FAKE_CF_CTL}/_ctl/tunnel/{id}) and exits with status 1 once the
tunnel is deleted, as the real connector does when its tunnel goes away.

Environment:
  TUNNEL_TOKEN               the connector token (required)
  FAKE_CF_CTL                base URL of the fake Cloudflare (required)
  FAKE_CLOUDFLARED_LOG       append one JSON line per start here: argv,
                             whether TUNNEL_TOKEN was set, pid
  FAKE_CLOUDFLARED_EXIT_AFTER  exit with status 2 after this many seconds
                             (a connector crash)
  FAKE_CLOUDFLARED_POLL      seconds between tunnel checks (default 0.2)
"""
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request


def ctl(base, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + "/_ctl/" + path, data=data,
                                 method="POST" if data else "GET")
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def main():
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    token = os.environ.get("TUNNEL_TOKEN", "")
    base = os.environ.get("FAKE_CF_CTL", "")
    log = os.environ.get("FAKE_CLOUDFLARED_LOG")
    if log:
        with open(log, "a") as f:
            f.write(json.dumps({"argv": sys.argv[1:], "pid": os.getpid(),
                                "token_set": bool(token),
                                "dd_vars": sorted(k for k in os.environ
                                                  if k.startswith("DD_"))})
                    + "\n")
    if sys.argv[1:] != ["tunnel", "--no-autoupdate", "--metrics=", "run"]:
        print(f"fake cloudflared: unexpected arguments {sys.argv[1:]}",
              file=sys.stderr, flush=True)
        return 64
    if not token or not base:
        print("fake cloudflared: TUNNEL_TOKEN and FAKE_CF_CTL are required",
              file=sys.stderr, flush=True)
        return 64
    try:
        tid = ctl(base, "connect", {"token": token})["tunnel_id"]
    except (urllib.error.URLError, KeyError, ValueError) as e:
        print(f"fake cloudflared: cannot connect: {e}", file=sys.stderr,
              flush=True)
        return 1
    print(f"INF Registered tunnel connection connIndex=0 tunnel={tid}",
          flush=True)
    poll = float(os.environ.get("FAKE_CLOUDFLARED_POLL", "0.2"))
    crash = os.environ.get("FAKE_CLOUDFLARED_EXIT_AFTER")
    deadline = time.monotonic() + float(crash) if crash else None
    while True:
        time.sleep(poll)
        if deadline is not None and time.monotonic() >= deadline:
            print("ERR fake crash", file=sys.stderr, flush=True)
            return 2
        try:
            st = ctl(base, "tunnel/" + tid)
        except (urllib.error.URLError, ValueError):
            continue  # the API being down does not end a connector
        if not st.get("exists") or st.get("deleted"):
            print("ERR Unauthorized: Tunnel not found; exiting",
                  file=sys.stderr, flush=True)
            return 1


if __name__ == "__main__":
    sys.exit(main())
