-- wrk script of tools/bench: `wrk -s wrk.lua URL -- MODE [BODIES_FILE OFFSET]`.
-- MODE health: GET /web/health. MODE webhook: POST each signed notification of BODIES_FILE,
-- from line OFFSET + 1 on, once; the run stops by itself when they are exhausted.
-- Odoo answers HTTP/1.0 and closes: wrk reconnects for every request. `done()` prints one
-- WRK_JSON line for tools/bench_mypos/server.py.

bad, sent, nbodies, exhausted = 0, 0, 0, false
local mode, bodies = nil, {}

function init(args)
  mode = args[1]
  if mode == "webhook" then
    local offset = tonumber(args[3])
    local index = 0
    for line in io.lines(args[2]) do
      index = index + 1
      if index > offset then
        nbodies = nbodies + 1
        bodies[nbodies] = line
      end
    end
  end
end

function request()
  if mode ~= "webhook" then
    return wrk.format("GET", "/web/health")
  end
  sent = sent + 1
  if sent > nbodies then
    wrk.thread:stop()
    sent, exhausted = nbodies, true
    return wrk.format("GET", "/web/health")
  end
  return wrk.format("POST", "/payment/mypos/webhook",
    {["Content-Type"] = "application/x-www-form-urlencoded"}, bodies[sent])
end

function response(status, headers, body)
  if exhausted then return end
  if mode == "webhook" then
    if status ~= 200 or body ~= "OK" then bad = bad + 1 end
    if sent >= nbodies then wrk.thread:stop() end
  elseif status ~= 200 or not string.find(body, "pass", 1, true) then
    bad = bad + 1
  end
end

local threads = {}
function setup(thread) table.insert(threads, thread) end

function done(summary, latency, requests)
  local nbad, nsent, nbodies_left = 0, 0, 0
  for _, t in ipairs(threads) do
    nbad = nbad + t:get("bad"); nsent = nsent + t:get("sent")
    nbodies_left = nbodies_left + t:get("nbodies") - t:get("sent")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bad": %d, "sent": %d, "left": %d, ' ..
    '"errors": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, nbad, nsent, nbodies_left,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
