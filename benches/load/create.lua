-- Create a contact: POST /api/v1/contacts with a random name (201 expected).
dofile(os.getenv("LOAD_LUA_DIR") .. "/common.lua")

local headers

function init(args)
   seed_random()
   headers = auth_headers({ ["Content-Type"] = "application/json" })
end

function request()
   return wrk.format("POST", "/api/v1/contacts", headers, create_body())
end
