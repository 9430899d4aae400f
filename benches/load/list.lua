-- List the first page of 25 contacts (a static request).
dofile(os.getenv("LOAD_LUA_DIR") .. "/common.lua")

wrk.method = "GET"
wrk.path = "/api/v1/contacts?limit=25"
wrk.headers = auth_headers()
