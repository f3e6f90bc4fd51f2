# SPDX-License-Identifier: GPL-2.0
# Benchmarks: forkbomb-lite, the bounded fork/exec load generator that bench/storm.sh drives
# (storm.sh builds its own copy when this target is not built). Included from the top-level
# CMakeLists.txt with include(bench/bench.cmake); needs the lm_warnings INTERFACE target.
add_executable(forkbomb-lite bench/forkbomb-lite.c)
target_link_libraries(forkbomb-lite PRIVATE lm_warnings)
