/*
 * DevOps Defender: keeps the fleet page live without reloading it.
 *
 * Every few seconds (data-poll-ms on #fleet-body) it asks /api/fleet for
 * the same server-rendered fragment the page was first painted with and
 * swaps it in; every second it says how old the view is. Polling, not a
 * stream: it passes every proxy and tunnel unchanged, holds no
 * connection open per viewer, and the server renders one thing one way.
 * Nothing here builds HTML from data: the fragment comes escaped from
 * our own origin.
 */
(function () {
  'use strict';
  var body = document.getElementById('fleet-body');
  var status = document.getElementById('fleet-status');
  if (!body || !status) {
    return;
  }
  var every = Number(body.getAttribute('data-poll-ms')) || 2000;
  var last = Date.now();
  var busy = false;
  var signedOut = false;

  function show() {
    var s = Math.floor((Date.now() - last) / 1000);
    var cls = 'live';
    if (signedOut) {
      status.textContent = 'signed out: reload to sign in again';
      status.className = 'live dead';
      return;
    }
    status.textContent = s < 2 ? 'updated just now' : 'updated ' + s + 's ago';
    if (s > 60) {
      cls += ' dead';
    } else if (s > 20) {
      cls += ' stale';
    }
    status.className = cls;
  }

  function poll() {
    if (busy || signedOut) {
      return;
    }
    busy = true;
    // A lost session answers 307 to the sign-in page: never swap that in.
    fetch('/api/fleet', {credentials: 'same-origin', redirect: 'manual',
                         cache: 'no-store', headers: {'Accept': 'text/html'}})
      .then(function (r) {
        if (r.type === 'opaqueredirect' || r.status === 401) {
          signedOut = true;
          return null;
        }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html !== null) {
          body.innerHTML = html;
          last = Date.now();
        }
      })
      .catch(function () { /* the next poll tries again */ })
      .then(function () {
        busy = false;
        show();
      });
  }

  setInterval(poll, every);
  setInterval(show, 1000);
}());
