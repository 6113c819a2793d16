#error "drivers know nothing of Lua: lauxlib.h is not for csrc/drivers"
