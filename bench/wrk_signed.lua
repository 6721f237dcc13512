-- wrk script for bench/run.py: replays pre-signed POS requests, each exactly once.
--
-- wrk has no HMAC, so bench/loadgen.py signs the requests beforehand (fresh timestamps, a new
-- nonce each) and writes them one per line: METHOD \t PATH \t BODY \t Name: value \t ...
-- Thread n of N sends lines n, n+N, n+2N...; a thread that runs out starts again from its
-- first line, and the server then refuses the repeats as replays (401), so the caller gives
-- enough lines for the run and counts only 2xx answers (wrk counts the others).
--
--   wrk -t2 -c6 -d6s -s bench/wrk_signed.lua http://127.0.0.1:PORT -- requests.tsv

local threads = {}
local counter = 0

function setup(thread)
  thread:set("index", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local function split(line)
  local fields = {}
  for field in string.gmatch(line, "([^\t]*)\t?") do
    table.insert(fields, field)
  end
  return fields
end

function init(args)
  requests = {}
  local n = 0
  for line in io.lines(args[1]) do
    if n % tonumber(args[2]) == index then
      local f = split(line)
      local headers = {}
      for i = 4, #f do
        local name, value = string.match(f[i], "^([^:]+): (.*)$")
        if name then headers[name] = value end
      end
      table.insert(requests, wrk.format(f[1], f[2], headers, f[3]))
    end
    n = n + 1
  end
  position = 0
end

function request()
  position = position % #requests + 1
  return requests[position]
end

function done(summary, latency, requests)
  -- No response() callback (it would cost the generator CPU on every answer): wrk counts
  -- answers that are not 2xx/3xx itself, and the POS answers nothing in 3xx.
  local other = summary.errors.status
  io.write(string.format("wrk: ok %d other %d\n", summary.requests - other, other))
  io.write(string.format("wrk: requests %d, errors connect %d read %d write %d status %d timeout %d\n",
    summary.requests, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout))
  io.write(string.format("wrk: duration_us %d p50_us %d p99_us %d\n", summary.duration,
    latency:percentile(50), latency:percentile(99)))
end
