"""Render the published asv dashboard in headless Chromium and fail when it shows no benchmark graph.

    python tools/check_dashboard.py [--html .asv/html] [--screenshot .asv/dashboard.png]

Serves the ``asv publish`` output on 127.0.0.1 (the page loads its data with XHR, which file://
URLs do not allow), loads it in Debian's Chromium (``apt-get install chromium``) with a virtual-time
budget so the page's scripts finish, and counts the plotted graphs in the rendered DOM:

- the summary grid (index page): one ``div.benchmark-plot`` per benchmark; Flot adds a
  ``canvas.flot-base`` to it only after that benchmark's graph data loaded and was drawn;
- one benchmark's own page (``index.html#<benchmark>``): the main graph ``#main-graph`` with its
  ``canvas.flot-base`` and the drawn data points' tick labels.

asv's page loads jQuery, Flot, Bootstrap, blueimp-md5, stupidtable and flot-orderBars from CDNs. A
user's browser fetches them; a machine without network (CI, this project's machines) cannot, and the
page then shows "Can not determine continental origin of swallow" instead of graphs. With
``--deps local`` (the default when Debian's packages are installed: ``apt-get install -y chromium
libjs-jquery libjs-jquery-flot libjs-bootstrap node-blueimp-md5``) the check serves a copy of the
published directory whose CDN tags point at those local files instead (Flot 4.2 from Debian, whose
bundle includes the time/selection/categories plugins asv loads separately; stupidtable, which only
sorts the list pages' tables, and orderBars, which only orders bar charts, are replaced by no-op
stand-ins). ``--deps cdn`` checks the page exactly as published (needs network).

Exit status 0 when at least ``--min-graphs`` summary graphs and the main graph are drawn, 1 when
not (an empty or broken results/html directory), 2 when Chromium is missing. ``--screenshot PATH`` also
writes PNGs of the summary page (PATH: the grid of small line graphs) and of that benchmark's page
(PATH with ``-benchmark`` before the extension: the main graph, one line per parameter).
"""
import argparse
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars"]


JS = "/usr/share/javascript"
# CDN file (basename) -> local Debian file, "" for a plugin already in Flot 4's bundle, or a stand-in
LOCAL_DEPS = {
    "jquery-3.3.1.min.js": f"{JS}/jquery/jquery.min.js",
    "jquery.flot.min.js": f"{JS}/jquery-flot/jquery.flot.js",
    "jquery.flot.time.min.js": "",
    "jquery.flot.selection.min.js": "",
    "jquery.flot.categories.min.js": "",
    "jquery.flot.orderBars.js": "shim:(function($){$.plot.plugins.push({init:function(){},"
                                "options:{series:{bars:{order:null}}},name:'orderBars',version:'stand-in'});})(jQuery);",
    "stupidtable.min.js": "shim:jQuery.fn.stupidtable=function(){return this;};",
    "md5.min.js": f"{JS}/blueimp-md5/md5.min.js",
    "bootstrap.min.js": f"{JS}/bootstrap/js/bootstrap.min.js",
    "bootstrap.min.css": f"{JS}/bootstrap/css/bootstrap.min.css",
}


def local_deps_available():
    return all(not v or v.startswith("shim:") or os.path.isfile(v) for v in LOCAL_DEPS.values())


def localize(html, dst):
    """Copy the published dashboard to ``dst`` with its CDN script/style tags pointing at local files."""
    shutil.copytree(html, dst)
    os.makedirs(os.path.join(dst, "_deps"))
    index = os.path.join(dst, "index.html")
    with open(index) as f:
        page = f.read()

    def repl(m):
        tag, url = m.group(0), m.group(2)
        base = url.rsplit("/", 1)[-1]
        if base not in LOCAL_DEPS:
            return tag
        src = LOCAL_DEPS[base]
        if not src:
            return ""
        if src.startswith("shim:"):
            with open(os.path.join(dst, "_deps", base), "w") as f:
                f.write(src[5:])
        else:
            shutil.copy(src, os.path.join(dst, "_deps", base))
        if tag.startswith("<link"):
            return f'<link rel="stylesheet" href="_deps/{base}">'
        return f'<script src="_deps/{base}"></script>'

    page = re.sub(r'<(script|link)[^>]*(?:src|href)="(https://[^"]+)"[^>]*>(?:</script>)?', repl, page)
    with open(index, "w") as f:
        f.write(page)
    return dst


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _chromium(browser, url, extra, budget_ms, timeout):
    with tempfile.TemporaryDirectory() as profile:
        cmd = [browser, *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}",
               "--window-size=1280,1600", *extra, url]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return r


