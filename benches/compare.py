"""Driver of benches/compare.sh: the gateway (demo mode) against nginx serving the same bytes, and the
gateway's miss path against the direct emulator. Prints issue 8's table; see compare.sh for how to run it."""

import argparse
import concurrent.futures
import glob
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

CLIENT_KEY = "bench-client-key"
ADMIN_KEY = "bench-admin-key"
UPSTREAM_KEY = "demo-gemini-key-1"
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
REPS = int(os.environ.get("BENCH_REPS", "3"))
BODY_1K = '{"prompt":"compare.sh hit 1K","size":"1024x1024"}'
BODY_4K = '{"prompt":"compare.sh hit 4K","size":"1024x1024","quality":"hd"}'
RUN = "%x" % int(time.time() * 1000)
# BENCH_PARTS=rss (or wrk): only that part.
PARTS = os.environ.get("BENCH_PARTS", "wrk,rss").split(",")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    """`aperture serve --demo` on a free port, its logs in a file."""

    def __init__(self, binary, work, name, env=None, demo=True):
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        e = dict(os.environ)
        e.update(
            {
                "APERTURE_API_KEY": CLIENT_KEY,
                "APERTURE_ADMIN_KEY": ADMIN_KEY,
                "APERTURE_LIMIT_MAX_CONCURRENT": "0",
            }
        )
        e.update(env or {})
        self.stderr = open(os.path.join(self.dir, "stderr.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "serve"] + (["--demo"] if demo else [])
            + ["--listen", "127.0.0.1:0", "--data-dir", os.path.join(self.dir, "data")],
            env=e,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        self.url = None
        deadline = time.time() + 120
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.search(r"Proxy server started on (http://\S+)", line)
            if m:
                self.url = m.group(1)
                break
        if not self.url:
            raise SystemExit(f"gateway {name} did not start; see {self.dir}/stderr.log")
        self.emulator = None
        for _ in range(50 if demo else 0):
            with open(os.path.join(self.dir, "stderr.log")) as f:
                m = re.search(r"upstream=\"?(http://[^\s\"]+)", f.read())
            if m:
                self.emulator = m.group(1)
                break
            time.sleep(0.1)

    def post(self, body, timeout=300):
        req = urllib.request.Request(
            self.url + "/v1/images/generations",
            data=body.encode(),
            headers={"Authorization": "Bearer " + CLIENT_KEY, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers.get("x-aperture-cache"), r.read()

    def status(self, key):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0  # MB
        return 0.0

    def reset_peak(self):
        with open(f"/proc/{self.proc.pid}/clear_refs", "w") as f:
            f.write("5")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Nginx:
    def __init__(self, binary, work, files):
        self.dir = os.path.join(work, "nginx")
        www = os.path.join(self.dir, "www")
        os.makedirs(www)
        for name, data in files.items():
            with open(os.path.join(www, name), "wb") as f:
                f.write(data)
        for d in (work, self.dir, www):
            os.chmod(d, 0o755)
        for name in files:
            os.chmod(os.path.join(www, name), 0o644)
        self.port = free_port()
        conf = os.path.join(self.dir, "nginx.conf")
        user = "user root;" if os.getuid() == 0 else ""
        with open(conf, "w") as f:
            f.write(
                f"""{user}
worker_processes auto;
daemon off;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log {self.dir}/access.log;
    client_body_temp_path {self.dir}/body;
    proxy_temp_path {self.dir}/proxy;
    fastcgi_temp_path {self.dir}/fastcgi;
    uwsgi_temp_path {self.dir}/uwsgi;
    scgi_temp_path {self.dir}/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    types {{ application/json json; }}
    server {{
        listen 127.0.0.1:{self.port};
        root {www};
        # POST to a static file: answered as the GET of the same file.
        location / {{ error_page 405 =200 $uri; }}
    }}
}}
"""
            )
        self.proc = subprocess.Popen(
            [binary, "-p", self.dir, "-c", conf, "-e", os.path.join(self.dir, "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("nginx did not start; see " + self.dir + "/error.log")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


def lua_script(work, name, body=None, header=None, miss=None, extra=()):
    """A wrk script POSTing a fixed body, or (miss=) a unique prompt per request."""
    path = os.path.join(work, name + ".lua")
    hdr = header or ("Authorization", "Bearer " + CLIENT_KEY)
    with open(path, "w") as f:
        f.write('wrk.method = "POST"\n')
        f.write('wrk.headers["Content-Type"] = "application/json"\n')
        for k, v in (hdr,) + tuple(extra):
            f.write(f'wrk.headers["{k}"] = "{v}"\n')
        if body is not None:
            f.write(f"wrk.body = {json.dumps(body)}\n")
        if miss is not None:
            f.write(
                """
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
local counter = 0
local run = "run"
function init(args) run = args[1] or run end
function request()
  counter = counter + 1
  local prompt = string.format("compare.sh miss %s %d %d", run, tid, counter)
"""
                + f"  local body = string.format({json.dumps(miss)}, prompt)\n"
                + "  return wrk.format(nil, nil, nil, body)\nend\n"
            )
    return path


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def wrk(url, script, conns, latency=False, arg=None, seconds=None):
    threads = min(conns, 2)
    cmd = ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds or SECONDS}s", "-s", script]
    if latency:
        cmd.append("--latency")
    cmd.append(url)
    if arg:
        cmd += ["--", arg]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if bad or errors:
        log(f"warning: {url}: {bad.group(0) if bad else ''} {errors.group(0) if errors else ''}")
    pct = {}
    for m in re.finditer(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M):
        pct[m.group(1)] = float(m.group(2)) * UNITS[m.group(3)]
    return {"rps": rps, "p50": pct.get("50"), "p99": pct.get("99")}


def med(values):
    return statistics.median(values), min(values), max(values)


def fmt(values, unit="", digits=2):
    if not values:
        return "not measured"
    m, lo, hi = med(values)
    return f"{m:.{digits}f}{unit} ({lo:.{digits}f}..{hi:.{digits}f})"


def ratio_of_medians(a, b):
    """median(a) / median(b) as `1.23x`: for overheads, whose per-repetition ratio swings when b is small."""
    if not a or not b or statistics.median(b) <= 0:
        return "n/a"
    return f"{statistics.median(a) / statistics.median(b):.2f}x"


def concurrent_posts(gw, bodies):
    def one(body):
        try:
            status, cache, data = gw.post(body, timeout=600)
            return status, len(data)
        except urllib.error.HTTPError as e:
            try:
                code = json.loads(e.read())["error"]["code"]
            except Exception:
                code = "?"
            return e.code, code

    with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(one, bodies))


def rss_run(gw, bodies, settle=5.0):
    """Peak RSS (VmHWM, cleared first) while `bodies` run at once, and VmRSS `settle` s after they finish."""
    gw.reset_peak()
    before = gw.status("VmRSS")
    results = concurrent_posts(gw, bodies)
    peak = gw.status("VmHWM")
    failed = [f"{s} {c}" for s, c in results if s != 200]
    if failed:
        log(f"warning: {len(failed)} of {len(results)} failed: {sorted(set(failed))}")
    time.sleep(settle)
    after = gw.status("VmRSS")
    return before, peak, after


def cpu_seconds(pid):
    """utime + stime of a process so far, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def with_cpu(gw, run):
    """`run()` (a wrk run against `gw`), and the gateway's CPU time per request in ms over it. The miss
    overhead over the emulator is, on this saturated machine, mostly the CPU the gateway takes from it, and
    this is that CPU measured directly: far steadier than a difference of two p50s."""
    before = cpu_seconds(gw.proc.pid)
    r = run()
    time.sleep(0.3)  # the cache writes and log lines of the last requests
    used = cpu_seconds(gw.proc.pid) - before
    return r, 1000.0 * used / max(r["rps"] * SECONDS, 1.0)


def start_emulator(binary):
    """`aperture emulator` in a process of its own, on a free port: its URL and process."""
    port = free_port()
    proc = subprocess.Popen([binary, "emulator", "--listen", f"127.0.0.1:{port}", "--key", UPSTREAM_KEY],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return f"http://127.0.0.1:{port}", proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the emulator did not start")


def upstream_gateway(binary, work, name, emulator, env=None):
    """A gateway (not demo) whose upstream is `emulator`, with the bench key as its one account."""
    gw = Gateway(binary, work, name, dict({"APERTURE_UPSTREAM_URL": emulator}, **(env or {})), demo=False)
    subprocess.run([binary, "accounts", "add", "--label", "bench"], input=UPSTREAM_KEY, text=True, check=True,
                   capture_output=True, env=dict(os.environ, APERTURE_SERVER=gw.url, APERTURE_ADMIN_KEY=ADMIN_KEY))
    return gw


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--aperture", required=True)
    ap.add_argument("--nginx", required=True)
    ap.add_argument("--guests", required=True)
    ap.add_argument("--component", default="")
    ap.add_argument("--baseline", default="", help="another aperture binary: its miss rows, measured in the same run")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="aperture-compare-")
    gws = []
    ngx = None
    emu = None
    try:
        log("starting the hit gateway (demo mode) and nginx")
        on = Gateway(args.aperture, work, "cache-on")
        gws.append(on)
        emu_url, emu = start_emulator(args.aperture)

        bodies = {}
        for name, body in (("1k.json", BODY_1K), ("4k.json", BODY_4K)):
            status, cache, _ = on.post(body)
            assert status == 200, status
            time.sleep(0.5)
            status, cache, data = on.post(body)
            assert status == 200 and cache == "HIT", (status, cache)
            bodies[name] = data
        ngx = Nginx(args.nginx, work, bodies)

        gw_url = on.url + "/v1/images/generations"
        s_1k = lua_script(work, "hit1k", body=BODY_1K)
        s_4k = lua_script(work, "hit4k", body=BODY_4K)
        s_miss = lua_script(work, "miss", miss='{"prompt":"%s","size":"1024x1024"}')
        gemini = (
            '{"contents":[{"role":"user","parts":[{"text":"%s"}]}],"generationConfig":'
            '{"responseModalities":["TEXT","IMAGE"],"imageConfig":{"aspectRatio":"1:1","imageSize":"1K"}}}'
        )
        # The gateway asks the upstream for gzip (as Google answers), so the direct calls do too: the emulator
        # then does the same work either way, and the difference is the gateway's own.
        s_direct = lua_script(work, "direct", header=("x-goog-api-key", UPSTREAM_KEY), miss=gemini,
                              extra=(("Accept-Encoding", "gzip"),))
        direct_url = emu_url + "/v1beta/models/gemini-3-pro-image-preview:generateContent"

        keys = ("ov_on50", "ov_off50", "ov_on99", "ov_off99", "ov_ratio", "miss_tp", "tp_on", "tp_off",
                "cpu_on", "cpu_off")
        rows = {k: [] for k in ("t1k", "t4k", "l4k50", "l4k99", "n4k99", "l1k50", "l1k99", "n1k99")
                + keys + tuple("b_" + k for k in keys)}
        if "wrk" in PARTS:
            # One short unrecorded pass first: the first run after a start (fresh connections, buffers, page
            # tables) reads lower than every later one, on both sides.
            log("warm-up (not recorded)")
            for url in (gw_url, ngx.url + "/1k.json", ngx.url + "/4k.json"):
                for script in (s_1k, s_4k):
                    wrk(url, script, 16, seconds=2)
        for rep in range(REPS if "wrk" in PARTS else 0):
            log(f"repetition {rep + 1}/{REPS}: hits (16 connections)")
            g1 = wrk(gw_url, s_1k, 16)
            n1 = wrk(ngx.url + "/1k.json", s_1k, 16)
            g4 = wrk(gw_url, s_4k, 16)
            n4 = wrk(ngx.url + "/4k.json", s_4k, 16)
            rows["t1k"].append(g1["rps"] / n1["rps"])
            rows["t4k"].append(g4["rps"] / n4["rps"])
            log(f"  1K {g1['rps']:.0f} vs nginx {n1['rps']:.0f} req/s; 4K {g4['rps']:.0f} vs {n4['rps']:.0f}")
            log(f"repetition {rep + 1}/{REPS}: hit latency (1 connection)")
            l4 = wrk(gw_url, s_4k, 1, latency=True)
            m4 = wrk(ngx.url + "/4k.json", s_4k, 1, latency=True)
            l1 = wrk(gw_url, s_1k, 1, latency=True)
            m1 = wrk(ngx.url + "/1k.json", s_1k, 1, latency=True)
            rows["l4k50"].append(l4["p50"])
            rows["l4k99"].append(l4["p99"])
            rows["n4k99"].append(m4["p99"])
            rows["l1k50"].append(l1["p50"])
            rows["l1k99"].append(l1["p99"])
            rows["n1k99"].append(m1["p99"])
        # The misses, once the hit rows are done (idle gateways beside the hit gateway would disturb them): the
        # direct calls and every miss gateway's upstream calls go to one emulator process, so the overhead is
        # the gateway's alone (a demo gateway's emulator would share its process and runtime).
        on.stop()
        gws.remove(on)
        miss_gws = {}
        for label, binary in (("", args.aperture), ("baseline ", args.baseline)):
            if not binary or "wrk" not in PARTS:
                continue
            log(f"starting the {label}miss gateways (cache on / off) on one emulator")
            for mode, env in (("on", {}), ("off", {"CACHE_BACKEND": "none"})):
                gw = upstream_gateway(binary, work, f"{label.strip() or 'this'}-miss-{mode}", emu_url, env)
                gws.append(gw)
                gw.post('{"prompt":"compare.sh miss warm-up","size":"1024x1024"}')
                miss_gws[label + mode] = gw
        for rep in range(REPS if "wrk" in PARTS else 0):
            log(f"repetition {rep + 1}/{REPS}: misses, unique prompts (16 connections)")
            d = wrk(direct_url, s_direct, 16, latency=True, arg=RUN + "d%d" % rep)
            for label, prefix in (("", ""), ("baseline ", "b_")):
                if label + "on" not in miss_gws:
                    continue
                url = lambda mode: miss_gws[label + mode].url + "/v1/images/generations"
                mon, cpu_on = with_cpu(miss_gws[label + "on"],
                                       lambda: wrk(url("on"), s_miss, 16, latency=True, arg=RUN + prefix + "on%d" % rep))
                moff, cpu_off = with_cpu(miss_gws[label + "off"],
                                         lambda: wrk(url("off"), s_miss, 16, latency=True, arg=RUN + prefix + "off%d" % rep))
                rows[prefix + "cpu_on"].append(cpu_on)
                rows[prefix + "cpu_off"].append(cpu_off)
                rows[prefix + "ov_on50"].append(mon["p50"] - d["p50"])
                rows[prefix + "ov_off50"].append(moff["p50"] - d["p50"])
                rows[prefix + "ov_on99"].append(mon["p99"] - d["p99"])
                rows[prefix + "ov_off99"].append(moff["p99"] - d["p99"])
                rows[prefix + "ov_ratio"].append(mon["p50"] / moff["p50"])
                rows[prefix + "miss_tp"].append(mon["rps"] / moff["rps"])
                rows[prefix + "tp_on"].append(mon["rps"])
                rows[prefix + "tp_off"].append(moff["rps"])
                log(f"  {label}direct p50 {d['p50']:.2f} ms; on p50 {mon['p50']:.2f}; off p50 {moff['p50']:.2f}; "
                    f"{mon['rps']:.0f} vs {moff['rps']:.0f} req/s; gateway CPU per miss {cpu_on:.3f} vs {cpu_off:.3f} ms")
        for gw in gws:
            gw.stop()
        gws.clear()

        # The emulator in its own process: only the gateway's memory is measured (a demo gateway's embedded
        # emulator expands every 4K JPEG it makes to a full raster, ~50 MB each).
        log("peak RSS: a fresh gateway, the emulator in a process of its own")
        rss = upstream_gateway(args.aperture, work, "rss", emu_url)
        gws.append(rss)
        # Warm the path (components compiled, pools, the emulator's encoder) before the idle baseline.
        rss.post('{"prompt":"compare.sh rss warm-up","quality":"hd"}')
        time.sleep(2)
        idle = rss.status("VmRSS")
        r64, r32 = [], []
        for rep in range(REPS if "rss" in PARTS else 0):
            log(f"repetition {rep + 1}/{REPS}: 64 concurrent 4K misses")
            r64.append(rss_run(rss, ['{"prompt":"compare.sh rss64 %s %d %d","quality":"hd"}' % (RUN, rep, i)
                                     for i in range(64)]))
            log(f"  before {r64[-1][0]:.0f} MB, peak {r64[-1][1]:.0f} MB, after {r64[-1][2]:.0f} MB")
        for rep in range(REPS if "rss" in PARTS else 0):
            log(f"repetition {rep + 1}/{REPS}: 32 concurrent n=10 quality=hd")
            r32.append(rss_run(rss, ['{"prompt":"compare.sh rss32 %s %d %d","quality":"hd","n":10}' % (RUN, rep, i)
                                     for i in range(32)], settle=8.0))
            log(f"  before {r32[-1][0]:.0f} MB, peak {r32[-1][1]:.0f} MB, after {r32[-1][2]:.0f} MB")

        rss.stop()
        gws.clear()
        sizes = {os.path.basename(p): os.path.getsize(p) for p in sorted(glob.glob(os.path.join(args.guests, "*.wasm")))}

        out = []
        out.append(f"# benches/compare.sh — {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, "
                   f"{os.cpu_count()} CPUs, wrk {SECONDS} s runs, {REPS} repetitions: median (min..max)")
        out.append(f"# response bodies: 1K {len(bodies['1k.json'])} bytes, 4K {len(bodies['4k.json'])} bytes")
        out.append("")
        out.append("| measure | result | target |")
        out.append("|---|---|---|")
        out.append(f"| cache-hit throughput vs nginx, same bytes, 16 connections, 1K | {fmt(rows['t1k'], 'x')} | >= 0.6x |")
        out.append(f"| cache-hit throughput vs nginx, same bytes, 16 connections, 4K | {fmt(rows['t4k'], 'x')} | >= 0.6x |")
        out.append(f"| cache hit latency, 1 connection, 4K: p50 / p99 (nginx p99) | {fmt(rows['l4k50'], ' ms')} / "
                   f"{fmt(rows['l4k99'], ' ms')} (nginx {fmt(rows['n4k99'], ' ms')}) | p99 <= 1 ms |")
        out.append(f"| cache hit latency, 1 connection, 1K: p50 / p99 (nginx p99) | {fmt(rows['l1k50'], ' ms')} / "
                   f"{fmt(rows['l1k99'], ' ms')} (nginx {fmt(rows['n1k99'], ' ms')}) | p99 <= 0.3 ms |")
        out.append(f"| miss overhead over the direct emulator, 16 conns, p50: writes on / off (on/off ratio) | "
                   f"{fmt(rows['ov_on50'], ' ms')} / {fmt(rows['ov_off50'], ' ms')} ({ratio_of_medians(rows['ov_on50'], rows['ov_off50'])} "
                   f"of the overhead; {fmt(rows['ov_ratio'], 'x')} of the latency) | on <= 1.2x off, off halved |")
        out.append(f"| gateway CPU per miss, writes on / off (on/off ratio) | {fmt(rows['cpu_on'], ' ms', 3)} / "
                   f"{fmt(rows['cpu_off'], ' ms', 3)} ({fmt([a / b for a, b in zip(rows['cpu_on'], rows['cpu_off'])], 'x')}) | |")
        out.append(f"| miss overhead, p99: writes on / off | {fmt(rows['ov_on99'], ' ms')} / {fmt(rows['ov_off99'], ' ms')} | |")
        out.append(f"| miss throughput, writes on vs off, 16 conns | {fmt(rows['miss_tp'], 'x')} "
                   f"({fmt(rows['tp_on'], '', 0)} vs {fmt(rows['tp_off'], '', 0)} req/s) | >= 0.9x |")
        if rows["b_ov_off50"]:
            out.append(f"| baseline ({args.baseline}): miss overhead p50, writes on / off (on/off ratio) | "
                       f"{fmt(rows['b_ov_on50'], ' ms')} / {fmt(rows['b_ov_off50'], ' ms')} "
                       f"({fmt(rows['b_ov_ratio'], 'x')} of the latency) | |")
            out.append(f"| baseline: miss throughput, writes on vs off | {fmt(rows['b_miss_tp'], 'x')} "
                       f"({fmt(rows['b_tp_on'], '', 0)} vs {fmt(rows['b_tp_off'], '', 0)} req/s) | |")
            out.append(f"| baseline: gateway CPU per miss, writes on / off | {fmt(rows['b_cpu_on'], ' ms', 3)} / "
                       f"{fmt(rows['b_cpu_off'], ' ms', 3)} | |")
            halved = [b / a for a, b in zip(rows["ov_off50"], rows["b_ov_off50"]) if a > 0]
            out.append(f"| miss overhead with writes off, baseline / this build (same repetition) | "
                       f"{fmt(halved, 'x')} | >= 2x (halved) |")
            cpu_halved = [b / a for a, b in zip(rows["cpu_off"], rows["b_cpu_off"]) if a > 0]
            out.append(f"| gateway CPU per miss with writes off, baseline / this build (same repetition) | "
                       f"{fmt(cpu_halved, 'x')} | >= 2x (halved) |")
        out.append(f"| peak RSS, 64 concurrent 4K misses (idle {idle:.0f} MB) | peak {fmt([r[1] for r in r64], ' MB', 0)}, "
                   f"afterwards {fmt([r[2] for r in r64], ' MB', 0)} | <= 150 MB |")
        out.append(f"| peak RSS, 32 concurrent n=10 quality=hd | peak {fmt([r[1] for r in r32], ' MB', 0)}, "
                   f"afterwards {fmt([r[2] for r in r32], ' MB', 0)} | <= 400 MB, back near idle |")
        comp = re.search(r"median=\s*([\d.]+)(µs|us|ms|ns)", args.component or "")
        out.append(f"| one component call (fresh instance), median | "
                   f"{(comp.group(1) + ' ' + comp.group(2)) if comp else 'not measured'} | <= 20 µs |")
        out.append("")
        out.append("component sizes: " + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sizes.items()))
        print("\n".join(out), flush=True)
    finally:
        for gw in gws:
            gw.stop()
        if ngx:
            ngx.stop()
        if emu:
            emu.terminate()
            emu.wait(30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    import signal

    # A SIGTERM still stops the gateways and nginx (the finally clauses run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
