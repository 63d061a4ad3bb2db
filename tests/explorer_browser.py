#!/usr/bin/python3
"""tests/explorer_browser.py - the explorer's pages, read in a real browser.

Drives headless Chromium over its DevTools protocol (python3-websocket)
and reads what the pages show - the DOM after their script ran, never
the data inside them - to compare it with the numbers C computed
(build/explore DIR --expect FILE: tg_tape_print's labels, gradients
retained by the engine, leaves' gradients, ||dL/dh_t||).

  explorer_browser.py check DIR EXPECT     every check below; exit 1 on a failure
  explorer_browser.py shot PAGE STEP OUT   a screenshot of one step (PNG)
  explorer_browser.py measure PAGE         time to first paint, time per step
  explorer_browser.py same PAGE_A PAGE_B   the same page, numbers to 1e-4
                                           (no browser needed)

Run by tests/explorer.sh, which skips where no browser is installed.
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import re
import zlib

CHROMIUM = os.environ.get("CHROMIUM", "chromium")


class Browser:
    """One headless Chromium and its first tab, driven over DevTools."""

    def __init__(self, width=1280, height=800):
        import websocket  # (Debian's python3-websocket; not needed by same)
        self.dir = tempfile.mkdtemp(prefix="explorer_browser.")
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox",
             "--remote-debugging-port=0", "--user-data-dir=" + self.dir,
             "--window-size=%d,%d" % (width, height), "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = os.path.join(self.dir, "DevToolsActivePort")
        for _ in range(300):  # Chromium writes its port there when ready
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.1)
        port = open(port_file).read().split()[0]
        for _ in range(100):
            tabs = json.load(urllib.request.urlopen(
                "http://127.0.0.1:%s/json/list" % port))
            pages = [t for t in tabs if t.get("type") == "page"]
            if pages:
                break
            time.sleep(0.1)
        self.ws = websocket.create_connection(
            pages[0]["webSocketDebuggerUrl"], timeout=60)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method,
                                 "params": params}))
        while True:  # events come in between: skip them
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg["result"]

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError("page script: %s" % r["exceptionDetails"])
        return r["result"].get("value")

    def open(self, url):
        """A fresh load (about:blank first, so that a change of the #step
        fragment alone loads the page again rather than only moving)."""
        self.call("Page.navigate", url="about:blank")
        self.call("Page.navigate", url=url)
        for _ in range(600):
            if self.eval("document.readyState") == "complete":
                return
            time.sleep(0.05)
        raise RuntimeError("page did not load: " + url)

    def key(self, name):
        codes = {"ArrowRight": 39, "ArrowLeft": 37, "Home": 36, "End": 35,
                 "PageUp": 33, "PageDown": 34}
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key=name,
                      code=name, windowsVirtualKeyCode=codes[name])

    def screenshot(self):
        return base64.b64decode(
            self.call("Page.captureScreenshot", format="png")["data"])

    def close(self):
        try:
            self.call("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


# What a step shows, read from the DOM: the phase, entry and op, the
# numbers of every [data-role] block (the text of its .num cells, or of
# its summary), and the time axes' filled cells (data-norm, the number the
# cell's tooltip shows).
READ = r"""(() => {
  const q = s => document.querySelector(s);
  const text = s => (q(s) ? q(s).textContent : null);
  const nums = el => el.querySelector('[data-stat]')
    ? Object.fromEntries([...el.querySelectorAll('[data-stat]')]
        .map(b => [b.dataset.stat, parseFloat(b.textContent)]))
    : [...el.querySelectorAll('.num')].map(x => parseFloat(x.textContent));
  const roles = {};
  document.querySelectorAll('#detail [data-role]').forEach(el => {
    roles[el.dataset.role] = el.classList.contains('none') ? null : nums(el);
  });
  const strips = {};
  document.querySelectorAll('.strip').forEach(s => {
    strips[s.dataset.strip] = [...s.querySelectorAll('.cell')].map(
      c => (c.dataset.norm === undefined ? null : parseFloat(c.dataset.norm)));
  });
  return {where: text('#where'), phase: text('#phase'), entry: text('#entry'),
          op: text('#op'), hash: location.hash, roles, strips,
          nodes: document.querySelectorAll('#svg [data-node]').length};
})()"""

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL " + msg)


def close(a, b, rtol=1e-5):
    """the page shows 6 significant digits"""
    return abs(a - b) <= rtol * abs(b) + 1e-37


def same_numbers(got, want):
    if want is None or got is None:
        return got is None and want is None
    if isinstance(got, dict):  # a summary: compare the norm
        return False
    return len(got) == len(want) and all(close(a, b) for a, b in zip(got, want))


def check_step(page, shown, want):
    where = "%s step %d" % (page, want["step"])
    for k in ("phase", "entry", "op"):
        if shown[k] != want[k]:
            fail("%s: %s is %r, C says %r" % (where, k, shown[k], want[k]))
    for role, nums in want["nums"].items():
        got = shown["roles"].get(role, "missing")
        if got == "missing" or not same_numbers(got, nums):
            fail("%s: %s shows %s, C says %s" % (where, role, got, nums))
    if shown["hash"] != "#step=%d" % want["step"]:
        fail("%s: the address shows %s" % (where, shown["hash"]))


def png_pixels(png):
    """(width, height, rows of RGB(A) bytes) of an 8-bit PNG"""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(png):
        n = int.from_bytes(png[pos:pos + 4], "big")
        kind, body = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big")
            depth, ctype = body[8], body[9]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    assert depth == 8 and ctype in (2, 6), "PNG type %d/%d" % (depth, ctype)
    bpp = 3 if ctype == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), w * bpp, [], bytearray(w * bpp)
    for y in range(h):  # undo the per-row filters
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def not_blank(png):
    """share of pixels unlike the most common one, and how many colours"""
    w, h, bpp, rows = png_pixels(png)
    count = {}
    for r in rows[::4]:
        for x in range(0, w * bpp, 4 * bpp):
            px = r[x:x + 3]
            count[px] = count.get(px, 0) + 1
    total = sum(count.values())
    return 1 - max(count.values()) / total, len(count)


def check(dirname, expect_file):
    expect = json.load(open(expect_file))
    b = Browser()
    try:
        for page in expect:
            url = "file://" + os.path.abspath(os.path.join(dirname, page["file"]))
            steps = sorted(page["steps"], key=lambda s: s["step"])
            if len(steps) <= 80:
                # every step, by the keyboard from step 0
                b.open(url)
                b.key("Home")
                at = 0
                for want in steps:
                    while at < want["step"]:
                        b.key("ArrowRight")
                        at += 1
                    check_step(page["file"], b.eval(READ), want)
                print("ok  %s: %d steps by the right arrow" % (page["file"], at))
            # some steps opened by their address
            pick = steps[::max(1, len(steps) // 12)] + steps[-1:]
            for want in pick:
                b.open(url + "#step=%d" % want["step"])
                check_step(page["file"], b.eval(READ), want)
            print("ok  %s: %d steps opened by #step=N" % (page["file"], len(pick)))
            # Home, End, left arrow
            last = int(b.eval("document.getElementById('slider').max"))
            b.key("End")
            shown = b.eval(READ)
            if shown["hash"] != "#step=%d" % last:
                fail("%s: End went to %s, not step %d" % (page["file"], shown["hash"], last))
            b.key("ArrowLeft")
            if b.eval("location.hash") != "#step=%d" % (last - 1):
                fail("%s: the left arrow from End went to %s" % (page["file"], b.eval("location.hash")))
            b.key("End")
            # the time axes at the end of the sweep: C's norms, all filled
            before = len(failures)
            for name, norms in page["strips"].items():
                got = shown["strips"].get(name)
                if got is None or len(got) != len(norms) or \
                        not all(g is not None and close(g, n) for g, n in zip(got, norms)):
                    fail("%s: strip %s shows %s, C says %s" % (page["file"], name, got, norms))
            if page["strips"] and len(failures) == before:
                print("ok  %s: time axes %s equal C's ||dL/dh_t||" % (page["file"], ", ".join(page["strips"])))
            b.key("Home")
            if any(c is not None for s in b.eval(READ)["strips"].values() for c in s):
                fail("%s: cells filled before the reverse sweep" % page["file"])

        # a fused group is one node that opens to its member ops
        b.open("file://" + os.path.abspath(os.path.join(dirname, "lstm_compiled.html")))
        opened = b.eval(r"""(() => {
          const g = document.querySelector('#svg .node.fused');
          if (!g) return null;
          const title = g.querySelector('title').textContent;
          g.dispatchEvent(new MouseEvent('click', {bubbles: true}));
          const again = [...document.querySelectorAll('#svg .node.fused')]
            .find(n => n.querySelector('title').textContent === title);
          return {title, texts: [...again.querySelectorAll('text')].map(t => t.textContent)};
        })()""")
        members = opened and opened["title"].split("fused[")[-1].split("]")[0].split()
        if not opened or not members or opened["texts"][1:] != members:
            fail("lstm_compiled.html: a fused node did not open to its members: %s" % opened)
        else:
            print("ok  lstm_compiled.html: a fused node opens to its %d member ops" % len(members))

        # the lesson of rnn_vs_lstm: the RNN's gradient vanishes, the
        # LSTM's survives - as the page shows it, and as C says
        rv = [p for p in expect if p["file"] == "rnn_vs_lstm.html"][0]
        b.open("file://" + os.path.abspath(os.path.join(dirname, rv["file"])))
        b.key("End")
        s = b.eval(READ)["strips"]
        rnn, lstm = s["RNN h_t"], s["LSTM h_t"]
        c_rnn, c_lstm = rv["strips"]["RNN h_t"], rv["strips"]["LSTM h_t"]
        page_ratio = (rnn[0] / rnn[-1], lstm[0] / lstm[-1])
        c_ratio = (c_rnn[0] / c_rnn[-1], c_lstm[0] / c_lstm[-1])
        print("    ||dL/dh_1|| / ||dL/dh_50||: page RNN %.3g LSTM %.3g, C RNN %.3g LSTM %.3g"
              % (page_ratio + c_ratio))
        if not (page_ratio[0] < 1e-20 < 1e-10 < page_ratio[1]) or \
                not all(close(p, c, 1e-4) for p, c in zip(page_ratio, c_ratio)):
            fail("rnn_vs_lstm: the strips do not show the RNN's gradient vanishing where the LSTM's survives")
        else:
            print("ok  rnn_vs_lstm.html: the RNN's strip fades (1e-20 or less), the LSTM's does not")

        # a screenshot of one step is not blank
        b.open("file://" + os.path.abspath(os.path.join(dirname, "expr.html")) + "#step=4")
        share, colours = not_blank(b.screenshot())
        if share < 0.02 or colours < 10:
            fail("screenshot of expr.html#step=4 looks blank: %.1f%% of pixels differ "
                 "from the background, %d colours" % (100 * share, colours))
        else:
            print("ok  screenshot of expr.html#step=4: %.0f%% of pixels drawn, %d colours"
                  % (100 * share, colours))
    finally:
        b.close()
    if failures:
        print("explorer_browser: %d failure(s)" % len(failures))
        return 1
    print("explorer_browser: all checks passed")
    return 0


def shot(page, step, out):
    b = Browser()
    try:
        b.open("file://" + os.path.abspath(page) + "#step=" + step)
        open(out, "wb").write(b.screenshot())
    finally:
        b.close()
    return 0


def measure(page):
    b = Browser()
    try:
        t0 = time.time()
        b.open("file://" + os.path.abspath(page))
        loaded = time.time() - t0
        fcp = b.eval("(performance.getEntriesByName('first-contentful-paint')[0]"
                     " || {startTime: -1}).startTime")
        n = int(b.eval("document.getElementById('slider').max")) + 1
        b.key("End")
        t0 = time.time()
        for _ in range(50):
            b.key("ArrowLeft")
        per_step = (time.time() - t0) / 50
        # the page's own work per step: go() and a layout
        in_page = b.eval("(() => { const t = performance.now();"
                         " for (let i = 0; i < 50; i++) { go(cur - 1);"
                         " document.body.offsetHeight; }"
                         " return (performance.now() - t) / 50; })()")
        shown = b.eval(READ)
        print("%s: %d bytes, %d steps, first paint %.0f ms, loaded in %.2f s, "
              "%.1f ms per step (key to key; %.1f ms of it the page's own "
              "work), %d graph nodes drawn"
              % (page, os.path.getsize(page), n, fcp, loaded, 1000 * per_step,
                 in_page, shown["nodes"]))
    finally:
        b.close()
    return 0


def same(page_a, page_b):
    """Two pages that differ at most in the last digits of their numbers
    (another CPU's kernels may round differently): the same page text
    around the data, and the same data to a relative 1e-4."""
    parts = []
    for p in (page_a, page_b):
        text = open(p).read()
        m = re.search(r'(<script id="tape" type="application/json">)(.*?)(</script>)',
                      text, re.S)
        parts.append((text[:m.start(2)], json.loads(m.group(2)), text[m.end(2):]))

    def num(x):
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    def near(a, b, path, scale=0.0):
        if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
            return all(near(a[k], b[k], path + "." + k) for k in a)
        if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            # a tensor's numbers: relative to the tensor's largest, since
            # an element that cancels (a sum of terms of both signs) keeps
            # fewer correct digits than the tensor
            if all(num(x) for x in a + b):
                scale = max([abs(x) for x in a + b] + [0.0])
            return all(near(x, y, "%s[%d]" % (path, i), scale)
                       for i, (x, y) in enumerate(zip(a, b)))
        if num(a) and num(b):
            if "heat" in path:  # colours, in hundredths
                ok = abs(a - b) <= 1
            else:
                ok = abs(a - b) <= 1e-4 * max(abs(a), abs(b), scale) + 1e-30
        else:
            ok = a == b
        if not ok:
            print("%s differs at %s: %r and %r" % (page_b, path, a, b))
        return ok

    (ha, da, ta), (hb, db, tb) = parts
    if ha != hb or ta != tb:
        print("%s: the page around the data differs from %s" % (page_b, page_a))
        return 1
    return 0 if near(da, db, "data") else 1


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "check" and len(sys.argv) == 4:
        sys.exit(check(sys.argv[2], sys.argv[3]))
    if cmd == "shot" and len(sys.argv) == 5:
        sys.exit(shot(*sys.argv[2:]))
    if cmd == "same" and len(sys.argv) == 4:
        sys.exit(same(sys.argv[2], sys.argv[3]))
    if cmd == "measure" and len(sys.argv) == 3:
        sys.exit(measure(sys.argv[2]))
    print(__doc__)
    sys.exit(2)
