"""The dashboard in a real headless browser (Debian's chromium, driven over the Chrome DevTools Protocol).

Starts a demo gateway, runs a scripted load, signs in through the page's form, checks that the page shows the
same numbers as `aperture stats --json`, then generates images through the playground and checks that they are
displayed (naturalWidth > 0), that a repeat is a cache hit, and that an error is shown as the client gets it.

Run by .ci/run after `cargo test` (which builds target/debug/aperture):
    python3 tests/browser/dashboard.py [path/to/aperture]
Needs chromium and the `websockets` package (pinned in .ci/run). Set BROWSER_SCREENSHOT=file.png to keep a
screenshot of the signed-in page. Prints "browser: N passed, M failed" and exits non-zero on a failure.
"""
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target" / "debug" / "aperture"
# Every wait is bounded; nothing here measures speed.
WAIT_S = 60

passed = 0
failures = []


def check(ok, what):
    global passed
    if ok:
        passed += 1
        print(f"ok: {what}")
    else:
        failures.append(what)
        print(f"FAIL: {what}")


def clean_env():
    return {k: v for k, v in os.environ.items() if not k.startswith(("APERTURE_", "CACHE_", "GEMINI_"))}


def start_gateway(data_dir):
    proc = subprocess.Popen(
        [str(BINARY), "serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir", data_dir],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=clean_env(),
    )
    keys, addr = {}, None
    for line in proc.stdout:
        if m := re.search(r"Demo (client|admin) key \(\w+\): (\S+)", line):
            keys[m.group(1)] = m.group(2)
        if m := re.search(r"Proxy server started on (http://\S+)", line):
            addr = m.group(1)
            break
    if not (addr and "client" in keys and "admin" in keys):
        proc.kill()
        sys.exit("the demo gateway did not start")
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, keys, addr


def generate(addr, key, body):
    req = urllib.request.Request(
        f"{addr}/v1/images/generations", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=WAIT_S) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def stats_json(addr, admin_key):
    env = clean_env()
    env["APERTURE_ADMIN_KEY"] = admin_key
    out = subprocess.run(
        [str(BINARY), "stats", "--since", "1h", "--json", "--server", addr],
        capture_output=True, text=True, env=env, timeout=WAIT_S,
    )
    if out.returncode != 0:
        sys.exit(f"aperture stats failed: {out.stderr}")
    return json.loads(out.stdout)


class Browser:
    """One headless chromium page over CDP."""

    def __init__(self, profile):
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if not exe:
            sys.exit("chromium is not installed (apt-get install chromium)")
        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--no-default-browser-check", "--remote-debugging-port=0",
             f"--user-data-dir={profile}", "--window-size=1400,2400", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        port = None
        deadline = time.time() + WAIT_S
        for line in self.proc.stderr:
            if m := re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line):
                port = m.group(1)
                break
            if time.time() > deadline:
                break
        if not port:
            self.proc.kill()
            sys.exit("chromium did not start its DevTools endpoint")
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=WAIT_S) as r:
            pages = [t for t in json.load(r) if t["type"] == "page"]
        self.ws = connect(pages[0]["webSocketDebuggerUrl"], max_size=64 * 1024 * 1024, open_timeout=WAIT_S)
        self.next_id = 0
        self.call("Page.enable")
        self.call("Runtime.enable")

    def call(self, method, **params):
        self.next_id += 1
        mine = self.next_id
        self.ws.send(json.dumps({"id": mine, "method": method, "params": params}))
        deadline = time.time() + WAIT_S
        while time.time() < deadline:
            msg = json.loads(self.ws.recv(timeout=WAIT_S))
            if msg.get("id") == mine:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
        raise TimeoutError(method)

    def js(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expression, what):
        deadline = time.time() + WAIT_S
        while time.time() < deadline:
            try:
                if self.js(expression):
                    return True
            except RuntimeError:
                pass
            time.sleep(0.2)
        check(False, f"waited {WAIT_S} s for {what}")
        return False

    def close(self):
        try:
            self.ws.close()
        finally:
            self.proc.kill()
            self.proc.wait()


def cell(b, key, cls):
    return b.js(f"(document.querySelector('tr[data-key=\"{key}\"] td.{cls}') || {{}}).textContent")


