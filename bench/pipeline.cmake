# SPDX-License-Identifier: GPL-2.0
# Benchmarks: bench/pipeline.c (user-space pipeline: real rings, lm-ser, sinks and lm-ws, no
# BPF; also the WebSocket client bench/synth.sh uses) and bench/synth-load.c (renames itself
# for lifemon --bench-tgid). Included from the top-level CMakeLists.txt, after the modules and
# tests/integration.cmake, with include(bench/pipeline.cmake).
if(NOT TARGET PkgConfig::LIBCRYPTO)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(LIBCRYPTO REQUIRED IMPORTED_TARGET libcrypto)
endif()

# --strict clients use the test suite's RFC 6455 client; compiled in directly so the bench
# does not pull the integration harness (jansson) with lm_itutil.
add_executable(pipeline bench/pipeline.c tests/ws_client.c)
target_link_libraries(pipeline PRIVATE lm_warnings lm_pipeline lm_ring lm_json lm_stats
  lm_log PkgConfig::LIBCRYPTO Threads::Threads)

add_executable(synth-load bench/synth-load.c)
target_link_libraries(synth-load PRIVATE lm_warnings Threads::Threads)
