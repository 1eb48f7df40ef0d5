-- Counts every response by status, so that the report can say which statuses failed (a static request).

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
