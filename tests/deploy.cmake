# SPDX-License-Identifier: GPL-2.0
# Shipping (label deploy): what a fresh machine's `make build` says before CMake runs
# (deploy_deps) and the man page against --help (deploy_man). They check scripts and docs,
# not sanitized code: the sanitizer passes leave them out. Included from CMakeLists.txt.

add_test(NAME deploy_deps COMMAND ${CMAKE_SOURCE_DIR}/tests/deploy_deps.sh ${CMAKE_SOURCE_DIR})
set_tests_properties(deploy_deps PROPERTIES LABELS deploy TIMEOUT 60)

add_test(NAME deploy_man COMMAND ${CMAKE_SOURCE_DIR}/tests/deploy_man.sh ${CMAKE_SOURCE_DIR}
  $<TARGET_FILE:lifemon>)
set_tests_properties(deploy_man PROPERTIES LABELS deploy TIMEOUT 60)
