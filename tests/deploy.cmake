# SPDX-License-Identifier: GPL-2.0
# Shipping (label deploy): what a fresh machine's `make build` says before CMake runs
# (deploy_deps). It checks scripts, not sanitized code: the sanitizer passes leave it out.
# Included from CMakeLists.txt.

add_test(NAME deploy_deps COMMAND ${CMAKE_SOURCE_DIR}/tests/deploy_deps.sh ${CMAKE_SOURCE_DIR})
set_tests_properties(deploy_deps PROPERTIES LABELS deploy TIMEOUT 60)
