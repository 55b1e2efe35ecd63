# Tests of the Hugging Face folder loader (tools/model/hf_checkpoint.hpp): they include
# tools/model/*.hpp but need none of lowbit_quantize_core's method adapters.
foreach(t hf_checkpoint_test hf_reference_ppl_test)
  if(TARGET ${t})
    target_include_directories(${t} PRIVATE ${PROJECT_SOURCE_DIR}/tools)
    target_compile_definitions(${t} PRIVATE LOWBIT_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  endif()
endforeach()
