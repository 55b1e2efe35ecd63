// expect: N must be 2, 3, 4 or 8
#include <lowbit/rtn.hpp>
int main() { return lowbit::bits<5>::value; }
