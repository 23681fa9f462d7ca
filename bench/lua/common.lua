-- Shared by read.lua and write.lua: error accounting and a machine-readable summary.
-- Every wrk thread has its own Lua state; done() reads the counters through thread:get().

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

bad_status = 0     -- responses outside 2xx
bad_body = 0       -- 2xx responses whose body lacks the expected marker
first_error = ""   -- first failing response, "STATUS <code>\n<body>"
expect = nil       -- substring every good body must contain (nil: status only)

local function note_error(status, body)
   if first_error == "" then
      first_error = "STATUS " .. status .. "\n" .. string.sub(body or "", 1, 2000)
   end
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      bad_status = bad_status + 1
      note_error(status, body)
   elseif expect ~= nil and not string.find(body, expect, 1, true) then
      bad_body = bad_body + 1
      note_error(status, body)
   end
end

function done(summary, latency, requests)
   local bs, bb, first = 0, 0, ""
   for _, t in ipairs(threads) do
      bs = bs + t:get("bad_status")
      bb = bb + t:get("bad_body")
      local fe = t:get("first_error")
      if first == "" and fe ~= nil then first = fe end
   end
   local e = summary.errors
   io.write("BENCH requests ", summary.requests, "\n")
   io.write("BENCH duration_us ", summary.duration, "\n")
   io.write("BENCH bytes ", summary.bytes, "\n")
   io.write("BENCH err_connect ", e.connect, "\n")
   io.write("BENCH err_read ", e.read, "\n")
   io.write("BENCH err_write ", e.write, "\n")
   io.write("BENCH err_timeout ", e.timeout, "\n")
   io.write("BENCH err_status_wrk ", e.status, "\n")
   io.write("BENCH bad_status ", bs, "\n")
   io.write("BENCH bad_body ", bb, "\n")
   io.write("BENCH lat_mean_us ", latency.mean, "\n")
   io.write("BENCH lat_max_us ", latency.max, "\n")
   for _, p in ipairs({50, 90, 99, 99.9}) do
      io.write("BENCH lat_p", p, "_us ", latency:percentile(p), "\n")
   end
   if first ~= "" then
      io.write("BENCH_FIRST_ERROR_BEGIN\n", first, "\nBENCH_FIRST_ERROR_END\n")
   end
end
