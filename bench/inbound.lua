-- wrk script: bounded-count inbound load on POST /webhooks/generic (MO path).
-- Usage (load.py does this):
--   wrk -t1 -cC -dMAXs --timeout 10s -s inbound.lua URL -- MAX_RESPONSES DONE_FILE REQUESTS_FILE
-- REQUESTS_FILE holds one prepared request per line: "<X-Gateway-Signature>\t<JSON body>",
-- signed by load.py just before the phase (every request is a distinct carrier message).
-- Each thread stops after MAX_RESPONSES responses and creates DONE_FILE<thread id>.

dofile((string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./") .. "counting.lua")
ok_status = 200

function init(args)
   count_init(args)
   prepared = {}
   for line in io.lines(args[3]) do
      local tab = string.find(line, "\t", 1, true)
      if tab then
         table.insert(prepared, { string.sub(line, 1, tab - 1), string.sub(line, tab + 1) })
      end
   end
end

function request()
   count_request()
   local p = prepared[((issued - 1) % #prepared) + 1]
   local headers = { ["Content-Type"] = "application/json", ["X-Gateway-Signature"] = p[1] }
   return wrk.format("POST", "/webhooks/generic", headers, p[2])
end
