# Tests of tools/minilm (BERT WordPiece tokenizer, MiniLM encoder): they include tools/minilm/*.hpp.
foreach(t minilm_tokenizer_test minilm_encoder_test minilm_real_model_test)
  if(TARGET ${t})
    target_include_directories(${t} PRIVATE ${PROJECT_SOURCE_DIR}/tools)
    target_compile_definitions(${t} PRIVATE LOWBIT_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  endif()
endforeach()
