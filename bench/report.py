#!/usr/bin/env python3
"""bench/report.py RESULTS.jsonl META.tsv > RESULTS.md

Turns the raw records bench/run collected into the Markdown report: medians
across the interleaved repetitions, ratios, and a pass/fail line per target
of issue #7.

SPDX-License-Identifier: GPL-3.0-or-later
"""
import json
import statistics
import sys

GROWTH_LIMIT_KB = 1024          # "no growth": at most 1 MiB over the run
IDLE_LIMIT_KB = 20 * 1024
STREAMS_LIMIT_KB = 100 * 1024

recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
meta = {}
for line in open(sys.argv[2]):
    k, _, v = line.rstrip("\n").partition("\t")
    meta[k] = v

paths = [p for p in ("direct", "nginx", "libsoup", "gateway", "9router")
         if any(r["path"] == p and r["phase"] == "load" for r in recs)]
concs = sorted({r["c"] for r in recs if r["phase"] == "load"})


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def load(path, c, key):
    out = []
    for r in recs:
        if r["phase"] == "load" and r["path"] == path and r["c"] == c and r.get("wrk"):
            w = r["wrk"]
            if key == "rps":
                out.append(w.get("rps"))
            elif key == "errors":
                out.append(sum(w.get("errors", {}).values()))
            else:
                out.append(w.get("latency_ms", {}).get(key))
    return med(out) if key != "errors" else (sum(v for v in out if v) if out else None)


def stream(path, c, key, sub=None):
    out = []
    for r in recs:
        if r["phase"] == "stream" and r["path"] == path and r["c"] == c:
            s = r.get("stream") or {}
            v = s.get(key) if sub is None else (s.get(key) or {}).get(sub)
            if v is not None and not (isinstance(v, (int, float)) and v < 0 and sub):
                out.append(v)
    if key in ("errors", "streams_ok"):
        return sum(out) if out else None
    return med(out)


# What @p adds over direct (a stream figure), or None.
def added(p, c, key, q):
    v, d = stream(p, c, key, q), stream("direct", c, key, q)
    return None if v is None or d is None else v - d


# What @p added over direct in each repetition (the paths of one repetition
# run one after another, so each is paired with its own direct run).
def added_by_rep(p, c, key, q):
    def by_rep(path):
        return {r.get("rep"): ((r.get("stream") or {}).get(key) or {}).get(q)
                for r in recs
                if r["phase"] == "stream" and r["path"] == path and r["c"] == c}
    mine, direct = by_rep(p), by_rep("direct")
    return [mine[k] - direct[k] for k in sorted(mine, key=lambda k: (k is None, k))
            if k in direct and mine[k] is not None and direct[k] is not None]


def stream_extra(path, c, key):
    return [r.get(key) for r in recs
            if r["phase"] == "stream" and r["path"] == path and r["c"] == c and key in r]


def f(v, fmt="%.3f"):
    return "n/a" if v is None else fmt % v


def ratio(a, b, fmt="%.2fx"):
    return "n/a" if a is None or not b else fmt % (a / b)


def mb(kb):
    return "n/a" if kb in (None, "", "-1") else "%.1f MB" % (int(kb) / 1024)


def ok(b):
    return "n/a" if b is None else ("**PASS**" if b else "**MISS**")


o = []
w = o.append
w("# Codex Pooler benchmark results")
w("")
w("Written by `bench/run` (%s, %s s of wall time). All traffic on 127.0.0.1; "
  "every figure is a median over %s interleaved repetitions unless noted." %
  (meta.get("DATE", "?"), meta.get("WALL_S", "?"), meta.get("REPS", "?")))
w("")
w("## Machine and versions")
w("")
w("| | |")
w("|---|---|")
for k, label in [("CPU", "CPU"), ("NPROC", "cores (nproc)"), ("RAM", "RAM"), ("OS", "OS"),
                 ("KERNEL", "kernel"), ("GCC", "gcc"), ("GLIB", "GLib"), ("LIBSOUP", "libsoup"),
                 ("NGINX", "nginx"), ("WRK", "wrk"), ("NODE", "node"), ("REV", "codex-pooler rev")]:
    w("| %s | %s |" % (label, meta.get(k, "?")))
