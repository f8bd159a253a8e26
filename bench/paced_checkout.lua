-- wrk script: the course's stress pattern from a C client. Each connection
-- checks out a random order "0".."99999" about once a second (0.9-1.1 s
-- apart), so `-c 1000` is 1000 users at 1 request/s each, like Locust's
-- StressUser, without Locust's own CPU cost on a shared machine:
--
--   wrk -t2 -c1000 -d20s -s bench/paced_checkout.lua http://127.0.0.1:8000 -- 2
--
-- All connections send their first request at once, so the first second
-- is a burst of -c requests; it dominates p99 of a short run.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
require "wrk_common"

function request()
    return wrk.format("POST", "/orders/checkout/" .. math.random(0, 99999))
end

function delay()
    return math.random(900, 1100)
end
