-- A different access token on every request: thread t sends the tokens of TOKENS_FILE whose line number is t
-- modulo THREADS, in order and in a cycle, starting after START[t + 1] (where the previous run stopped). With
-- more tokens than the server's verified-token cache holds, a token comes back only after the cache forgot it.

local requests = {}

function init(args)
  local line_number = 0
  for token in io.lines(TOKENS_FILE) do
    if line_number % THREADS == thread_id then
      table.insert(requests, wrk.format("GET", nil, { Authorization = "Bearer " .. token }))
    end
    line_number = line_number + 1
  end
  position = (START[thread_id + 1] or 0) % #requests
end

function request()
  position = position % #requests + 1
  return requests[position]
end
