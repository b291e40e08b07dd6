#!/usr/bin/env bash
# Check every tool the build and tests need by doing its job once, and install the Debian
# packages behind whatever fails. A binary that merely exists is not enough: Debian's clang
# without libclang-rt-dev has no libFuzzer, a cross gcc without its libc cannot link.
#
#   tools/deps.sh           check, install what is missing (as root), check again
#   tools/deps.sh --check   check only; exit 1 naming what is missing
#
# PYTHON (default python3) is the interpreter `make setup` builds .venv from.
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
CHECK_ONLY=${1:-}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# capability | Debian packages that provide it | how it is checked (a function below)
CAPABILITIES=(
  "host C compiler links an ASan+UBSan binary|gcc libc6-dev|cc_sanitizers"
  "clang links a libFuzzer+ASan+UBSan binary|clang libclang-rt-dev|clang_fuzzer"
  "arm-none-eabi-gcc links a Cortex-M7 program against newlib-nano|gcc-arm-none-eabi libnewlib-arm-none-eabi|arm_link"
  "riscv64-unknown-elf-gcc links an rv32imac program against picolibc|gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf|riscv_link"
  "qemu-system-arm boots a Cortex-M image and knows every Arm board's machine|qemu-system-arm|qemu_boot"
  "qemu-system-riscv32 knows every RISC-V board's machine|qemu-system-misc|qemu_riscv"
  "avr-gcc links an ATmega328P program against avr-libc|gcc-avr avr-libc|avr_link"
  "libsimavr links the AVR boards' emulator (firmware/sim)|libsimavr-dev gcc|simavr_link"
  "$PYTHON makes a venv with pip|python3-venv|python_venv"
  "make and x86_64-linux-gnu-gcc build MicroPython's unix port and an x64 native module|make gcc|mpy_host"
)
# nvcc is not a Debian package (the CUDA toolkit comes with the machine, where it does); where
# it is present it needs a host C++ compiler to compile kernels_gpu/.
NVCC=$(command -v nvcc || { [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc; } || true)
[ -n "$NVCC" ] && CAPABILITIES+=("nvcc compiles a CUDA kernel|g++|nvcc_compile")

cc_sanitizers() {
  printf 'int main(void){int a[2]={0,1};return a[1]-1;}\n' > "$WORK/san.c"
  cc -fsanitize=address,undefined "$WORK/san.c" -o "$WORK/san" && "$WORK/san"
}

clang_fuzzer() {
  printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n){(void)d;(void)n;return 0;}\n' \
    > "$WORK/fuzz.c"
  clang -fsanitize=fuzzer,address,undefined "$WORK/fuzz.c" -o "$WORK/fuzz" && "$WORK/fuzz" -runs=10
}

arm_link() {
  printf '#include <string.h>\nint main(void){char b[8];return (int)strlen(strcpy(b,"tbn"));}\n' > "$WORK/arm.c"
  arm-none-eabi-gcc -mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-d16 --specs=nano.specs \
    --specs=nosys.specs "$WORK/arm.c" -o "$WORK/arm.elf"
}

riscv_link() {
  printf '#include <string.h>\nint main(void){char b[8];return (int)strlen(strcpy(b,"tbn"));}\n' > "$WORK/rv.c"
  riscv64-unknown-elf-gcc -march=rv32imac -mabi=ilp32 --specs=picolibc.specs "$WORK/rv.c" -o "$WORK/rv.elf"
}

avr_link() {
  printf '#include <avr/pgmspace.h>\nconst char s[] PROGMEM = "tbn";\nint main(void){return (int)strlen_P(s);}\n' > "$WORK/avr.c"
  avr-gcc -mmcu=atmega328p -Os "$WORK/avr.c" -o "$WORK/avr.elf"
}

simavr_link() {
  cc -I/usr/include/simavr firmware/sim/tbn_simavr.c -lsimavr -o "$WORK/tbn-simavr"
}

