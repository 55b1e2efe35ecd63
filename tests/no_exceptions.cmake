# A consumer built as game engines build: -fno-exceptions -fno-rtti. It must compile every
# method header, run, and report errors through lowbit::set_error_handler (core/error.hpp).
add_executable(no_exceptions_consumer ${CMAKE_CURRENT_SOURCE_DIR}/no_exceptions/main.cpp)
lowbit_project_target(no_exceptions_consumer)
target_compile_options(no_exceptions_consumer PRIVATE -fno-exceptions -fno-rtti)
add_test(NAME no_exceptions.methods_run COMMAND no_exceptions_consumer)
set_tests_properties(no_exceptions.methods_run PROPERTIES PASS_REGULAR_EXPRESSION "no-exceptions consumer ok")
# The error path: the handler gets lowbit's message (and ends the program with exit code 3).
add_test(NAME no_exceptions.error_reaches_handler COMMAND no_exceptions_consumer bad)
set_tests_properties(no_exceptions.error_reaches_handler PROPERTIES
                     PASS_REGULAR_EXPRESSION "engine handler: lowbit: .*(NaN|nan|non-finite|finite)")
