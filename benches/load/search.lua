-- Search contacts by a word prefix: GET /api/v1/contacts?q=<prefix>&limit=25, the prefix
-- picked at random among LOAD_SEARCH_PREFIXES (space separated, URL-safe).
dofile(os.getenv("LOAD_LUA_DIR") .. "/common.lua")

local prefixes, headers = {}, nil

function init(args)
   seed_random()
   for p in (os.getenv("LOAD_SEARCH_PREFIXES") or "joh"):gmatch("%S+") do
      table.insert(prefixes, p)
   end
   headers = auth_headers()
end

function request()
   return wrk.format("GET",
      "/api/v1/contacts?q=" .. prefixes[math.random(#prefixes)] .. "&limit=25", headers)
end
