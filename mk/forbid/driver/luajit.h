#error "drivers know nothing of Lua: luajit.h is not for csrc/drivers"
