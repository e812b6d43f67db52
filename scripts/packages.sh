# Installs the Debian packages a command needs when they are missing; sourced by demo.sh,
# test.sh and .ci/run.
#
#   ensure_packages clickhouse-server chromium ...
#
# Each package is looked for by what it provides (a binary or a Python module), so a
# machine that has them from elsewhere installs nothing. Root runs apt-get directly,
# anyone else through sudo.

package_present() {
    case "$1" in
        clickhouse-server) command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ] ;;
        chromium) command -v chromium >/dev/null 2>&1 ;;
        chromium-driver) command -v chromedriver >/dev/null 2>&1 ;;
        nodejs) command -v node >/dev/null 2>&1 ;;
        curl) command -v curl >/dev/null 2>&1 ;;
        prometheus) command -v promtool >/dev/null 2>&1 ;;
        python3-venv) venv_works ;;
        clickhouse-client) command -v clickhouse-client >/dev/null 2>&1 ;;
        tzdata) [ -e /usr/share/zoneinfo/Europe/Berlin ] ;;
        zookeeperd) [ -f /usr/share/java/zookeeper.jar ] && command -v java >/dev/null 2>&1 ;;
        *) dpkg -s "$1" >/dev/null 2>&1 ;;
    esac
}

# Debian's python3 has the venv module without python3-venv but cannot make one with pip.
venv_works() {
    local scratch status=0
    scratch="$(mktemp -d)"
    python3 -m venv "$scratch/venv" >/dev/null 2>&1 || status=1
    rm -rf "$scratch"
    return "$status"
}

ensure_packages() {
    local missing=() package
    for package in "$@"; do
        package_present "$package" || missing+=("$package")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    echo "installing Debian packages: ${missing[*]}" >&2
    local as_root=()
    [ "$(id -u)" = 0 ] || as_root=(sudo)
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq "${missing[@]}" >/dev/null
}
