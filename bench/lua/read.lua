-- GET one fixed path with a Vault token, checking each 2xx body for a marker.
-- usage: wrk ... -s bench/lua/read.lua URL -- PATH TOKEN [EXPECT]
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "common.lua")

local req

function init(args)
   local path, token = args[1], args[2]
   if args[3] ~= nil and args[3] ~= "" then expect = args[3] end
   req = wrk.format("GET", path, { ["X-Vault-Token"] = token })
end

function request()
   return req
end