w("| peer gateway | %s |" % (meta.get("R9") or ("not measured: " + meta.get("R9_REASON", "?"))))
try:
    la = open("/proc/loadavg").read().split()[:3]
    w("| load average at report time | %s (other work on the machine shares the 2 cores) |" % " ".join(la))
except OSError:
    pass
w("| request body | tests/fixtures/codex-request.json (38 KB, the real Codex CLI request) |")
w("| wrk runs | %s s each; the fake answers with responses-full.sse (9 events, one chunk) |" % meta.get("DURATION"))
w("| streams | %s; each connection runs several streams one after another |" % meta.get("STREAM"))
w("")

# --- targets first -----------------------------------------------------------
t = []
d1, n1, g1 = (load(p, 1, "p50") for p in ("direct", "nginx", "gateway"))
if None not in (d1, n1, g1):
    ga, na = g1 - d1, n1 - d1
    t.append(("added latency per request at c=1 within 3x of nginx's",
              "gateway +%.3f ms, nginx +%.3f ms: %s" % (ga, na, ratio(ga, na)),
              ok(ga <= 3 * max(na, 0.0))))
n64, g64, r64 = load("nginx", 64, "rps"), load("gateway", 64, "rps"), load("9router", 64, "rps")
if n64 and g64:
    t.append(("throughput at c=64 >= 0.3x nginx's",
              "%.0f vs %.0f req/s: %s" % (g64, n64, ratio(g64, n64)), ok(g64 / n64 >= 0.3)))
if r64:
    t.append(("throughput at c=64 >= 30x the peer gateway's",
              "%.0f vs %.0f req/s: %s" % (g64, r64, ratio(g64, r64)), ok(g64 / r64 >= 30)))
else:
    t.append(("throughput at c=64 >= 30x the peer gateway's", "9router not measured", "n/a"))
sc = sorted({r["c"] for r in recs if r["phase"] == "stream"})
ev_adds = [(c, added("gateway", c, "event_delay_ms", "p99")) for c in sc]
ev_adds = [(c, a) for c, a in ev_adds if a is not None]
tt_adds = [(c, added("gateway", c, "ttfe_ms", "p50")) for c in sc]
tt_adds = [(c, a) for c, a in tt_adds if a is not None]
t.append(("each SSE event leaves the gateway within 1 ms (p99 delay, gateway - direct)",
          "ms: " + ", ".join("c=%d %+.3f" % ca for ca in ev_adds),
          ok(all(a <= 1.0 for _, a in ev_adds) if ev_adds else None)))
t.append(("time to first event within 1 ms of direct (median, gateway - direct)",
          "ms: " + ", ".join("c=%d %+.3f" % ca for ca in tt_adds),
          ok(all(a <= 1.0 for _, a in tt_adds) if tt_adds else None)))
e256 = stream("gateway", 256, "errors")
ok256 = stream("gateway", 256, "streams_ok")
rows = stream_extra("gateway", 256, "log_rows")
rows_want = stream_extra("gateway", 256, "log_rows_expected")
if e256 is not None:
    kinds = {}
    for r in recs:
        if r["phase"] == "stream" and r["path"] == "gateway" and r["c"] == 256:
            for k, v in ((r.get("stream") or {}).get("io_kinds") or {}).items():
                kinds[k] = kinds.get(k, 0) + v
    kind_txt = (" (io errors: " + ", ".join("%s %d" % (k.replace("_", " "), v) for k, v in kinds.items() if v) + ")") if any(kinds.values()) else ""
    t.append(("256 concurrent streams: no errors, all log rows written",
              "%s streams ok, %s errors%s; log rows %s of %s" % (ok256, e256, kind_txt, sum(rows), sum(rows_want)),
              ok(e256 == 0 and sum(rows) == sum(rows_want))))
