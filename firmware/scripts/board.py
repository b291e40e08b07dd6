"""PlatformIO pre-script: turn boards/<board>.json's "tbn" section into a build.

The section is read by tbn.boards.section, the host's own reader (the schema's defaults and
checks), imported from this checkout's host/ (it needs the standard library only).

Adds the board's core support (arch/<arch>/: startup, timer and cost, linker script template),
its HAL file, the generated linker script, and the defines the app reads (TBN_BOARD_NAME,
TBN_CLOCK_HZ, TBN_TIMER_HZ, TBN_SLOT_BYTES, TBN_ARENA_BYTES, TBN_FRAME_BYTES, TBN_COST_ICOUNT,
TBN_FRAME_TIMEOUT_MS, TBN_UART_IRQ), and,
when the TBN_MODEL environment variable names a .tbn file, embeds that model in flash
(TBN_BUILD_DEFINES: the runtime's op subset, from tbn.device.build).
"""

import hashlib
import os
import shutil
import sys

Import("env")  # type: ignore[name-defined]  # noqa: F821

env = env  # type: ignore[name-defined]  # noqa: F821,PLW0127
board = env.BoardConfig()
build_dir = env.subst("$BUILD_DIR")
project_dir = env.subst("$PROJECT_DIR")
sys.path.insert(0, os.path.join(project_dir, "..", "host"))
from tbn.boards import section  # noqa: E402

tbn = section({"tbn": board.get("tbn")}, "firmware", f"boards/{env.subst('$BOARD')}.json")
os.makedirs(build_dir, exist_ok=True)

arch_dir = os.path.join(project_dir, "arch", tbn["arch"])
if tbn["arch"] == "avr":
    # the runtime's manifest asks for C99; AVR needs GNU C for __memx (the builder's -std=gnu99)
    env.Append(BUILD_UNFLAGS=["-std=c99"])
flags = list(tbn["cflags"])
env.Append(CCFLAGS=flags, ASFLAGS=flags, LINKFLAGS=flags,
           CPPPATH=[os.path.join(project_dir, "app"), arch_dir])
env.Append(CPPDEFINES=[
    ("TBN_BOARD_NAME", env.StringifyMacro(env.subst("$BOARD"))),
    ("TBN_CLOCK_HZ", f"{int(tbn['clock_hz'])}u"),
    ("TBN_SLOT_BYTES", f"{int(tbn['slot_bytes'])}u"),
    ("TBN_ARENA_BYTES", f"{int(tbn['arena_bytes'])}u"),
    ("TBN_COST_ICOUNT", "1" if tbn["cost_unit"] == "instructions" else "0"),
    ("TBN_FRAME_TIMEOUT_MS", f"{int(tbn['frame_timeout_ms'])}u"),
    ("TBN_UART_IRQ", f"{int(tbn['uart_irq'])}u"),
])
# optional: a core timer apart from the core clock (RISC-V's mtime); a frame buffer smaller
# than the protocol's largest (boards with little RAM)
for key, define in (("timer_hz", "TBN_TIMER_HZ"), ("frame_bytes", "TBN_FRAME_BYTES"),
                    ("rx_ring_bytes", "TBN_RX_RING_BYTES")):
    if tbn[key] is not None:
        env.Append(CPPDEFINES=[(define, f"{int(tbn[key])}u")])

# TBN_PROTOCOL=mlperf: the app answers MLCommons' runner (app/mlperf.c) instead of tbn's framed
# protocol (app/commands.c), for the model embedded, named TBN_MLPERF_MODEL, whose input is
# TBN_DB_BYTES bytes (tbn.device.build sets all three)
mlperf = os.environ.get("TBN_PROTOCOL") == "mlperf"
env.Append(CPPDEFINES=[("TBN_PROTOCOL_MLPERF", "1" if mlperf else "0")])
if mlperf:
    env.Append(CPPDEFINES=[("TBN_MLPERF_MODEL", env.StringifyMacro(os.environ["TBN_MLPERF_MODEL"])),
                           ("TBN_DB_BYTES", f"{int(os.environ['TBN_DB_BYTES'])}u")])
    # TBN_MLPERF_ENERGY_BAUD: its energy mode, the UART at that rate (timestamps on a pin)
    if os.environ.get("TBN_MLPERF_ENERGY_BAUD"):
        env.Append(CPPDEFINES=[("TBN_MLPERF_ENERGY", "1"),
                               ("TBN_UART_BAUD", f"{int(os.environ['TBN_MLPERF_ENERGY_BAUD'])}u")])

model = os.environ.get("TBN_MODEL")
if model:
    data = open(model, "rb").read()
    # the copy's name carries its hash, so a changed model changes the flags and rebuilds
    copy = os.path.join(build_dir, f"model-{hashlib.sha256(data).hexdigest()[:16]}.tbn")
    if not os.path.exists(copy):
        shutil.copyfile(model, copy)
    env.Append(CPPDEFINES=[("TBN_EMBEDDED_MODEL", "1"), ("TBN_MODEL_PATH", env.StringifyMacro(copy))])
else:
    env.Append(CPPDEFINES=[("TBN_EMBEDDED_MODEL", "0")])

# TBN_BUILD_DEFINES (tbn.device.build.runtime_subset): build the runtime with one model's ops only
subset = os.environ.get("TBN_BUILD_DEFINES")
if subset:
    env.Append(CPPDEFINES=[tuple(d.split("=", 1)) for d in subset.split()])

# TBN_BACKEND names a PlatformIO script that adds another kernel library for some ops
# (tbn_interp.c's TBN_OP_BACKEND): benchmarks/cmsis/backend.py builds CMSIS-NN in.
backend = os.environ.get("TBN_BACKEND")
if backend:
    env.SConscript(backend, exports="env")

# the board's memory map, from the arch's template (AVR: the toolchain's own script, by -mmcu)
if os.path.exists(os.path.join(arch_dir, "link.ld")):
    template = open(os.path.join(arch_dir, "link.ld")).read()
    script = (template.replace("@FLASH_ORIGIN@", tbn["flash_origin"])
              .replace("@FLASH_SIZE@", str(board.get("upload.maximum_size")))
              .replace("@RAM_ORIGIN@", tbn["ram_origin"])
              .replace("@RAM_SIZE@", str(board.get("upload.maximum_ram_size")))
              .replace("@STACK_SIZE@", str(tbn["stack_bytes"])))
    ldscript = os.path.join(build_dir, "board.ld")
    if not os.path.exists(ldscript) or open(ldscript).read() != script:
        with open(ldscript, "w") as f:
            f.write(script)
    env.Replace(LDSCRIPT_PATH=ldscript)
env.BuildSources(os.path.join("$BUILD_DIR", "arch"), arch_dir, src_filter=["+<*.c>", "+<*.S>"])
env.BuildSources(os.path.join("$BUILD_DIR", "hal"), os.path.join(project_dir, "hal"),
                 src_filter=["-<*>", f"+<{tbn['hal']}.c>"])
