-- wrk script: GET /payment/find_user/N, a linearizable read, for N cycling
-- over the 100,000 users the benchmarks' batch_init creates. Sent to a
-- follower it shows how reads share read index rounds: compare
-- raftcart_read_index_total{what="reads"} and {what="requested"} on its
-- /metrics before and after.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
require "wrk_common"

function request()
    return wrk.format("GET", "/payment/find_user/" .. (next_number() % 100000))
end
