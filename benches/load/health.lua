-- GET /api/v1/health (no authentication, no storage): the latency probe run beside the
-- heaviest mixed workload.
dofile(os.getenv("LOAD_LUA_DIR") .. "/common.lua")

wrk.method = "GET"
wrk.path = os.getenv("LOAD_HEALTH_PATH") or "/api/v1/health"

-- A light probe: each connection pauses LOAD_HEALTH_DELAY_MS between requests (the pause is
-- not part of the measured latency).
local pause = tonumber(os.getenv("LOAD_HEALTH_DELAY_MS") or "10")

function delay()
   return pause
end
