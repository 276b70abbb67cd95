-- wrk script of tools/bench (bench_mypos/wrk.py runs `wrk -s wrk.lua URL -- MODE BODIES_FILE`).
-- One wrk thread per run; each connection sends its next request when the previous answer
-- arrives (Odoo answers HTTP/1.0 and closes, wrk reconnects). `response()` counts every answer
-- that is not the expected one; the webhook's bodies are consumed once each, and the run stops
-- by itself when they are exhausted. `done()` prints one WRK_JSON line that wrk.py parses.

bad = 0
spare = 0
bodies = {}
nbodies = 0
sent = 0
local mode, source = nil, nil

function init(args)
  mode, source = args[1], args[2]
  if mode == "webhook" or mode == "demo" then
    for line in io.lines(source) do
      nbodies = nbodies + 1
      bodies[nbodies] = line
    end
  end
end

function request()
  if mode == "floor" then
    return wrk.format("POST", "/web/webclient/version_info",
      {["Content-Type"] = "application/json"}, '{"jsonrpc": "2.0", "method": "call", "params": {}}')
  end
  if mode ~= "webhook" and mode ~= "demo" then
    return wrk.format("GET", "/web/health")
  end
  sent = sent + 1
  if sent > nbodies then
    -- Exhausted: no more distinct notifications. Should not happen with enough bodies.
    spare = spare + 1
    wrk.thread:stop()
    return wrk.format("GET", "/web/health")
  end
  if mode == "demo" then
    return wrk.format("POST", "/payment/demo/simulate_payment",
      {["Content-Type"] = "application/json"}, bodies[sent])
  end
  return wrk.format("POST", "/payment/mypos/webhook",
    {["Content-Type"] = "application/x-www-form-urlencoded"}, bodies[sent])
end

function response(status, headers, body)
  if mode == "webhook" then
    if status ~= 200 or body ~= "OK" then bad = bad + 1 end
    if sent >= nbodies then wrk.thread:stop() end
  elseif mode == "demo" then
    if status ~= 200 or string.find(body, '"error"', 1, true) then bad = bad + 1 end
    if sent >= nbodies then wrk.thread:stop() end
  elseif mode == "floor" then
    if status ~= 200 or not string.find(body, "server_version", 1, true) then bad = bad + 1 end
  elseif status ~= 200 or not string.find(body, "pass", 1, true) then
    bad = bad + 1
  end
end

local threads = {}
function setup(thread) table.insert(threads, thread) end

function done(summary, latency, requests)
  local nbad, nspare, nsent = 0, 0, 0
  for _, t in ipairs(threads) do
    nbad = nbad + t:get("bad"); nspare = nspare + t:get("spare"); nsent = nsent + t:get("sent")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bad": %d, "spare": %d, "sent": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %f}\n',
    summary.requests, summary.duration, nbad, nspare, nsent, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
