#error "the sans-I/O core includes neither libuv nor Lua: uv.h is not for csrc/core"
