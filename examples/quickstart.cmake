add_executable(quickstart ${CMAKE_CURRENT_LIST_DIR}/quickstart.cpp)
lowbit_project_target(quickstart)
