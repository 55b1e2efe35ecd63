# Debian 12's xsimd 8.1 package exports a target that links "xtl" without finding it, so
# every consumer fails at link time with "-lxtl: not found". xsimd needs xtl only for its
# optional xtl::xcomplex support, which lowbit does not use: drop the dangling link.
if(TARGET xsimd AND NOT TARGET xtl)
  get_target_property(_lowbit_xsimd_links xsimd INTERFACE_LINK_LIBRARIES)
  if(_lowbit_xsimd_links)
    list(REMOVE_ITEM _lowbit_xsimd_links xtl)
    set_property(TARGET xsimd PROPERTY INTERFACE_LINK_LIBRARIES "${_lowbit_xsimd_links}")
  endif()
endif()