def count_graphs(dom):
    """(summary plots drawn, summary plot slots, main graph drawn) in a rendered asv page."""
    slots = re.split(r'class="benchmark-plot', dom)[1:]
    drawn = sum(1 for s in slots if 'class="flot-base"' in s.split("benchmark-container", 1)[0])
    m = dom.find('id="main-graph"')
    main = m >= 0 and 'class="flot-base"' in dom[m:m + 20000]
    return drawn, len(slots), main


def first_benchmark(html):
    """A benchmark with results (asv publish writes graphs/summary/<name>.json only for those)."""
    summary = os.path.join(html, "graphs", "summary")
    names = sorted(f[:-5] for f in os.listdir(summary) if f.endswith(".json")) if os.path.isdir(summary) else []
    return names[0] if names else None


def check(html, screenshot=None, min_graphs=1, budget_ms=15000, timeout=120, browser=None, deps="auto"):
    """Returns (ok, message); ok is None when Chromium is missing."""
    browser = browser or find_chromium()
    if browser is None:
        return None, "chromium not found (Debian: apt-get install -y chromium)"
    if not os.path.isfile(os.path.join(html, "index.html")) or not os.path.isfile(os.path.join(html, "index.json")):
        return False, f"{html}: no published dashboard (index.html/index.json missing; run asv publish)"
    if deps == "auto":
        deps = "local" if local_deps_available() else "cdn"
    with tempfile.TemporaryDirectory() as tmp:
        served = localize(html, os.path.join(tmp, "html")) if deps == "local" else html
        ok, msg = _check_served(served, html, screenshot, min_graphs, budget_ms, timeout, browser)
    return ok, f"{msg}; JS dependencies: {deps}"


def _check_served(served, html, screenshot, min_graphs, budget_ms, timeout, browser):
    handler = functools.partial(_QuietHandler, directory=served)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/index.html"
    try:
        r = _chromium(browser, base, ["--dump-dom"], budget_ms, timeout)
        drawn, slots, _ = count_graphs(r.stdout)
        msgs = [f"summary page: {drawn} of {slots} benchmark graphs drawn"]
        if "continental origin of swallow" in r.stdout:
            msgs.append("the page's JavaScript dependencies did not load (no network? use --deps local)")
        ok = drawn >= min_graphs
        name = first_benchmark(html)
        if name is None:
            ok = False
            msgs.append("no benchmark has results (graphs/summary/ empty)")
        else:
            r2 = _chromium(browser, f"{base}#{name}", ["--dump-dom"], budget_ms, timeout)
            main = count_graphs(r2.stdout)[2]
            msgs.append(f"benchmark page {name}: main graph {'drawn' if main else 'NOT drawn'}")
            ok = ok and main
        if screenshot:
            shots = [(base, screenshot)]
            if name is not None:
                stem, ext = os.path.splitext(screenshot)
                shots.append((f"{base}#{name}", f"{stem}-benchmark{ext or '.png'}"))
            for url, path in shots:
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
                _chromium(browser, url, [f"--screenshot={os.path.abspath(path)}"], budget_ms, timeout)
                msgs.append(f"screenshot: {path}" if os.path.isfile(path) else f"screenshot NOT written: {path}")
        if r.returncode != 0:
            msgs.append(f"chromium exit {r.returncode}: {r.stderr[-500:]}")
        return ok, "; ".join(msgs)
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--html", default=".asv/html", help="asv publish output (asv.conf.json html_dir)")
    ap.add_argument("--screenshot", help="write a PNG of the summary page here")
    ap.add_argument("--min-graphs", type=int, default=1)
    ap.add_argument("--budget-ms", type=int, default=15000, help="Chromium virtual-time budget")
    ap.add_argument("--deps", choices=["auto", "local", "cdn"], default="auto",
                    help="where the page's JavaScript libraries come from (auto: local when installed)")
    a = ap.parse_args(argv)
    ok, msg = check(a.html, a.screenshot, a.min_graphs, a.budget_ms, deps=a.deps)
    if ok is None:
        print(f"check_dashboard: {msg}", file=sys.stderr)
        return 2
    print(f"check_dashboard: {'OK' if ok else 'FAIL'}: {msg}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
