-- Loaded first into every wrk run of the bench (after the constants that bench/lib/wrk.ts writes above it).
-- Numbers the threads, and when wrk is done, prints one line for wrk.ts: "@@bench " and a JSON object.
-- Latencies are in microseconds, from wrk's own record of every response.

local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

-- Scripts with a response() function count the statuses in this table of their thread.
statuses = {}
-- Scripts that walk a list set this in their thread, so that the next run continues where this one stopped.
position = 0

function done(summary, latency, requests)
  local counts, positions = {}, {}
  for i, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses") or {}) do
      counts[status] = (counts[status] or 0) + n
    end
    positions[i] = thread:get("position") or 0
  end
  local parts = {}
  for status, n in pairs(counts) do
    table.insert(parts, string.format('"%d":%d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    '@@bench {"requests":%d,"durationUs":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"statuses":{%s},"positions":[%s]}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout,
    table.concat(parts, ","), table.concat(positions, ",")))
end
