#!/usr/bin/env bash
# run.sh BIN SECONDS [CORPUS_ROOT] -- seeds the corpus of one fuzz target (first run only) and
# runs it for SECONDS under ASan+UBSan (leak detection on). Exit status: libFuzzer's (non-zero
# on a crash, a leak or a sanitizer report; the reproducer is left in CORPUS_ROOT/crashes).
# Seeds: small pydicom test files (ingest), option bodies (modify), paths with credentials
# (router); nothing large is committed, everything is made here.
set -euo pipefail
bin=$(readlink -f "$1"); secs=$2; root=$(readlink -m "${3:-$(dirname "$bin")/corpus}")
name=$(basename "$bin")
: "${PYDICOM_FILES:=/usr/lib/python3/dist-packages/pydicom/data/test_files}"
export PYDICOM_FILES
corpus="$root/$name"; crashes="$root/crashes/$name"
mkdir -p "$corpus" "$crashes"
if [ -z "$(ls -A "$corpus")" ]; then
  case $name in
    fuzz_ingest)
      find "$PYDICOM_FILES" -maxdepth 1 -type f -name '*.dcm' -size -64k -exec cp {} "$corpus/" \; ;;
    fuzz_modify_options)
      i=0
      for j in '{}' '{"Replace":{"PatientName":"X","PatientID":"Y"},"Force":true}' \
               '{"Keep":["StudyDate","SeriesDescription"],"KeepPrivateTags":true}' \
               '{"Remove":["PatientBirthDate","0010,1010"],"RemovePrivateTags":true}' \
               '{"Replace":{"ReferencedImageSequence[*].ReferencedSOPInstanceUID":"1.2"},"Force":true}' \
               '{"DicomVersion":"2023b","Asynchronous":true,"Priority":5,"KeepSource":false}' \
               '{"Replace":{"0009,1001":"x"},"PrivateCreator":"Mine","Permissive":true}' \
               '{"Synchronous":false,"Keep":["PatientName"],"Replace":{"StudyInstanceUID":"1.2.3"}}'; do
        printf '%s' "$j" > "$corpus/seed$i.json"; i=$((i + 1))
      done ;;
    fuzz_router)
      i=0
      for p in '/system' '/statistics' '/patients?expand' '/instances?since=0&limit=10' \
               '/instances/x/tags?simplify' '/studies/x/series' '/changes?since=0&limit=5' \
               '/instances/../../etc/passwd' '/patients/x/protected' '/tools/metrics-prometheus' \
               '/instances/x/content/0010-0010' '/series/x/shared-tags' '/jobs?expand' \
               '/instances/@I/tags?simplify' '/instances/@I/content/0008-1140/0/0008-1150' \
               '/patients/@P/protected' '/studies/@S/instances' '/series/@E/shared-tags' \
               '/instances/@I/metadata?expand' '/instances/@I/attachments/dicom/info' \
               '/studies/@S/module-patient' '/instances/@I/file' '/patients/@P/statistics'; do
        printf 'Basic YWxpY2U6czNjcmV0\n%s' "$p" > "$corpus/seed$i"; i=$((i + 1))
      done ;;
  esac
fi
cd "$crashes"
echo "fuzz: $name for ${secs}s, corpus $(ls "$corpus" | wc -l) inputs"
# -malloc_limit_mb: DCMTK allocates an element's declared length (up to 4 GB) before it
# finds the buffer too short, then fails cleanly (dcm_parse -> 400); libFuzzer would stop at
# the first such input. Single allocations up to 4 GB pass, RSS stays capped at 2 GB.
"$bin" -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=4200 -timeout=20 -print_final_stats=1 \
  -artifact_prefix="$crashes/" "$corpus" 2>"$root/$name.log" || { rc=$?; tail -60 "$root/$name.log"; exit $rc; }
grep -E '^#[0-9]+.*DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb' "$root/$name.log" | tr '\n' ' '
echo
