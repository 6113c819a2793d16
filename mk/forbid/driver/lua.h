#error "drivers know nothing of Lua: lua.h is not for csrc/drivers"
