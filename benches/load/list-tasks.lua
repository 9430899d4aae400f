-- List the first page of 100 tasks (a static request; the admin sees every user's tasks).
dofile(os.getenv("LOAD_LUA_DIR") .. "/common.lua")

wrk.method = "GET"
wrk.path = "/api/v1/tasks?limit=100"
wrk.headers = auth_headers()
