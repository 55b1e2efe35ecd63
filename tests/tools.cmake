# Tests of the tools/ runner: they include tools/model/*.hpp and tools/lowbit-quantize/*.hpp.
foreach(t llama_test real_model_ppl_test)
  if(TARGET ${t})
    target_include_directories(${t} PRIVATE ${PROJECT_SOURCE_DIR}/tools)
    # The method registry instantiates every (method, bits, group, axis): the tests need two
    # group sizes, which keeps these test builds short.
    target_compile_definitions(${t} PRIVATE LOWBIT_SOURCE_DIR="${PROJECT_SOURCE_DIR}" LOWBIT_TOOLS_FEW_FORMATS=1)
  endif()
endforeach()
