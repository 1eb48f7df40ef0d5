-- A fixed overall rate: each connection waits a random 0.5 to 1.5 times INTERVAL_MS before each request (mean
-- INTERVAL_MS = connections / rate), so that the requests arrive spread out, not in bursts.

function init(args)
  math.randomseed(os.time() + thread_id)
end

function delay()
  return INTERVAL_MS * (0.5 + math.random())
end
