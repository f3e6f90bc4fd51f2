# SPDX-License-Identifier: GPL-2.0
# Bench smoke tests (label bench): every bench tool runs for a few seconds, so a bench that no
# longer runs fails `make test`. Nothing is timed or asserted about speed. storm.sh also runs
# forkbomb-lite, ws_sink.py and storm_check.py on the way; synth.sh runs synth-load, pipeline
# --connect and --check-file, and synth_metrics.py; nats.sh starts a 3-node nats-server cluster
# (nats_ctl.py, tests/nats_cluster.py), one 2 s step with --nats, and fails unless
# lifemon --nats-tail prints exactly the --output file (nats_check.py). The scripts need root
# (exit 77 without it, but fail with CI=true); peers (bpftrace, forkstat) are left out.
# Included after bench/bench.cmake and bench/pipeline.cmake. Ports: pipeline 18300+, storm.sh
# 18200+, synth.sh 18310, nats.sh 18320 (its servers: free ports).
add_test(NAME bench_forkbomb_lite
  COMMAND forkbomb-lite --max-live 8 --total 200 --seconds 10 --mode exec --exec /bin/true --json)
add_test(NAME bench_forkbomb_lite_tree
  COMMAND forkbomb-lite --max-live 16 --total 40 --seconds 10 --mode tree --depth 2 --fanout 2)
add_test(NAME bench_pipeline COMMAND pipeline --smoke --file ${CMAKE_BINARY_DIR}/pipeline-smoke.jsonl)
add_test(NAME bench_storm COMMAND ${CMAKE_COMMAND} -E env LIFEMON=$<TARGET_FILE:lifemon>
  FORKBOMB=$<TARGET_FILE:forkbomb-lite> ${CMAKE_SOURCE_DIR}/bench/storm.sh --smoke)
add_test(NAME bench_synth COMMAND ${CMAKE_COMMAND} -E env BUILD=${CMAKE_BINARY_DIR}
  OUTPUT=${CMAKE_BINARY_DIR}/synth-smoke.jsonl ${CMAKE_SOURCE_DIR}/bench/synth.sh --smoke)
add_test(NAME bench_nats COMMAND ${CMAKE_COMMAND} -E env BUILD=${CMAKE_BINARY_DIR}
  OUT=${CMAKE_BINARY_DIR}/nats-smoke ${CMAKE_SOURCE_DIR}/bench/nats.sh --smoke)
set_tests_properties(bench_forkbomb_lite bench_forkbomb_lite_tree bench_pipeline bench_storm
  bench_synth bench_nats PROPERTIES LABELS bench TIMEOUT 120 SKIP_RETURN_CODE 77
  RUN_SERIAL TRUE)