idle = meta.get("RSS_IDLE_START_KB")
t.append(("idle RSS of serve < 20 MB", "%s at start (%s idle after the load)" %
          (mb(idle), mb(meta.get("RSS_IDLE_AFTER_LOAD_KB"))),
          ok(int(idle) < IDLE_LIMIT_KB) if idle and idle != "-1" else "n/a"))
peaks = [p for p in stream_extra("gateway", 256, "rss_peak_kb") if p and p > 0]
if peaks:
    how = "VmHWM since start: resetting it failed" if meta.get("HWM_RESET") == "failed" else "VmHWM of the run"
    t.append(("RSS under 256 concurrent streams < 100 MB", "peak %s (%s)" % (mb(max(peaks)), how),
              ok(max(peaks) < STREAMS_LIMIT_KB)))
segs = [s.split(":") for s in meta.get("GROWTH_SEGMENTS", "").split() if ":" in s]
if segs:
    first, last = int(segs[0][1]), int(segs[-1][1])
    t.append(("no RSS growth across %s requests" % meta.get("GROWTH"),
              "%s after %s requests, %s after %s (%+d kB)" % (mb(first), segs[0][0], mb(last), segs[-1][0], last - first),
              ok(last - first <= GROWTH_LIMIT_KB)))

w("## Targets (issue #7)")
w("")
w("| target | measured | |")
w("|---|---|---|")
for name, val, res in t:
    w("| %s | %s | %s |" % (name, val, res))
w("")

# --- load table ----------------------------------------------------------------
w("## Latency and throughput (wrk, POST .../responses, 38 KB body)")
w("")
w("Latency is wrk's per-request time to the end of the streamed answer. "
  "*added* = path p50 - direct p50.")
w("")
w("| c | path | req/s | p50 ms | p99 ms | added p50 ms | errors | vs direct | gateway / this |")
w("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
for c in concs:
    d50, drps = load("direct", c, "p50"), load("direct", c, "rps")
    g_rps = load("gateway", c, "rps")
    for p in paths:
        rps, p50, p99 = load(p, c, "rps"), load(p, c, "p50"), load(p, c, "p99")
        w("| %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            c, p, f(rps, "%.0f"), f(p50), f(p99),
            "" if p == "direct" or p50 is None or d50 is None else "%+.3f" % (p50 - d50),
            load(p, c, "errors"), ratio(rps, drps), "" if p == "gateway" else ratio(g_rps, rps)))
w("")

# --- streaming table -----------------------------------------------------------
w("## Streaming (stream-client: %s)" % meta.get("STREAM"))
w("")
w("*ttfe*: request written -> first whole event read. *event delay*: arrival at the "
  "client - the upstream's send time stamped in the event (same clock), so it is what "
  "the whole path adds to each event; gateway - direct is what the gateway adds.")
w("")
w("| c | path | streams ok | errors | ttfe p50 ms | ttfe p99 ms | event delay p50 ms | event delay p99 ms | max ms | added p99 ms |")
w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
spaths = [p for p in ("direct", "nginx", "nginx2", "gateway", "9router")
          if any(r["phase"] == "stream" and r["path"] == p for r in recs)]
names = {"nginx2": "nginx, 2 workers"}
for c in sc:
    dd = stream("direct", c, "event_delay_ms", "p99")
    for p in spaths:
        ev99 = stream(p, c, "event_delay_ms", "p99")
        w("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            c, names.get(p, p), stream(p, c, "streams_ok"), stream(p, c, "errors"),
            f(stream(p, c, "ttfe_ms", "p50")), f(stream(p, c, "ttfe_ms", "p99")),
            f(stream(p, c, "event_delay_ms", "p50")), f(ev99), f(stream(p, c, "event_delay_ms", "max")),
            "" if p == "direct" or ev99 is None or dd is None else "%+.3f" % (ev99 - dd)))
w("")


