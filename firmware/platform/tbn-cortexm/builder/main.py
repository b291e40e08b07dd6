"""SCons builder of the tbn-cortexm platform: bare-metal Cortex-M with the system toolchain, for
emulated and real boards alike (uploads are tbn.device.upload's).

Board specifics (HAL, memory map, FPU flags, linker script) come from scripts/board.py,
which every environment of firmware/platformio.ini runs, on this platform and on ststm32.
"""

import os
import shutil

from SCons.Script import AlwaysBuild, Default, DefaultEnvironment  # type: ignore[import-not-found]

env = DefaultEnvironment()
board = env.BoardConfig()

if shutil.which("arm-none-eabi-gcc") is None:
    raise SystemExit("tbn-cortexm: arm-none-eabi-gcc not found (Debian: apt-get install gcc-arm-none-eabi "
                     "libnewlib-arm-none-eabi)")

cpu_flags = [f"-mcpu={board.get('build.cpu')}", "-mthumb"]
# -Os unless TBN_OPT says otherwise (benchmarks/mcu.py builds every runtime at -Os and -O2)
opt = os.environ.get("TBN_OPT", "-Os")
if opt not in ("-Os", "-O2", "-O3"):
    raise SystemExit(f"tbn-cortexm: TBN_OPT={opt!r} is not -Os, -O2 or -O3")
env.Replace(
    AR="arm-none-eabi-ar",
    AS="arm-none-eabi-as",
    CC="arm-none-eabi-gcc",
    CXX="arm-none-eabi-g++",
    OBJCOPY="arm-none-eabi-objcopy",
    RANLIB="arm-none-eabi-ranlib",
    SIZETOOL="arm-none-eabi-size",
    SIZEPROGREGEXP=r"^(?:\.isr_vector|\.text|\.rodata|\.ARM\.exidx|\.data)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.bss|\.stack)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    PROGSUFFIX=".elf",
)
env.Append(
    ASFLAGS=cpu_flags,
    ASPPFLAGS=["-x", "assembler-with-cpp"],
    CCFLAGS=cpu_flags + [opt, "-g", "-ffunction-sections", "-fdata-sections", "-Wall", "-Wextra", "-Werror"],
    CFLAGS=["-std=c99"],
    LINKFLAGS=cpu_flags + ["-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections"],
    LIBS=["m"],
)

program = env.BuildProgram()
AlwaysBuild(env.Alias("checkprogsize", program, env.VerboseAction(env.CheckUploadSize, "Checking size $PIOMAINPROG")))
Default(program)
