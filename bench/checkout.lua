-- wrk script: POST /orders/checkout/N for a distinct N per request across
-- all connections, so every request is a real checkout of an unpaid order.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
require "wrk_common"

function request()
    return wrk.format("POST", "/orders/checkout/" .. next_number())
end
