"""SCons builder of the tbn-bare platform: bare-metal Cortex-M and RISC-V with the system's
cross toolchains, for emulated and real boards alike (uploads are tbn.device.upload's).

The toolchain follows the board's ``tbn.arch``; board specifics (core support, HAL, memory map,
FPU and ISA flags, linker script) come from scripts/board.py, which every environment of
firmware/platformio.ini runs, on this platform and on the vendors' PlatformIO platforms.
"""

import os
import shutil

from SCons.Script import AlwaysBuild, Default, DefaultEnvironment  # type: ignore[import-not-found]

env = DefaultEnvironment()
board = env.BoardConfig()

# arch: (tool prefix, Debian packages, compile and link flags beyond the board's cflags, libc
# link flags); picolibc's specs also give the compiler its headers
TOOLCHAINS = {
    "cortexm": ("arm-none-eabi-", "gcc-arm-none-eabi libnewlib-arm-none-eabi",
                [f"-mcpu={board.get('build.cpu')}", "-mthumb"],
                ["--specs=nano.specs", "--specs=nosys.specs"]),
    "riscv": ("riscv64-unknown-elf-", "gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf",
              ["--specs=picolibc.specs"], []),
    # avr-libc's own start-up code and linker script (-mmcu); -fno-ivopts: avr-gcc 5.4 crashes
    # in that pass on the runtime's __memx loops; -Waddr-space-convert (an error with -Werror):
    # no pointer into the model may drop __memx; the rest for size (32 KB of flash)
    "avr": ("avr-", "gcc-avr avr-libc", [f"-mmcu={board.get('build.mcu')}", "-fno-ivopts", "-fno-strict-aliasing",
                                         "-mcall-prologues", "-mrelax", "-mstrict-X", "-fno-tree-switch-conversion",
                                         "-Waddr-space-convert"], []),
}
# C99 everywhere; GNU C on AVR, whose named address spaces (__memx, __flash) hold the model
C_STD = {"avr": "-std=gnu99"}
arch = board.get("tbn.arch")
if arch not in TOOLCHAINS:
    raise SystemExit(f"tbn-bare: board {board.id!r} has tbn.arch {arch!r}; known: {', '.join(TOOLCHAINS)}")
prefix, packages, cpu_flags, libc_flags = TOOLCHAINS[arch]
if shutil.which(prefix + "gcc") is None:
    raise SystemExit(f"tbn-bare: {prefix}gcc not found (Debian: apt-get install {packages})")

# -Os unless TBN_OPT says otherwise (benchmarks/mcu.py builds every runtime at -Os and -O2)
opt = os.environ.get("TBN_OPT", "-Os")
if opt not in ("-Os", "-O2", "-O3"):
    raise SystemExit(f"tbn-bare: TBN_OPT={opt!r} is not -Os, -O2 or -O3")
# AVR links with LTO (about 20% smaller): archives need gcc-ar's plugin
ar = "gcc-ar" if "-flto" in cpu_flags else "ar"
env.Replace(
    AR=prefix + ar,
    AS=prefix + "as",
    CC=prefix + "gcc",
    CXX=prefix + "g++",
    OBJCOPY=prefix + "objcopy",
    RANLIB=prefix + ("gcc-ranlib" if ar == "gcc-ar" else "ranlib"),
    SIZETOOL=prefix + "size",
    SIZEPROGREGEXP=r"^(?:\.isr_vector|\.text|\.rodata|\.ARM\.exidx|\.data)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.bss|\.stack)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    PROGSUFFIX=".elf",
)
env.Append(
    ASFLAGS=cpu_flags,
    ASPPFLAGS=["-x", "assembler-with-cpp"],
    CCFLAGS=cpu_flags + [opt, "-g", "-ffunction-sections", "-fdata-sections", "-Wall", "-Wextra", "-Werror"],
    CFLAGS=[C_STD.get(arch, "-std=c99")],
    LINKFLAGS=cpu_flags + ([] if arch == "avr" else ["-nostartfiles"]) + [*libc_flags, "-Wl,--gc-sections"],
    LIBS=["m"],
)

program = env.BuildProgram()
AlwaysBuild(env.Alias("checkprogsize", program, env.VerboseAction(env.CheckUploadSize, "Checking size $PIOMAINPROG")))
Default(program)
