// expect: Size must be a power of two
#include <lowbit/rtn.hpp>
int main() { return lowbit::group<lowbit::oc, 100>::size; }
