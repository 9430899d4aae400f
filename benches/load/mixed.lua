-- Mixed workload: (100 - LOAD_MIXED_WRITE_PCT)% GET one random contact, LOAD_MIXED_WRITE_PCT%
-- (default 20) POST a new contact. Counts them as extra.reads / extra.writes.
dofile(os.getenv("LOAD_LUA_DIR") .. "/common.lua")

local ids, get_headers, post_headers
local write_pct = tonumber(os.getenv("LOAD_MIXED_WRITE_PCT") or "20")

function init(args)
   seed_random()
   ids = load_ids()
   get_headers = auth_headers()
   post_headers = auth_headers({ ["Content-Type"] = "application/json" })
end

function request()
   if math.random(100) <= write_pct then
      bump("writes")
      return wrk.format("POST", "/api/v1/contacts", post_headers, create_body())
   end
   bump("reads")
   return wrk.format("GET", "/api/v1/contacts/" .. ids[math.random(#ids)], get_headers)
end
