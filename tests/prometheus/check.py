#!/usr/bin/env python3
"""Start a demo gateway and a Prometheus scraping it (free ports, own data dirs), run a
scripted load (successes, cache hits, safety blocks, a user error) in two waves, then
check through Prometheus' HTTP API that every Grafana panel query returns data and
every alert rule is healthy and reads only series that exist. Standard library only."""
import json, os, re, shutil, socket, subprocess, sys, tempfile, time, urllib.request, urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = sys.argv[1]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait(pred, what, secs=60):
    end = time.time() + secs
    while time.time() < end:
        try:
            if pred():
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"timed out waiting for {what}")


work = tempfile.mkdtemp(prefix="aperture-prom-")
procs = []
failures = []
try:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APERTURE_", "CACHE_", "GEMINI_"))}
    env["APERTURE_DENY_LIST"] = "forbidden-widget"
    gw = subprocess.Popen(
        [BIN, "serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir", os.path.join(work, "gw")],
        stdout=subprocess.PIPE, stderr=open(os.path.join(work, "gw.err"), "w"), text=True, env=env)
    procs.append(gw)
    key = url = None
    for line in gw.stdout:
        if line.startswith("Demo client key (APERTURE_API_KEY): "):
            key = line.split(": ", 1)[1].strip()
        if line.startswith("Proxy server started on "):
            url = line.split(" on ", 1)[1].strip()
            break
    if not (key and url):
        sys.exit("the demo gateway did not start: " + open(os.path.join(work, "gw.err")).read())
    target = url.replace("http://", "")

    prom_port = free_port()
    prom_url = f"http://127.0.0.1:{prom_port}"
    with open(os.path.join(work, "prometheus.yml"), "w") as f:
        f.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {ROOT}/deploy/prometheus/aperture-alerts.yml
scrape_configs:
  - job_name: aperture
    static_configs:
      - targets: ["{target}"]
""")
    prom = subprocess.Popen(
        ["prometheus", f"--config.file={work}/prometheus.yml", f"--storage.tsdb.path={work}/tsdb",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "prom.err"), "w"))
    procs.append(prom)
    wait(lambda: http("GET", prom_url + "/-/ready")[0] == 200, "prometheus ready")

    def query(expr):
        status, body = http("GET", prom_url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        return status, json.loads(body)

    def up():
        _, r = query('up{job="aperture"}')
        return r["data"]["result"] and r["data"]["result"][0]["value"][1] == "1"
    wait(up, "the first scrape")

    def gen(body, expect):
        status, out = http("POST", url + "/v1/images/generations", json.dumps(body).encode(),
                           {"authorization": f"Bearer {key}", "content-type": "application/json"})
        if status != expect:
            sys.exit(f"load: {body} answered {status}, want {expect}: {out[:300]!r}")

    # Two waves, so every counter increases between scrapes (rates are not zero).
    for wave in range(2):
        for i in range(4):
            gen({"prompt": f"a lighthouse number {i} wave {wave}"}, 200)
        time.sleep(0.5)
        for i in range(3):
            gen({"prompt": f"a lighthouse number {i} wave {wave}"}, 200)  # cache hits
        gen({"prompt": "a forbidden-widget on a table"}, 400)  # local deny-list
        gen({"prompt": "a prohibited-test scene"}, 400)  # upstream prompt block
        gen({"prompt": "x", "n": 0}, 400)  # user error
        time.sleep(3)
    time.sleep(3)

    dashboard = json.load(open(os.path.join(ROOT, "deploy/grafana/aperture-dashboard.json")))
    checked = 0
    for panel in dashboard["panels"]:
        for t in panel.get("targets", []):
            status, r = query(t["expr"])
            checked += 1
            if status != 200 or r.get("status") != "success":
                failures.append(f"panel {panel['title']!r}: {t['expr']}: {r}")
            elif not r["data"]["result"]:
                failures.append(f"panel {panel['title']!r}: no data for {t['expr']}")
    print(f"{checked} dashboard queries checked")

    # Every rule evaluated at least once, healthy, over series that exist.
    def rules():
        _, body = http("GET", prom_url + "/api/v1/rules")
        return [r for g in json.loads(body)["data"]["groups"] for r in g["rules"]]
    wait(lambda: all(r.get("lastEvaluation", "").startswith("20") and r["health"] != "unknown" for r in rules()),
         "every rule evaluated")
    names_seen = set()
    for r in rules():
        if r["health"] != "ok":
            failures.append(f"alert {r['name']}: health {r['health']}: {r.get('lastError')}")
        for name in set(re.findall(r"\b((?:aperture|gen_ai|process)_[a-z_]+|up)\b(?=\s*[{\[)])", r["query"])):
            names_seen.add(name)
    for name in sorted(names_seen):
        _, res = query(f'count({{__name__="{name}"}})')
        if not res["data"]["result"]:
            failures.append(f"alert rules read {name}, which Prometheus has no series of")
    print(f"{len(rules())} alert rules healthy over {len(names_seen)} metric names")
finally:
    for p in reversed(procs):
        p.terminate()
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
    if failures:
        print("prometheus check: FAILED", file=sys.stderr)
        for f in failures:
            print("  - " + f, file=sys.stderr)
    shutil.rmtree(work, ignore_errors=True)
sys.exit(1 if failures else 0)
