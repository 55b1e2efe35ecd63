# cmake -DINCLUDE=<repo>/include -P check_layers.cmake
# The layer order of include/lowbit (docs/architecture.md, "Layers"): a header may include
# headers of its own layer or of layers below it, never above.
#   0 core/      abi, shared state, errors, matrix views, parallel loops, the grid's values
#   1 policy/ detail/   the tag types and their concepts; reading a policy list
#   2 format/    storage: bit packing, stats tables, outlier stores, packed_matrix
#   3 kernel/    running a packed format: CPU (SIMD, dispatch, int8) and CUDA backends
#   4 method/    filling a packed format: RTN, GPTQ, AWQ, OWQ, SpQR, AdaDim, RPTQ
#   5 io/        files: GGUF, safetensors, .lowbit, interop readers
#   6 the front headers (lowbit/*.hpp): what users include
# and nothing under include/ includes tools/ (the CLI and model runner sit on top).
set(layer_core 0)
set(layer_policy 1)
set(layer_detail 1)
set(layer_format 2)
set(layer_kernel 3)
set(layer_method 4)
set(layer_io 5)
function(layer_of path out)
  string(REGEX MATCH "^[^/]+/" top "${path}")
  if(top STREQUAL "")
    set(${out} 6 PARENT_SCOPE)
    return()
  endif()
  string(REPLACE "/" "" top "${top}")
  if(NOT DEFINED layer_${top})
    message(FATAL_ERROR "include/lowbit/${path}: folder '${top}' has no place in the layer order (check_layers.cmake)")
  endif()
  set(${out} ${layer_${top}} PARENT_SCOPE)
endfunction()

file(GLOB_RECURSE headers RELATIVE ${INCLUDE}/lowbit ${INCLUDE}/lowbit/*.hpp ${INCLUDE}/lowbit/*.cuh)
set(violations)
foreach(h ${headers})
  layer_of(${h} from)
  file(STRINGS ${INCLUDE}/lowbit/${h} lines REGEX "^#include \"")
  foreach(l ${lines})
    if(l MATCHES "^#include \"lowbit/([^\"]+)\"")
      set(target ${CMAKE_MATCH_1})
      layer_of(${target} to)
      if(to GREATER from)
        list(APPEND violations "${h} (layer ${from}) includes ${target} (layer ${to})")
      endif()
    else()
      list(APPEND violations "${h}: '${l}' is not a lowbit/ header (tools/ and other trees sit above the library)")
    endif()
  endforeach()
endforeach()
if(violations)
  list(JOIN violations "\n  " text)
  message(FATAL_ERROR "includes that point up the layer order:\n  ${text}")
endif()
list(LENGTH headers n)
message(STATUS "${n} headers, every include points down or sideways")
