# Cross-ISA fingerprint (issue #21): built on demand (scripts/test --cross aarch64 builds it in
# the x86 and the aarch64 build and compares their outputs); not part of `all`.
add_executable(cross_isa_fingerprint EXCLUDE_FROM_ALL ${CMAKE_CURRENT_SOURCE_DIR}/cross_isa/fingerprint.cpp)
lowbit_project_target(cross_isa_fingerprint)
target_link_libraries(cross_isa_fingerprint PRIVATE lowbit::kernels)
