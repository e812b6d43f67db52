-- wrk: the tracking link, redirect not followed (302).
--   AFFILYNC_WRK_LINK=<link id> wrk -t1 -c64 -d10s -s load-tests/wrk/clicks.lua http://127.0.0.1:8090
local link = os.getenv("AFFILYNC_WRK_LINK") or error("set AFFILYNC_WRK_LINK")
local path = "/c/" .. link .. "?sub1=wrk"

function request()
  return wrk.format("GET", path)
end
