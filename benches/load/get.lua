-- GET one contact, a random one among LOAD_IDS_FILE's ids.
dofile(os.getenv("LOAD_LUA_DIR") .. "/common.lua")

local ids, headers

function init(args)
   seed_random()
   ids = load_ids()
   headers = auth_headers()
end

function request()
   return wrk.format("GET", "/api/v1/contacts/" .. ids[math.random(#ids)], headers)
end
