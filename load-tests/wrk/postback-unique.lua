-- wrk: a new order on every request, as `GET /api/conversions/postback`.
--   AFFILYNC_WRK_KEY=<brand key> AFFILYNC_WRK_CLICK=<click id> \
--     wrk -t1 -c64 -d10s -s load-tests/wrk/postback-unique.lua http://127.0.0.1:8090
-- Order ids carry AFFILYNC_WRK_RUN (default: the start time) so runs never repeat one.
local key = os.getenv("AFFILYNC_WRK_KEY") or error("set AFFILYNC_WRK_KEY")
local click = os.getenv("AFFILYNC_WRK_CLICK") or error("set AFFILYNC_WRK_CLICK")
local run = os.getenv("AFFILYNC_WRK_RUN") or tostring(os.time())
local prefix = "/api/conversions/postback?api_key=" .. key .. "&click_id=" .. click
  .. "&amount=25.00&currency=USD&order_id=wrk-" .. run .. "-"
local n = 0

-- Each wrk thread runs its own copy of this script: a tag per thread keeps their orders
-- apart.
thread_tag = "0"
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_tag", tostring(threads))
end

function request()
  n = n + 1
  return wrk.format("GET", prefix .. thread_tag .. "-" .. n)
end
