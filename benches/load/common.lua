-- Shared by every wrk script of the load test (benches/load/run.sh); loaded with
--   dofile(os.getenv("LOAD_LUA_DIR") .. "/common.lua")
--
-- Defines wrk's setup() and done(), a default response() that counts statuses, and helpers.
-- done() prints one machine-readable line that run.sh parses:
--   @@RESULT requests=N duration_us=N rps=X p50_ms=X p95_ms=X p99_ms=X max_ms=X
--            s2xx=N non2xx=N statuses=200:N,412:N connect=N read=N write=N timeout=N
--            wrk_status=N extra.<name>=N ...
-- Environment (set by run.sh): LOAD_TOKEN (access token), LOAD_WRK_THREADS (wrk -t),
-- LOAD_IDS_FILE (lines "<contact id> <version>"), LOAD_ACCEPT_ENCODING (default gzip).

local threads = {}

-- Main state: called once per wrk thread before it starts.
function setup(thread)
   table.insert(threads, thread)
   thread:set("tid", #threads - 1)
end

-- Per-thread counters (globals of each thread's Lua state, read back by done()).
statuses = {}
extra = {}

function count(status)
   statuses[status] = (statuses[status] or 0) + 1
end

function bump(name)
   extra[name] = (extra[name] or 0) + 1
end

function response(status, headers, body)
   count(status)
end

-- The Authorization header, the Accept-Encoding every browser sends (LOAD_ACCEPT_ENCODING,
-- default "gzip"; "identity" for the reference runs), and any others, for a request.
function auth_headers(more)
   local h = { ["Authorization"] = "Bearer " .. (os.getenv("LOAD_TOKEN") or ""),
               ["Accept-Encoding"] = os.getenv("LOAD_ACCEPT_ENCODING") or "gzip" }
   if more then
      for k, v in pairs(more) do h[k] = v end
   end
   return h
end

-- Seeds math.random differently in every thread and run.
function seed_random()
   math.randomseed(os.time() * 1000 + (tid or 0) * 7919 + math.floor(os.clock() * 1e6))
   for _ = 1, 10 do math.random() end
end

-- Contact ids (and versions) from LOAD_IDS_FILE; only those with index % every == slot
-- when `every` is given (to give each thread its own).
function load_ids(every, slot)
   local path = os.getenv("LOAD_IDS_FILE")
   local ids, versions = {}, {}
   local f = assert(io.open(path, "r"), "cannot open LOAD_IDS_FILE")
   local i = 0
   for line in f:lines() do
      local id, version = line:match("^(%S+)%s*(%d*)")
      if id then
         if not every or i % every == slot then
            table.insert(ids, id)
            table.insert(versions, tonumber(version) or 1)
         end
         i = i + 1
      end
   end
   f:close()
   assert(#ids > 0, "no contact ids in LOAD_IDS_FILE")
   return ids, versions
end

-- A JSON body creating a contact with a random name.
local FIRST = { "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken",
                "Margaret", "Dennis", "Radia", "Niklaus", "Leslie", "Tony", "Sophie" }
local LAST = { "Loadtest", "Benchmark", "Wrkman", "Stress", "Throughput", "Latency" }
local created = 0
function create_body()
   created = created + 1
   return string.format('{"first_name":"%s","last_name":"%s%d","title":"Load %d"}',
      FIRST[math.random(#FIRST)], LAST[math.random(#LAST)], math.random(1, 999999), created)
end

function done(summary, latency, requests)
   local total, errors = {}, {}
   local extras = {}
   for _, t in ipairs(threads) do
      local s = t:get("statuses") or {}
      for code, n in pairs(s) do total[code] = (total[code] or 0) + n end
      local e = t:get("extra") or {}
      for k, n in pairs(e) do extras[k] = (extras[k] or 0) + n end
   end
   local codes = {}
   for code in pairs(total) do table.insert(codes, code) end
   table.sort(codes)
   local s2xx, non2xx, parts = 0, 0, {}
   for _, code in ipairs(codes) do
      local n = total[code]
      if code >= 200 and code < 300 then s2xx = s2xx + n else non2xx = non2xx + n end
      table.insert(parts, code .. ":" .. n)
   end
   local secs = summary.duration / 1e6
   local line = string.format(
      "@@RESULT requests=%d duration_us=%d rps=%.1f p50_ms=%.2f p95_ms=%.2f p99_ms=%.2f max_ms=%.2f"
      .. " s2xx=%d non2xx=%d statuses=%s connect=%d read=%d write=%d timeout=%d wrk_status=%d",
      summary.requests, summary.duration, summary.requests / secs,
      latency:percentile(50) / 1000, latency:percentile(95) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000,
      s2xx, non2xx, (#parts > 0 and table.concat(parts, ",") or "none"),
      summary.errors.connect, summary.errors.read, summary.errors.write,
      summary.errors.timeout, summary.errors.status)
   local names = {}
   for k in pairs(extras) do table.insert(names, k) end
   table.sort(names)
   for _, k in ipairs(names) do line = line .. string.format(" extra.%s=%d", k, extras[k]) end
   io.write(line .. "\n")
end
