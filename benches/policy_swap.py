#!/usr/bin/env python3
"""Policy-swap benchmark (not a test): in one run of a demo gateway, measures

  * the time from `activate` returning to the first request served by the new version,
  * the time a `rollback` call takes,
  * request p50/p99 under the same load without swaps, then with an activate/rollback
    cycle every 50 ms.

Usage (after `cargo build --release`):
  benches/policy_swap.py [--bin target/release/aperture] [--guest PATH/safety_extra_deny.wasm]
                         [--requests 4000] [--workers 16]

Only the Python standard library is used. The guest defaults to the one host/build.rs
built under $CARGO_TARGET_DIR (or target/).
"""

import argparse
import glob
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ADMIN = "bench-admin-key-0123456789"
CLIENT = "bench-client-key-0123456789"


def find_guest():
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    found = sorted(glob.glob(f"{target}/*/build/aperture-*/out/safety_extra_deny.wasm"),
                   key=os.path.getmtime)
    return found[-1] if found else None


class Conn:
    """One keep-alive connection."""

    def __init__(self, host, port):
        self.c = http.client.HTTPConnection(host, port, timeout=60)

    def call(self, method, path, body=b"", key=CLIENT, ctype="application/json"):
        self.c.request(method, path, body=body,
                       headers={"authorization": f"Bearer {key}", "content-type": ctype})
        r = self.c.getresponse()
        data = r.read()
        return r.status, dict(r.getheaders()), data


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round((len(xs) - 1) * q)))]


def load(host, port, workers, total, stats):
    """`total` requests from `workers` threads; latencies (ms) into stats['lat'], failures counted."""
    per = total // workers

    def worker(w):
        c = Conn(host, port)
        for i in range(per):
            body = json.dumps({"prompt": f"a quiet field {(w * per + i) % 32}"}).encode()
            t = time.perf_counter()
            status, _, _ = c.call("POST", "/v1/images/generations", body)
            dt = (time.perf_counter() - t) * 1000
            with stats["lock"]:
                stats["lat"].append(dt)
                if status != 200:
                    stats["failed"] += 1

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"),
                                                  "release", "aperture"))
    ap.add_argument("--guest", default=None)
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--workers", type=int, default=16)
    args = ap.parse_args()
    guest = args.guest or find_guest()
    if not guest or not os.path.isfile(guest):
        sys.exit("safety_extra_deny.wasm not found: build the host first, or pass --guest")

    data = tempfile.mkdtemp(prefix="aperture-bench-")
    with open(os.path.join(data, "bench.toml"), "w") as f:
        f.write("[limits]\nmax_concurrent = 256\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APERTURE_", "CACHE_", "GEMINI_"))}
    env.update(APERTURE_ADMIN_KEY=ADMIN, APERTURE_API_KEY=CLIENT, APERTURE_LOG="warn")
    proc = subprocess.Popen([args.bin, "serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir", data,
                             "--config", os.path.join(data, "bench.toml")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        addr = None
        for line in proc.stdout:
            m = re.search(r"Proxy server started on http://([\d.]+):(\d+)", line)
            if m:
                addr = (m.group(1), int(m.group(2)))
                break
        if not addr:
            sys.exit("the gateway did not start")
        host, port = addr
        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
        admin = Conn(host, port)
        with open(guest, "rb") as f:
            status, _, body = admin.call("POST", "/admin/policy/safety/install?label=extra", f.read(),
                                         key=ADMIN, ctype="application/wasm")
        assert status in (200, 201), body
        extra = json.loads(body)["version"]["sha256"][:8]

        # Warm the cache and the components.
        load(host, port, args.workers, args.workers * 8, {"lock": threading.Lock(), "lat": [], "failed": 0})

        base = {"lock": threading.Lock(), "lat": [], "failed": 0}
        t0 = time.perf_counter()
        load(host, port, args.workers, args.requests, base)
        base_s = time.perf_counter() - t0

        swapping = {"lock": threading.Lock(), "lat": [], "failed": 0}
        first_new, rollbacks, done = [], [], threading.Event()

        def swapper():
            a = Conn(host, port)
            probe = Conn(host, port)
            n = 0
            while not done.is_set():
                status, _, _ = a.call("POST", "/admin/policy/safety/activate",
                                      json.dumps({"ref": "extra"}).encode(), key=ADMIN)
                returned = time.perf_counter()
                assert status == 200
                # The first request after activate returned: served by the new version?
                # A cached prompt: the probe measures the swap, not a generation.
                body = json.dumps({"prompt": "a quiet field 0"}).encode()
                _, headers, _ = probe.call("POST", "/v1/images/generations", body)
                served = dict((k.lower(), v) for k, v in headers.items()).get("x-aperture-policy", "")
                assert f"safety={extra}" in served, served
                first_new.append((time.perf_counter() - returned) * 1000)
                time.sleep(0.025)
                t = time.perf_counter()
                status, _, _ = a.call("POST", "/admin/policy/safety/rollback", b"{}", key=ADMIN)
                rollbacks.append((time.perf_counter() - t) * 1000)
                assert status == 200
                time.sleep(0.025)
                n += 1

        sw = threading.Thread(target=swapper)
        sw.start()
        t0 = time.perf_counter()
        load(host, port, args.workers, args.requests, swapping)
        swap_s = time.perf_counter() - t0
        done.set()
        sw.join()

        print(f"requests per phase: {args.requests} at {args.workers} in flight (cache hits after warm-up)")
        print(f"without swaps: p50 {pct(base['lat'], .5):.2f} ms  p99 {pct(base['lat'], .99):.2f} ms  "
              f"{args.requests / base_s:.0f} req/s  failed {base['failed']}")
        print(f"with swaps:    p50 {pct(swapping['lat'], .5):.2f} ms  p99 {pct(swapping['lat'], .99):.2f} ms  "
              f"{args.requests / swap_s:.0f} req/s  failed {swapping['failed']}  "
              f"({len(rollbacks)} activate/rollback cycles)")
        print(f"activate returned -> first request served by the new version: median "
              f"{statistics.median(first_new):.2f} ms, max {max(first_new):.2f} ms "
              f"(the whole probe request; every probe was on the new version)")
        print(f"rollback call: median {statistics.median(rollbacks):.2f} ms, max {max(rollbacks):.2f} ms")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
