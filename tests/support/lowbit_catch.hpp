#pragma once
// Catch2 v2 (Debian 12's single header) or v3, whichever the build found.
#if defined(LOWBIT_CATCH3)
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif
