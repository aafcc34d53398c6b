#!/usr/bin/env bash
# GET|PUT /tools/metrics as Orthanc 1.10.1: GET answers 1 or 0 (text/plain); PUT takes 1, 0,
# true, false, else 400; off means an empty Prometheus page and nothing recorded; MetricsEnabled
# false in the configuration starts with metrics off.
source "$(dirname "$0")/lib.sh"
start_server
[ "$(http GET /tools/metrics)" = 1 ] || fail "GET /tools/metrics: $(cat "$T/body")"
curl -s -D "$T/h" -o /dev/null "$URL/tools/metrics-prometheus"
grep -qi '^content-type: text/plain; version=0.0.4' "$T/h" || fail "content type: $(cat "$T/h")"
http PUT /tools/metrics -d 0 >/dev/null; [ "$(status)" = 200 ] || fail "PUT 0 -> $(status)"
[ "$(http GET /tools/metrics)" = 0 ] || fail "not off"
[ -z "$(http GET /tools/metrics-prometheus)" ] || fail "page not empty while off"
upload "$PYDICOM_FILES/CT_small.dcm" >/dev/null  # not timed while off
http PUT /tools/metrics -d true >/dev/null; [ "$(status)" = 200 ] || fail "PUT true -> $(status)"
[ "$(http GET /tools/metrics)" = 1 ] || fail "not on"
http GET /tools/metrics-prometheus | grep -qx 'minipacs_store_dicom_duration_ms_count 0' || fail "a store was timed while off"
http GET /tools/metrics-prometheus | grep -qx 'orthanc_count_instances 1' || fail "count"
http PUT /tools/metrics -d false >/dev/null; [ "$(http GET /tools/metrics)" = 0 ] || fail "PUT false"
http PUT /tools/metrics -d 1 >/dev/null; [ "$(http GET /tools/metrics)" = 1 ] || fail "PUT 1"
http PUT /tools/metrics -d maybe >/dev/null; [ "$(status)" = 400 ] || fail "PUT maybe -> $(status)"
http DELETE /tools/metrics >/dev/null; [ "$(status)" = 405 ] || fail "DELETE -> $(status)"
pass "switch"
# Active requests come back to 0 (well, 1: the scrape) after many requests, some aborted.
pids=()
for i in $(seq 1 20); do curl -s -o /dev/null "$URL/system" & pids+=($!); done
# aborted uploads: announce 100000 bytes, send one, give up
for i in $(seq 1 5); do curl -s -m 0.2 -o /dev/null -X POST -H 'Content-Length: 100000' --data-binary 'x' "$URL/instances" & pids+=($!); done
wait "${pids[@]}" || true  # (a bare wait would wait for the server too)
sleep 0.3
http GET /tools/metrics-prometheus | grep -qx 'orthanc_rest_api_active_requests 1' || fail "active requests: $(grep active "$T/body")"
pass "active requests balanced"
stop_server
write_config '"MetricsEnabled": false'
start_server
[ "$(http GET /tools/metrics)" = 0 ] || fail "MetricsEnabled false"
[ -z "$(http GET /tools/metrics-prometheus)" ] || fail "page not empty"
pass "MetricsEnabled false"
