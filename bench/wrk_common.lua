-- Shared by the wrk scripts (loaded with require): a distinct number for
-- every request across threads (`next_number()`), non-2xx counting, and
-- one machine-readable RESULT line with requests/s, p50/p99/p99.9 (ms) and
-- the non-2xx count (errors included). Pass the thread count after `--`.
local counter = 0
local threads = {}

function setup(thread)
    thread:set("id", counter)
    counter = counter + 1
    table.insert(threads, thread)
end

function init(args)
    next_id = id
    stride = tonumber(args[1]) or 1
    bad = 0
end

function next_number()
    local n = next_id
    next_id = next_id + stride
    return n
end

function response(status, headers, body)
    if status < 200 or status > 299 then
        bad = bad + 1
    end
end

function done(summary, latency, requests)
    local bad_total = 0
    for _, t in ipairs(threads) do
        bad_total = bad_total + t:get("bad")
    end
    bad_total = bad_total + summary.errors.connect + summary.errors.read
        + summary.errors.write + summary.errors.timeout
    io.write(string.format("RESULT rps=%.1f p50=%.2f p99=%.2f p999=%.2f non2xx=%d requests=%d\n",
        summary.requests / (summary.duration / 1e6),
        latency:percentile(50) / 1000, latency:percentile(99) / 1000,
        latency:percentile(99.9) / 1000, bad_total, summary.requests))
end
