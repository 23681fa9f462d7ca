-- KV v2 writes: each request POSTs {"data":{"value":...}} to PREFIX<n>, n cycling
-- through NKEYS keys (so storage stays bounded; KV v2 also caps versions per key).
-- usage: wrk ... -s bench/lua/write.lua URL -- PREFIX TOKEN NKEYS
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "common.lua")

local prefix, nkeys, n
local headers = {}
local bodies = {}

function init(args)
   prefix = args[1]
   nkeys = tonumber(args[3] or "1000")
   headers["X-Vault-Token"] = args[2]
   headers["Content-Type"] = "application/json"
   expect = nil
   -- Start at a random key; bodies are pre-built so Lua stays cheap.
   math.randomseed(os.time() + math.floor(os.clock() * 1e6))
   n = math.random(0, nkeys - 1)
   local alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
   for i = 1, 16 do
      local chars = {}
      for j = 1, 32 do
         local k = math.random(1, #alphabet)
         chars[j] = string.sub(alphabet, k, k)
      end
      bodies[i] = '{"data":{"value":"' .. table.concat(chars) .. '"}}'
   end
end

function request()
   n = (n + 1) % nkeys
   return wrk.format("POST", prefix .. n, headers, bodies[(n % 16) + 1])
end
