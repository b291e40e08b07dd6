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
}
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
env.Replace(
    AR=prefix + "ar",
    AS=prefix + "as",
    CC=prefix + "gcc",
    CXX=prefix + "g++",
    OBJCOPY=prefix + "objcopy",
    RANLIB=prefix + "ranlib",
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
    CFLAGS=["-std=c99"],
    LINKFLAGS=cpu_flags + ["-nostartfiles", *libc_flags, "-Wl,--gc-sections"],
    LIBS=["m"],
)

program = env.BuildProgram()
AlwaysBuild(env.Alias("checkprogsize", program, env.VerboseAction(env.CheckUploadSize, "Checking size $PIOMAINPROG")))
Default(program)
