-- wrk script: bounded-count POST /v1/messages load on the gateway (MT path).
-- Usage (load.py does this):
--   wrk -t1 -cC -dMAXs --timeout 10s -s send.lua URL -- MAX_RESPONSES DONE_FILE TOKEN
-- Each thread stops after MAX_RESPONSES responses and creates DONE_FILE<thread id>;
-- load.py then interrupts wrk, which prints the report below.
-- Every request is a distinct message (distinct recipient and text).

dofile((string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./") .. "counting.lua")
ok_status = 202

function init(args)
   count_init(args)
   token = args[3]
   headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }
end

function request()
   count_request()
   -- distinct recipients for the first 7 million requests (as the Kannel bench does)
   local to = string.format("+1415%03d%04d", 200 + math.floor(issued / 10000) % 700, issued % 10000)
   local body = string.format('{"to":"%s","text":"bench message %d from thread %d"}', to, issued, tid)
   return wrk.format("POST", "/v1/messages", headers, body)
end
