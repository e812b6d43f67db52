# Sourced by wrk.sh and ab.sh: what the wrk scripts in wrk/ need from a running service.
#
#   wrk_setup SERVICE_URL ADMIN_TOKEN WORK_DIR
#
# Makes a brand, link and click through the load generator's setup (saved in
# WORK_DIR/setup.json), exports the AFFILYNC_WRK_* variables the Lua scripts read, and
# stores the order the `replay` script sends again. Needs python3, curl and $load (the
# affilync-load binary).
wrk_setup() {
    local service="$1" token="$2" work="$3"
    "$load" setup --target "$service" --admin-token "$token" --clicks 1 --save "$work/setup.json" >/dev/null
    field() { python3 -c "import json; d = json.load(open('$work/setup.json')); print($1)"; }
    AFFILYNC_WRK_KEY="$(field 'd["brand_key"]')"
    AFFILYNC_WRK_CLICK="$(field 'd["clicks"][0]')"
    AFFILYNC_WRK_LINK="$(field 'd["links"][0]["link_id"]')"
    AFFILYNC_WRK_ORDER="wrk-replay-$RANDOM$RANDOM"
    AFFILYNC_WRK_RUN="$RANDOM$RANDOM"
    export AFFILYNC_WRK_KEY AFFILYNC_WRK_CLICK AFFILYNC_WRK_LINK AFFILYNC_WRK_ORDER AFFILYNC_WRK_RUN
    # The replayed order is stored once first.
    curl -fsS -o /dev/null "$service/api/conversions/postback?api_key=$AFFILYNC_WRK_KEY&click_id=$AFFILYNC_WRK_CLICK&amount=25.00&currency=USD&order_id=$AFFILYNC_WRK_ORDER"
}
