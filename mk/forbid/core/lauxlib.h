#error "the sans-I/O core includes neither libuv nor Lua: lauxlib.h is not for csrc/core"
