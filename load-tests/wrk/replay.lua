-- wrk: the same stored order again and again, answered 200 as a replay.
--   AFFILYNC_WRK_KEY=<brand key> AFFILYNC_WRK_CLICK=<click id> AFFILYNC_WRK_ORDER=<stored order> \
--     wrk -t1 -c64 -d10s -s load-tests/wrk/replay.lua http://127.0.0.1:8090
local key = os.getenv("AFFILYNC_WRK_KEY") or error("set AFFILYNC_WRK_KEY")
local click = os.getenv("AFFILYNC_WRK_CLICK") or error("set AFFILYNC_WRK_CLICK")
local order = os.getenv("AFFILYNC_WRK_ORDER") or error("set AFFILYNC_WRK_ORDER")
local path = "/api/conversions/postback?api_key=" .. key .. "&click_id=" .. click
  .. "&amount=25.00&currency=USD&order_id=" .. order

function request()
  return wrk.format("GET", path)
end
