-- Log in: POST /api/v1/auth/login with LOAD_LOGIN_BODY (the JSON {"email","password"}).
-- bcrypt-bound: run it at low concurrency.
dofile(os.getenv("LOAD_LUA_DIR") .. "/common.lua")

wrk.method = "POST"
wrk.path = "/api/v1/auth/login"
wrk.headers = { ["Content-Type"] = "application/json",
                ["Accept-Encoding"] = os.getenv("LOAD_ACCEPT_ENCODING") or "gzip" }
wrk.body = os.getenv("LOAD_LOGIN_BODY")