if "nginx2" in spaths:
    w("What a proxy gets on this machine, against the streaming targets (within 1 ms of "
      "direct); *nginx, 2 workers* runs for the streams only:")
    w("")
    w("| c | first event p50: nginx | nginx, 2 workers | gateway | event delay p99: nginx | nginx, 2 workers | gateway |")
    w("|---:|---:|---:|---:|---:|---:|---:|")
    sg = lambda v: "n/a" if v is None else "%+.2f" % v
    for c in sc:
        w("| %d | %s | %s | %s | %s | %s | %s |" % (
            c, sg(added("nginx", c, "ttfe_ms", "p50")), sg(added("nginx2", c, "ttfe_ms", "p50")),
            sg(added("gateway", c, "ttfe_ms", "p50")), sg(added("nginx", c, "event_delay_ms", "p99")),
            sg(added("nginx2", c, "event_delay_ms", "p99")), sg(added("gateway", c, "event_delay_ms", "p99"))))
    w("")

reps = [(c, added_by_rep("gateway", c, "ttfe_ms", "p50"), added_by_rep("gateway", c, "event_delay_ms", "p99"),
         added_by_rep("nginx", c, "ttfe_ms", "p50"), added_by_rep("nginx", c, "event_delay_ms", "p99"))
        for c in sc]
if any(len(r[1]) > 1 for r in reps):
    w("How far the streaming figures move between repetitions (each repetition's path - "
      "its own direct run, ms; the targets use the medians above). Where one path's "
      "figures spread over more than a millisecond, a single run's pass or miss is not "
      "the path's:")
    w("")
    w("| c | first event: gateway | nginx | event delay p99: gateway | nginx |")
    w("|---:|---|---|---|---|")
    sl = lambda vs: " / ".join("%+.2f" % v for v in vs) if vs else "n/a"
    for c, gt, ge, nt, ne in reps:
        w("| %d | %s | %s | %s | %s |" % (c, sl(gt), sl(nt), sl(ge), sl(ne)))
    w("")

# Run-queue delay per stream: client, upstream and proxy (bench/run and
# stream-client read /proc/.../schedstat around each run).
def waits(path, c):
    rows = []
    for r in recs:
        if r["phase"] != "stream" or r["path"] != path or r["c"] != c:
            continue
        s = r.get("stream") or {}
        n = (s.get("streams_ok") or 0) + (s.get("errors") or 0)
        client = s.get("run_delay_ms")
        if not n or client is None or client < 0 or "upstream_run_delay_us" not in r:
            continue
        rows.append((client * 1000 / n, r["upstream_run_delay_us"] / n,
                     r["proxy_run_delay_us"] / n if path != "direct" else 0.0))
    if not rows:
        return None
    return tuple(med([row[i] for row in rows]) for i in range(3))


wrows = [(c, p, waits(p, c)) for c in sc for p in spaths]
if any(v is not None for _, _, v in wrows):
    w("Waiting for a CPU: how long each process of a path sat on a run queue, woken but "
      "not yet running, while its streams ran (/proc/PID/task/*/schedstat; us per "
      "stream, all of its events, median of the repetitions). Every event wakes the "
      "processes it passes through in turn; a proxy adds two wake-ups per event, and "
      "where the client, the upstream and the proxy share the cores, each waits for "
      "the others' turns. On a virtual machine the wait also holds the host's wake-up of "
      "an idle virtual CPU, which is why it is large even at c=1:")
    w("")
    w("| c | path | client | upstream | proxy | ttfe p50 ms |")
    w("|---:|---|---:|---:|---:|---:|")
    for c, p, v in wrows:
        if v is None:
            continue
        w("| %d | %s | %.0f | %.0f | %s | %s |" % (
            c, names.get(p, p), v[0], v[1], "" if p == "direct" else "%.0f" % v[2],
            f(stream(p, c, "ttfe_ms", "p50"))))
    w("")

