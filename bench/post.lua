-- post.lua: wrk script for the bench: POST the real Codex CLI request body
-- (tests/fixtures/codex-request.json, 38 KB) with a bearer token, and print
-- a one-line JSON summary at the end.
--   BENCH_BODY   file with the request body (required)
--   BENCH_KEY    bearer token (optional; no Authorization header when empty)
--   BENCH_LABEL  free text copied into the summary
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "text/event-stream"
local key = os.getenv("BENCH_KEY") or ""
if key ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. key
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"label":"%s","requests":%d,"duration_s":%.3f,"rps":%.1f,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_ms":{"mean":%.4f,"p50":%.4f,"p90":%.4f,"p99":%.4f,"max":%.4f}}\n',
    os.getenv("BENCH_LABEL") or "", summary.requests, summary.duration / 1e6,
    summary.requests / (summary.duration / 1e6),
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean / 1000, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
