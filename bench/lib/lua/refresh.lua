-- POST /auth/refresh spends the refresh token it is sent and answers with the session's next one, so every
-- request must carry a token nobody has spent. Each thread keeps a pool of live tokens, one per session: it
-- starts with its share of TOKENS_FILE (line number modulo THREADS), a request takes a token from the pool,
-- and a 200 puts the successor back. A connection has one request in flight at most, so with at least as many
-- sessions as connections the pool never runs dry. Any other status loses that session: it is counted, and a
-- pool run dry sends an empty token, answered 400 and counted too.

local pool = {}

function init(args)
  local line_number = 0
  for token in io.lines(TOKENS_FILE) do
    if line_number % THREADS == thread_id then
      table.insert(pool, token)
    end
    line_number = line_number + 1
  end
end

function request()
  local token = table.remove(pool) or ""
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, '{"refresh_token":"' .. token .. '"}')
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 200 then
    local token = body:match('"refresh_token":"([%w_%-]+)"')
    if token then
      table.insert(pool, token)
    end
  end
end