# --- memory --------------------------------------------------------------------
w("## Memory of `codex-pooler serve` (VmRSS / VmHWM from /proc)")
w("")
w("| when | RSS |")
w("|---|---:|")
w("| idle, 3 s after start | %s |" % mb(meta.get("RSS_IDLE_START_KB")))
for c in sc:
    pk = [p for p in stream_extra("gateway", c, "rss_peak_kb") if p and p > 0]
    if pk:
        w("| peak while %d streams ran | %s |" % (c, mb(max(pk))))
w("| VmHWM from start to the end of the streaming phase | %s |" % mb(meta.get("HWM_AFTER_STREAMS_KB")))
w("| idle after the load and streaming phases | %s |" % mb(meta.get("RSS_IDLE_AFTER_LOAD_KB")))
w("| before the growth run | %s |" % mb(meta.get("GROWTH_RSS_BEFORE_KB")))
for n, kb in segs:
    w("| after %s requests (c=64) | %s |" % (n, mb(kb)))
w("| idle at the end | %s |" % mb(meta.get("RSS_IDLE_END_KB")))
w("| VmHWM at the end (whole run) | %s |" % mb(meta.get("HWM_END_KB")))
w("")
w("Request-log rows written (state completed) over the whole run: %s." % meta.get("GW_LOG_ROWS_TOTAL"))
w("")
s1, s64 = load("libsoup", 1, "p50"), load("libsoup", 64, "rps")
if s1 is not None and d1 is not None and n1 is not None:
    w("## The libsoup floor")
    w("")
    w("*libsoup* is a bare libsoup %s server (bench/soup-floor.c) that reads the request "
      "and answers the fixture from memory, chunked, as the gateway answers a stream: no "
      "upstream, no routing, no log. The gateway's hot path (the Codex backend routes "
      "with a good key) is its own HTTP/1.1 server, PoolerHttpConn; every other route is "
      "served by libsoup's, so this row is what the gateway would cost at best had it kept "
      "libsoup's server for everything." % meta.get("LIBSOUP", ""))
    w("")
    w("| | libsoup alone | gateway | nginx |")
    w("|---|---:|---:|---:|")
    w("| added p50 at c=1 (ms) | %+.3f | %s | %+.3f |" % (
        s1 - d1, "%+.3f" % (g1 - d1) if g1 is not None else "n/a", n1 - d1))
    if s64 and n64:
        w("| req/s at c=64 | %.0f (%s nginx) | %s | %.0f |" % (
            s64, ratio(s64, n64), "%.0f" % g64 if g64 else "n/a", n64))
    w("")
    w("The c=1 target allows the gateway %.3f ms (3x nginx's added latency); libsoup's "
      "server alone, answering from memory, adds %.3f ms." % (3 * max(n1 - d1, 0.0), s1 - d1))
    w("")

w("## Notes")
w("")
w("- wrk counts a connection the server closes after a complete response as a *read* error "
  "and reconnects; the request itself is in req/s. nginx and the fake keep connections alive.")
w("- stream-client does not reuse a connection the server has already closed (like a pooling "
  "HTTP client); such reconnects are counted, not errors. An error is a reset or EOF "
  "before the stream ended, a non-200 status, or fewer events than sent.")
w("- nginx runs one worker (the gateway has one I/O main loop); *nginx, 2 workers* is the "
  "same configuration with two, measured in the streaming phase only; the fake upstream, the "
  "clients and the proxy share the machine's cores, so absolute figures are pessimistic "
  "for every path alike; ratios within this run are what the targets use.")
rc = {}
for r in recs:
    if r["phase"] == "stream":
        s_ = r.get("stream") or {}
        k = (r["path"], r["c"])
        rc[k] = rc.get(k, 0) + (s_.get("reconnects") or 0)
gw_rc = ", ".join("c=%d: %d" % (c, rc[("gateway", c)]) for c in sc if rc.get(("gateway", c)))
if gw_rc:
    w("- reconnects the gateway forced on stream-client (closed keep-alive connections): " + gw_rc + ".")
w("")
print("\n".join(o))
