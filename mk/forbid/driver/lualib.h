#error "drivers know nothing of Lua: lualib.h is not for csrc/drivers"
