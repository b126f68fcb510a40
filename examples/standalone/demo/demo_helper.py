#!/usr/bin/env python3
"""Helpers for scripts/demo.sh (Python stdlib only).

  freeport N                          print N free 127.0.0.1 ports
  load URL RATE STATS                 open-loop load (new connection per request) until killed;
                                      counters by version/status written to STATS every 0.5 s
  watch API TOKEN STATS PHASES SECS   live view of rollout standalone/web once a second until its
                                      phase is one of PHASES (comma list) or SECS pass; prints
                                      "RESULT phase seconds canary_requests canary_errors"
"""
import http.client
import json
import os
import socket
import sys
import threading
import time
import urllib.parse
import urllib.request


def freeport(n):
    socks = []
    for _ in range(int(n)):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in socks))
    for s in socks:
        s.close()


def load(url, rate, stats_path):
    u = urllib.parse.urlparse(url)
    rate = float(rate)
    lock = threading.Lock()
    counts = {}  # "version status" -> n
    errors = [0]
    start = time.monotonic()
    issued = [0]

    def one():
        try:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
            c.request("GET", u.path or "/")
            r = c.getresponse()
            r.read()
            key = f"{r.getheader('X-Version') or 'none'} {r.status}"
            c.close()
        except Exception:
            with lock:
                errors[0] += 1
            return
        with lock:
            counts[key] = counts.get(key, 0) + 1

    def worker():
        while True:
            with lock:
                n = issued[0]
                issued[0] += 1
            due = start + n / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            one()

    for _ in range(16):
        threading.Thread(target=worker, daemon=True).start()
    tmp = stats_path + ".tmp"
    while True:
        time.sleep(0.5)
        with lock:
            snap = {"t": time.time(), "counts": dict(counts), "errors": errors[0]}
        with open(tmp, "w") as f:
            json.dump(snap, f)
        os.replace(tmp, stats_path)


def read_stats(path):
    try:
        with open(path) as f:
            return json.load(f)
    except Exception:
        return {"t": time.time(), "counts": {}, "errors": 0}


def by(stats, pred):
    return sum(n for k, n in stats["counts"].items() if pred(*k.split(" ")))


def get_rollout(api, token):
    req = urllib.request.Request(
        api + "/api/v1/namespaces/standalone/rollouts/web",
        headers={"Authorization": "Bearer " + token},
    )
    with urllib.request.urlopen(req, timeout=3) as r:
        return json.load(r)


def watch(api, token, stats_path, phases, secs):
    phases = phases.split(",")
    t0 = time.time()
    base = read_stats(stats_path)
    prev = base
    phase = "?"
    while True:
        time.sleep(1)
        try:
            v = get_rollout(api, token)
        except Exception as e:  # Sluice restarting or busy: show it, keep going
            print(f"  {time.time() - t0:5.1f}s  (api: {e})", flush=True)
            continue
        now = read_stats(stats_path)
        dt = max(now["t"] - prev["t"], 1e-6)
        total = by(now, lambda v, s: True) - by(prev, lambda v, s: True)
        canary = by(now, lambda v, s: v == "canary") - by(prev, lambda v, s: v == "canary")
        errs = by(now, lambda v, s: s.startswith("5")) - by(prev, lambda v, s: s.startswith("5"))
        prev = now
        phase = v.get("phase", "?")
        verdicts = " ".join(
            f"{m['name']}={m.get('lastVerdict', '-')}"
            + (f"({m['lastValue']:.3g})" if isinstance(m.get("lastValue"), (int, float)) else "")
            for m in v.get("analysis", [])
        )
        print(
            f"  {time.time() - t0:5.1f}s  phase={phase:<11} weight={v.get('weight', 0):>3}%  "
            f"step={v.get('step', 0)}/{v.get('totalSteps', 0)}  "
            f"load={total / dt:5.0f} rps canary={100.0 * canary / max(total, 1):3.0f}% "
            f"5xx={100.0 * errs / max(total, 1):4.1f}%  {verdicts}",
            flush=True,
        )
        if phase in phases or time.time() - t0 > float(secs):
            break
    end = read_stats(stats_path)
    cr = by(end, lambda v, s: v == "canary") - by(base, lambda v, s: v == "canary")
    ce = by(end, lambda v, s: v == "canary" and s.startswith("5")) - by(
        base, lambda v, s: v == "canary" and s.startswith("5")
    )
    msg = (v.get("abort") or {}).get("reason", "") if isinstance(v, dict) else ""
    print(f"RESULT {phase} {time.time() - t0:.1f} {cr} {ce} {msg}", flush=True)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"freeport": freeport, "load": load, "watch": watch}[cmd](*args)