def main():
    work = tempfile.mkdtemp(prefix="aperture-browser-")
    gw, keys, addr = start_gateway(os.path.join(work, "data"))
    browser = None
    try:
        # The scripted load: 4 generations, 4 cache hits, 1 safety block, 1 invalid request.
        prompts = [f"a paper boat number {i}" for i in range(4)]
        statuses = [generate(addr, keys["client"], {"prompt": p}) for p in prompts + prompts]
        statuses.append(generate(addr, keys["client"], {"prompt": "a prohibited-test boat"}))
        statuses.append(generate(addr, keys["client"], {"prompt": ""}))
        check(statuses == [200] * 8 + [400, 400], f"scripted load answered {statuses}")

        browser = b = Browser(os.path.join(work, "profile"))
        b.call("Page.navigate", url=f"{addr}/dashboard")
        b.wait_for("document.getElementById('signin') !== null", "the sign-in form")
        # Type the admin key into the form and press the button, as a person would.
        b.js("document.getElementById('key').focus()")
        b.call("Input.insertText", text=keys["admin"])
        b.js("document.getElementById('signin-button').click()")
        b.wait_for("document.body && document.body.dataset.realtimeAt", "the real-time dashboard to load")
        b.wait_for("document.body.dataset.historyAt", "the historical dashboard to load")
        href = b.js("location.href")
        check(href == f"{addr}/dashboard", f"signed in at {href}")
        check(keys["admin"] not in href, "the admin key is not in the URL")
        check(b.js("document.cookie") == "", "the session cookie is not readable by scripts (HttpOnly)")

        report = stats_json(addr, keys["admin"])
        for table in ("business", "technical"):
            for row in report[table]:
                shown = (cell(b, row["key"], "value"), cell(b, row["key"], "mark"))
                check(shown == (row["display"], row["mark"]),
                      f"{row['metric']}: page shows {shown}, aperture stats --json says {(row['display'], row['mark'])}")
        tech = {r["key"]: r for r in report["technical"]}
        biz = {r["key"]: r for r in report["business"]}
        tiles = {
            "rt-error-rate": tech["error_rate"]["display"],
            "rt-avg-time": biz["avg_generation_time"]["display"],
            "rt-hit-rate": biz["cache_hit_rate"]["display"],
            "rt-in-flight": str(report["live"]["in_flight"]),
            "rt-status": report["live"]["status"],
            "rt-requests": str(report["totals"]["requests"]),
        }
        for tile, want in tiles.items():
            got = b.js(f"document.getElementById('{tile}').textContent")
            check(got == want, f"tile {tile}: page {got!r}, aperture stats --json {want!r}")
        check(report["totals"]["requests"] == 10, f"the report counts the 10 requests ({report['totals']['requests']})")
        charts = b.js("document.querySelectorAll('.uplot canvas').length")
        check(charts >= 9, f"{charts} charts are drawn")
        models = b.js("document.querySelectorAll('#models tbody tr').length")
        check(models >= 1, f"time by model has {models} row(s)")
        accounts = b.js("document.querySelectorAll('#accounts tbody tr').length")
        check(accounts == 3, f"quota by account shows the 3 demo accounts ({accounts})")

        # The playground: the demo key is filled in; the image is displayed.
        check(b.js("document.getElementById('pg-key').value") == keys["client"], "the playground has the demo client key")
        b.js("document.getElementById('pg-prompt').value = 'a lighthouse in fog'")
        for attempt, cache in ((1, "MISS"), (2, "HIT")):
            b.js("document.getElementById('pg-images').textContent = ''")
            b.js("document.getElementById('pg-go').click()")
            b.wait_for("[...document.querySelectorAll('#pg-images img')].some(i => i.complete && i.naturalWidth > 0)",
                       f"playground image {attempt}")
            width = b.js("Math.max(0, ...[...document.querySelectorAll('#pg-images img')].map(i => i.naturalWidth))")
            check(width > 0, f"playground image {attempt} is displayed (naturalWidth {width})")
            check(b.js("document.getElementById('pg-status').textContent").startswith("200"), f"playground request {attempt} answered 200")
            check(b.js("document.getElementById('pg-cache').textContent") == cache, f"playground request {attempt} is a cache {cache}")
            rid = b.js("document.getElementById('pg-request-id').textContent")
            check(bool(re.fullmatch(r"req_[0-9a-f]{16}", rid or "")), f"playground shows the request id {rid!r}")
        b.js("document.getElementById('pg-prompt').value = 'a prohibited-test lighthouse'")
        b.js("document.getElementById('pg-go').click()")
        b.wait_for("document.getElementById('pg-status').textContent.startsWith('400')", "the playground's error")
        shown = json.loads(b.js("document.getElementById('pg-error').textContent") or "{}")
        check(shown.get("error", {}).get("code") == "IMG_SAFETY_BLOCKED", f"the error is shown as the client gets it: {shown}")

        if os.environ.get("BROWSER_SCREENSHOT"):
            shot = b.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
            Path(os.environ["BROWSER_SCREENSHOT"]).write_bytes(base64.b64decode(shot["data"]))
    finally:
        if browser:
            browser.close()
        gw.terminate()
        try:
            gw.wait(timeout=30)
        except subprocess.TimeoutExpired:
            gw.kill()
        shutil.rmtree(work, ignore_errors=True)

    print(f"browser: {passed} passed, {len(failures)} failed")
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
