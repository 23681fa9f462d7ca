-- POST one fixed JSON body with a Vault token, checking each 2xx body for a marker.
-- usage: wrk ... -s bench/lua/post.lua URL -- PATH TOKEN BODY [EXPECT]
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "common.lua")

local req

function init(args)
   local path, token, body = args[1], args[2], args[3]
   if args[4] ~= nil and args[4] ~= "" then expect = args[4] end
   req = wrk.format("POST", path, { ["X-Vault-Token"] = token,
                                     ["Content-Type"] = "application/json" }, body)
end

function request()
   return req
end
