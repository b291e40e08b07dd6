"""PlatformIO script (tbn-flash's TBN_BACKEND): build CMSIS-NN's s8 fully-connected,
convolution and depthwise convolution kernels and tbn_cmsis.c into the device app, with the
same compiler and flags as the rest (unused functions are dropped at link).

CMSIS_NN_DIR and CMSIS_CORE_INCLUDE come from benchmarks/cmsis/sources.py (the benchmark
sets them)."""

import os

Import("env")  # type: ignore[name-defined]  # noqa: F821

env = env  # type: ignore[name-defined]  # noqa: F821
checkout = os.path.dirname(os.path.abspath(env.subst("$PROJECT_DIR")))  # the project is firmware/
nn = os.environ["CMSIS_NN_DIR"]
runtime = [os.path.join(checkout, "firmware", "lib", "tbn", d) for d in ("src", "include")]
app = os.path.join(checkout, "firmware", "app")  # cost.h
env.Append(
    CPPPATH=[os.path.join(nn, "Include"), os.environ["CMSIS_CORE_INCLUDE"], *runtime, app],
    CPPDEFINES=[("TBN_OP_BACKEND", "tbn_cmsis_op"), "CMSIS_NN_USE_SINGLE_ROUNDING"],
)
env.BuildSources(os.path.join("$BUILD_DIR", "cmsis_nn"), os.path.join(nn, "Source"),
                 src_filter=["-<*>", "+<FullyConnectedFunctions/arm_fully_connected_s8.c>",
                             "+<FullyConnectedFunctions/arm_fully_connected_per_channel_s8.c>",
                             "+<ConvolutionFunctions/arm_convolve*_s8*.c>",
                             "+<ConvolutionFunctions/arm_depthwise_conv*_s8*.c>",
                             "+<ConvolutionFunctions/arm_nn_mat_mult*.c>",
                             "+<NNSupportFunctions/*.c>", "-<NNSupportFunctions/*f16*>",
                             "-<NNSupportFunctions/*f32*>"])
env.BuildSources(os.path.join("$BUILD_DIR", "tbn_cmsis"), os.path.join(checkout, "benchmarks", "cmsis"),
                 src_filter=["-<*>", "+<tbn_cmsis.c>"])
