-- Update contacts: PATCH /api/v1/contacts/{id} with If-Match and {"title": ...} (200
-- expected). Each wrk thread owns its own slice of LOAD_IDS_FILE (lines "<id> <version>")
-- and never has two requests in flight for one contact: a contact leaves the thread's idle
-- queue when its PATCH is sent and comes back, with the ETag of the answer, when the 200
-- arrives (the answer's body starts with the record's "id"). So every If-Match is current
-- and a 412 means the server got the versions wrong (counted as extra.conflicts_412).
--
-- A contact whose PATCH failed cannot be matched to its answer (error bodies do not name
-- the record), so it stays "in flight". Only if a thread runs out of idle contacts does it
-- re-read the one in flight longest with a GET (counted as extra.refresh_gets; its 200 is
-- among the statuses). With the pool at several times the connections, that never happens
-- unless many updates fail.
dofile(os.getenv("LOAD_LUA_DIR") .. "/common.lua")

local queue, head, tail = {}, 1, 0 -- idle contact ids (FIFO: spreads the updates)
local etag = {}                     -- id -> its current ETag, e.g. "3" with the quotes
local inflight = {}                 -- id -> sequence number of the request that took it
local seq = 0

local function push(id)
   tail = tail + 1
   queue[tail] = id
end

local function pop()
   if head > tail then return nil end
   local id = queue[head]
   queue[head] = nil
   head = head + 1
   return id
end

local function version_of(tag)
   return tonumber((tag or ""):match("(%d+)")) or 0
end

function init(args)
   seed_random()
   local threads = tonumber(os.getenv("LOAD_WRK_THREADS") or "1")
   local ids, versions = load_ids(threads, tid)
   for i, id in ipairs(ids) do
      etag[id] = '"' .. versions[i] .. '"'
      push(id)
   end
end

function request()
   seq = seq + 1
   local id = pop()
   if id then
      inflight[id] = seq
      local headers = auth_headers({ ["Content-Type"] = "application/json", ["If-Match"] = etag[id] })
      return wrk.format("PATCH", "/api/v1/contacts/" .. id, headers,
         string.format('{"title":"Load update %d"}', seq))
   end
   local oldest, oldest_seq = nil, math.huge
   for k, s in pairs(inflight) do
      if s < oldest_seq then oldest, oldest_seq = k, s end
   end
   inflight[oldest] = seq
   bump("refresh_gets")
   return wrk.format("GET", "/api/v1/contacts/" .. oldest, auth_headers())
end

function response(status, headers, body)
   count(status)
   if status ~= 200 then
      if status == 412 then bump("conflicts_412") end
      return
   end
   local id = body:match('^%s*{%s*"id"%s*:%s*"([^"]+)"')
   local tag = headers["etag"] or headers["ETag"] or headers["Etag"]
   if not id or not tag then
      bump("unparsed")
      return
   end
   if inflight[id] then
      inflight[id] = nil
      etag[id] = tag
      push(id)
   elseif version_of(tag) > version_of(etag[id]) then
      etag[id] = tag
   end
end
