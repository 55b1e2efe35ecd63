#define CATCH_CONFIG_MAIN
#include "lowbit_catch.hpp"
