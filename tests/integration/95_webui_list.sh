#!/usr/bin/env bash
# 95_webui_list: the web interface's studies list with 10,000 studies (MP_BULK) in the index,
# in Debian's chromium (tests/browser/walkthrough.mjs, MP_PART=list): the first page renders
# (its time after navigation, performance.now(), is printed as a FIGURE line: a benchmark
# figure, bench/webui.py measures it next to Orthanc Explorer), in two finds (rows, then their
# modalities: no request a row), a warm load takes the page's files from the browser's cache,
# the next page comes from the server. No console error, no other origin.
# The studies go through the real server's ingest and index (tests/browser/bulk_studies.py: tiny
# generated instances over 8 keep-alive connections). Its storage and index sit on /dev/shm
# (tmpfs) when there is room: creating 10,000 files on the disk's filesystem is most of the
# ingest's cost (3-4x slower), and is not what this scenario is about.
source "$(dirname "$0")/lib.sh"
BROWSER_DIR="$MP_SRC/tests/browser"
BULK=${MP_BULK:-10000}
command -v node >/dev/null || fail "node is missing (scripts/deps.sh installs nodejs)"
[ -x /usr/bin/chromium ] || fail "chromium is missing (scripts/deps.sh installs it)"
if [ ! -f "$BROWSER_DIR/node_modules/puppeteer-core/package.json" ]; then
  (cd "$BROWSER_DIR" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --silent) || fail "npm ci in tests/browser"
fi
SHOTS="$(dirname "$MINIPACS_BIN")/webui-screenshots"
mkdir -p "$SHOTS"

DB="$T/db"
if [ "$INDEX_BACKEND" = sqlite ] && [ -w /dev/shm ] && [ "$(df -Pk /dev/shm | awk 'NR==2 {print $4}')" -gt 524288 ]; then
  DB=$(mktemp -d /dev/shm/mp-it-list.XXXXXX)
  cleanup_hook() { rm -rf "$DB"; }
fi
# StableAge an hour: no stable-resource processing (30,000 more changes) while the studies
# arrive or the page is timed
write_config '"StableAge": 3600'
# (and warnings only: 10,000 "stored" lines would bury a failure's log)
sed -i -e "s#\"$T/db\"#\"$DB\"#" -e 's#"LogLevel": "info"#"LogLevel": "warning"#' "$T/Orthanc.json"
start_server

t0=$(date +%s.%N)
$PY "$BROWSER_DIR/bulk_studies.py" "$URL" "$BULK" || fail "storing $BULK studies"
secs=$($PY -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$(date +%s.%N)")
n=$(curl -sf "$URL/statistics" | $PY -c 'import json,sys; print(json.load(sys.stdin)["CountStudies"])')
[ "$n" = "$BULK" ] || fail "$n studies in the index, not $BULK"
pass "$BULK studies stored through POST /instances in $secs s (storage in $DB)"

MP_URL="$URL" MP_SHOTS="$SHOTS" MP_PART=list MP_BULK="$BULK" timeout 300 node "$BROWSER_DIR/walkthrough.mjs" || fail "browser list check"
pass "browser list check with $BULK studies"
