#error "the sans-I/O core includes neither libuv nor Lua: lualib.h is not for csrc/core"
