-- Soak workload (benches/load/soak.sh), one slice: (100 - SOAK_WRITE_PCT)% GET one random
-- contact of LOAD_IDS_FILE, SOAK_WRITE_PCT% (default 20) POST a new contact.
--
-- Every contact a 201 acknowledges is written, as "<id>\t<title>", to this thread's file
-- SOAK_CREATED_DIR/created.<SOAK_SLICE_NO>.<thread> as soon as the answer arrives (line
-- buffered: a crash of wrk loses nothing already acknowledged). Each POST carries a unique
-- title, "soak <slice>.<thread>.<n>", so that soak.sh can tell which request any record in
-- the store came from.
--
-- Drain: no POST is sent in the last SOAK_DRAIN_SECS (default 2) seconds of the slice
-- (SOAK_SLICE_SECS long); those requests become GETs. wrk drops the requests still in flight
-- when it stops, and a POST whose answer is dropped may still have created its contact,
-- which the data check would then see as unacknowledged. (os.time() has 1 s resolution:
-- the drain lasts between SOAK_DRAIN_SECS and SOAK_DRAIN_SECS + 1 s.)
--
-- Extra counters: reads, writes (POSTs sent, or being sent when wrk stopped), created (201s with an id), unparsed_201 (201s
-- without one), drained (POSTs turned into GETs by the drain).
dofile(os.getenv("LOAD_LUA_DIR") .. "/common.lua")

local ids, get_headers, post_headers, out
local write_pct = tonumber(os.getenv("SOAK_WRITE_PCT") or "20")
local slice_no = tonumber(os.getenv("SOAK_SLICE_NO") or "0")
local post_until
local sent = 0

function init(args)
   seed_random()
   ids = load_ids()
   get_headers = auth_headers()
   post_headers = auth_headers({ ["Content-Type"] = "application/json" })
   local secs = tonumber(os.getenv("SOAK_SLICE_SECS") or "0")
   local drain = tonumber(os.getenv("SOAK_DRAIN_SECS") or "2")
   post_until = (secs > 0 and drain > 0) and (os.time() + secs - drain) or math.huge
   local path = string.format("%s/created.%d.%d", os.getenv("SOAK_CREATED_DIR"), slice_no, tid)
   out = assert(io.open(path, "w"), "cannot open " .. path)
   out:setvbuf("line")
end

local verified = false

function request()
   -- wrk calls request() once on thread 0's state right after init() to check the request
   -- (script_verify_request) and never sends that one: do not count it.
   if tid == 0 and not verified then
      verified = true
      return wrk.format("GET", "/api/v1/contacts/" .. ids[1], get_headers)
   end
   if math.random(100) <= write_pct then
      if os.time() < post_until then
         bump("writes")
         sent = sent + 1
         local body = string.format(
            '{"first_name":"Soak","last_name":"Tester%d","title":"soak %d.%d.%d"}',
            math.random(1, 999999), slice_no, tid, sent)
         return wrk.format("POST", "/api/v1/contacts", post_headers, body)
      end
      bump("drained")
   end
   bump("reads")
   return wrk.format("GET", "/api/v1/contacts/" .. ids[math.random(#ids)], get_headers)
end

function response(status, headers, body)
   count(status)
   if status == 201 then
      local id = body:match('^%s*{%s*"id"%s*:%s*"([^"]+)"') or body:match('"id"%s*:%s*"([^"]+)"')
      if id then
         bump("created")
         local title = body:match('"title"%s*:%s*"([^"]*)"') or ""
         out:write(id, "\t", title, "\n")
      else
         bump("unparsed_201")
      end
   end
end
