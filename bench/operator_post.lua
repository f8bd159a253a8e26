-- wrk script: POST to one operator route with the admin token, for
-- bench/compare.py --ceiling. Arguments after `--`: threads, path, token.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
require "wrk_common"

local base_init = init
function init(args)
    base_init(args)
    path = args[2]
    headers = { ["Authorization"] = "Bearer " .. args[3] }
end

function request()
    return wrk.format("POST", path, headers)
end
