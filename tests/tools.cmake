# Tests of the tools/ runner: they include tools/model/*.hpp and tools/lowbit-quantize/*.hpp
# (llama_test, the opt-in real-model test, and every tests/tools_*_test.cpp).
file(GLOB lowbit_tools_tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/tools_*_test.cpp)
# hf_checkpoint_test also exports folders back (lowbit-quantize/hf_export.cpp, in the core library).
set(lowbit_tools_test_targets llama_test real_model_ppl_test hf_checkpoint_test)
foreach(f ${lowbit_tools_tests})
  get_filename_component(n ${f} NAME_WE)
  list(APPEND lowbit_tools_test_targets ${n})
endforeach()
# Tests that include tools/ headers without the method adapters (tools/ is on every test's
# include path): the MiniLM tokenizer and encoder, and the Hugging Face folder loader
# (tools/model/hf_checkpoint.hpp). They find the repository's texts through LOWBIT_SOURCE_DIR.
foreach(t minilm_tokenizer_test minilm_encoder_test minilm_real_model_test hf_checkpoint_test hf_reference_ppl_test)
  if(TARGET ${t})
    target_compile_definitions(${t} PRIVATE LOWBIT_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  endif()
endforeach()
foreach(t ${lowbit_tools_test_targets})
  if(TARGET ${t})
    # The method adapters come compiled, once, in tools/'s lowbit_quantize_core (with its
    # include path and -march=native, which these tests then share).
    target_link_libraries(${t} PRIVATE lowbit_quantize_core)
    target_compile_definitions(${t} PRIVATE LOWBIT_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  endif()
endforeach()
