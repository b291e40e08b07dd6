# tbn as a MicroPython user C module: make -C ports/PORT USER_C_MODULES=<this repo>/firmware/micropython
# The module is modtbn.c; the runtime is every C file of firmware/lib/tbn (as library.json says).
TBN_MOD_DIR := $(USERMOD_DIR)
# absolute: objects then stay under the port's $(BUILD) (a "../" would lead them out of it)
TBN_RUNTIME := $(abspath $(TBN_MOD_DIR)/../../lib/tbn)

SRC_USERMOD_C += $(TBN_MOD_DIR)/modtbn.c
SRC_USERMOD_LIB_C += $(wildcard $(TBN_RUNTIME)/src/*.c $(TBN_RUNTIME)/src/kernels/*.c)
CFLAGS_USERMOD += -I$(TBN_RUNTIME)/include
