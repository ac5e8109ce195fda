-- Shared by the gateway's wrk scripts (send.lua, inbound.lua): a monotonic
-- clock, per-thread counters, the stop-after-N-responses rule and the
-- report load.py reads. A script loads it with dofile, sets `ok_status`
-- (the answer that counts as accepted) and calls count_init(args) from
-- its init; wrk loads the script, and so this file, in every thread.

local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } gw_timespec_t;
int clock_gettime(int clk_id, gw_timespec_t *tp);
]]
local ts = ffi.new("gw_timespec_t")
function now()
   ffi.C.clock_gettime(1, ts)
   return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local threads = {}
local counter = 1

function setup(thread)
   thread:set("tid", counter)
   table.insert(threads, thread)
   counter = counter + 1
end

-- args[1]: responses after which the thread stops; args[2]: the done-file
-- prefix (the thread creates DONE_FILE<thread id> when it stops).
function count_init(args)
   limit = tonumber(args[1] or "0") or 0
   done_file = args[2]
   issued, responses, accepted, other = 0, 0, 0, 0
   t_first, t_last = 0, 0
end

-- Call at the start of request().
function count_request()
   issued = issued + 1
   if issued == 1 then t_first = now() end
end

function response(status, hdrs, body)
   responses = responses + 1
   t_last = now()
   if status == ok_status then accepted = accepted + 1 else other = other + 1 end
   if limit > 0 and responses == limit then
      local f = io.open(done_file .. tid, "w")
      if f then f:close() end
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local iss, resp, acc, oth, first, last = 0, 0, 0, 0, nil, 0
   for _, t in ipairs(threads) do
      iss = iss + t:get("issued")
      resp = resp + t:get("responses")
      acc = acc + t:get("accepted")
      oth = oth + t:get("other")
      local f, l = t:get("t_first"), t:get("t_last")
      if f > 0 and (first == nil or f < first) then first = f end
      if l > last then last = l end
   end
   local e = summary.errors
   io.write(string.format("WRK issued=%d responses=%d accepted=%d other=%d window_s=%.6f\n",
      iss, resp, acc, oth, (first and (last - first) or 0)))
   io.write(string.format("WRK errors=%d p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d\n",
      e.connect + e.read + e.write + e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max))
end
