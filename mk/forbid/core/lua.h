#error "the sans-I/O core includes neither libuv nor Lua: lua.h is not for csrc/core"
