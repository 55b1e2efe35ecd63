# SpQR's CPU GEMV/GEMM (two-level stats, CSR outliers, permutation) against fp32/fp16 and the
# one-level 3-bit g16 format, with the cost of the sparse part at 0.5 / 1 / 2 % outliers
# (bench/spqr_gemv.cpp).
lowbit_add_bench(spqr_gemv ${CMAKE_CURRENT_LIST_DIR}/spqr_gemv.cpp)