# A two-word vector table and a semihosting exit: QEMU returns the guest's exit code 0.
qemu_boot() {
  cat > "$WORK/boot.S" <<'EOF'
  .syntax unified
  .thumb
  .section .vectors, "a"
  .word 0x20001000
  .word reset + 1
  .text
  .thumb_func
reset:
  movs r0, #0x18        @ SYS_EXIT
  ldr r1, =0x20026      @ ADP_Stopped_ApplicationExit
  bkpt 0xab
  b .
EOF
  arm-none-eabi-gcc -mcpu=cortex-m7 -mthumb -nostdlib -Wl,--section-start=.vectors=0 -Wl,-Ttext=0x100 \
    "$WORK/boot.S" -o "$WORK/boot.elf" || return 1
  timeout 20 qemu-system-arm -M mps2-an500 -nographic -monitor none -serial none -icount shift=0 \
    -semihosting-config enable=on,target=native -kernel "$WORK/boot.elf" || return 1
  board_machines qemu-system-arm
}

# Every QEMU machine the board descriptions (boards/*.json) boot with emulator $1 is known to it.
board_machines() {
  local machine machines
  machines=$("$1" -M help) || return 1
  for machine in $("$PYTHON" -c 'import json, pathlib, sys
for p in sorted(pathlib.Path("boards").glob("*.json")):
    e = json.loads(p.read_text())["tbn"].get("emulator", [])
    if e and e[0] == sys.argv[1]:
        print(e[e.index("-M") + 1])' "$1"); do
    grep -q "^$machine " <<<"$machines" || { echo "$1 has no machine $machine"; return 1; }
  done
}

qemu_riscv() {
  board_machines qemu-system-riscv32
}

nvcc_compile() {
  printf 'extern "C" __global__ void k(float *x) { x[threadIdx.x] *= 2.0f; }\n' > "$WORK/k.cu"
  "$NVCC" -fatbin -arch=sm_80 "$WORK/k.cu" -o "$WORK/k.fatbin"
}

mpy_host() {
  printf 'int f(int x){return x+1;}\n' > "$WORK/nat.c"
  make --version > /dev/null && x86_64-linux-gnu-gcc -fpic -c "$WORK/nat.c" -o "$WORK/nat.o"
}

python_venv() {
  "$PYTHON" -m venv "$WORK/venv" && "$WORK/venv/bin/python" -m pip --version
}

# Runs every check; prints the packages of the failing ones on stdout, reasons on stderr.
failing_packages() {
  local entry what pkgs fn
  for entry in "${CAPABILITIES[@]}"; do
    IFS='|' read -r what pkgs fn <<<"$entry"
    if ! "$fn" > "$WORK/$fn.log" 2>&1; then
      echo "deps: missing: $what (packages: $pkgs)" >&2
      sed 's/^/deps:   /' "$WORK/$fn.log" | tail -3 >&2
      echo "$pkgs"
    fi
  done
}

missing=$(failing_packages | tr '\n' ' ')
if [ -z "${missing// /}" ]; then
  echo "deps: every toolchain works (${#CAPABILITIES[@]} capabilities checked)"
  exit 0
fi
if [ "$CHECK_ONLY" = --check ]; then
  echo "deps: install with: apt-get install --no-install-recommends $missing" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "deps: run as root (sudo make deps), or: apt-get install --no-install-recommends $missing" >&2
  exit 1
fi
echo "deps: installing $missing"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086  # $missing is a list of package names
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; } > "$WORK/apt.log" 2>&1; then
  tail -20 "$WORK/apt.log" >&2
  echo "deps: apt-get install $missing failed (log above)" >&2
  exit 1
fi
still=$(failing_packages | tr '\n' ' ')
if [ -n "${still// /}" ]; then
  echo "deps: installed, but these still fail: $still" >&2
  exit 1
fi
echo "deps: every toolchain works (${#CAPABILITIES[@]} capabilities checked)"
