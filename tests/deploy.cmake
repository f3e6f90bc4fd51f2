# SPDX-License-Identifier: GPL-2.0
# Shipping (label deploy): what a fresh machine's `make build` says before CMake runs
# (deploy_deps), the man page against --help (deploy_man), the Kubernetes manifests
# (deploy_yaml), the systemd unit as make install installs it, verified and run with its
# capabilities (deploy_unit), and the Debian package installed on this machine and purged
# (it_deb). They check files and the release build, not sanitized code: the sanitizer passes
# leave them out. deploy_unit and it_deb build their own release trees (build/deploy-unit,
# build/deb) and run lifemon, serially. Included from CMakeLists.txt.

add_test(NAME deploy_deps COMMAND ${CMAKE_SOURCE_DIR}/tests/deploy_deps.sh ${CMAKE_SOURCE_DIR})
set_tests_properties(deploy_deps PROPERTIES LABELS deploy TIMEOUT 60)

add_test(NAME deploy_man COMMAND ${CMAKE_SOURCE_DIR}/tests/deploy_man.sh ${CMAKE_SOURCE_DIR}
  $<TARGET_FILE:lifemon>)
set_tests_properties(deploy_man PROPERTIES LABELS deploy TIMEOUT 60)

add_test(NAME deploy_yaml COMMAND ${LM_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/deploy_yaml.py
  ${CMAKE_SOURCE_DIR} $<TARGET_FILE:lifemon>)
set_tests_properties(deploy_yaml PROPERTIES LABELS deploy TIMEOUT 60)

# Root parts skip (77) without root, or fail with CI=true; free loopback ports.
add_test(NAME deploy_unit COMMAND ${CMAKE_SOURCE_DIR}/tests/deploy_unit.sh ${CMAKE_SOURCE_DIR}
  ${CMAKE_BINARY_DIR})
set_tests_properties(deploy_unit PROPERTIES LABELS deploy TIMEOUT 300
  SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)

add_test(NAME it_deb COMMAND ${CMAKE_SOURCE_DIR}/tests/it_deb.sh ${CMAKE_SOURCE_DIR}
  ${CMAKE_BINARY_DIR})
set_tests_properties(it_deb PROPERTIES LABELS deploy TIMEOUT 300
  SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
