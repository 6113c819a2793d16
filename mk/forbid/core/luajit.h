#error "the sans-I/O core includes neither libuv nor Lua: luajit.h is not for csrc/core"
