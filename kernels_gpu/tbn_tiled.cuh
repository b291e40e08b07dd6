// tbn_tiled.cuh -- shared device helpers of the tiled-bit kernels (docs/bytecode.md,
// "Weights of linear and conv ops").
//
// A tiled layer's weight is w(o, k) = sigma(o, k) * t[(o*K + k) mod T]: T packed tile bits,
// LSB-first in little-endian 32-bit words, a set bit +1 and a clear bit -1. When p = O*K/T
// divides O, output rows o and o + D (D = O/p) share their signs, so the kernels compute
// the D distinct sign dot products once and write each of them p times, scaled.
#ifndef TBN_TILED_CUH
#define TBN_TILED_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "tbn_format.h"

namespace tbn {

// How sigma is stored: one value per output, one per repetition of the tile, or one; and the
// fused activations. The values are the bytecode's (tbn_format.h, generated from the spec).
enum ScaleMode {
    SCALE_PER_OUTPUT = TBN_SCALE_PER_OUTPUT,
    SCALE_PER_REPETITION = TBN_SCALE_PER_REPETITION,
    SCALE_SINGLE = TBN_SCALE_ONE
};
enum Activation { ACT_NONE = TBN_ACT_NONE, ACT_RELU = TBN_ACT_RELU, ACT_RELU6 = TBN_ACT_RELU6 };

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

__device__ __forceinline__ int to_float_or_int(int32_t v) { return v; }
__device__ __forceinline__ float to_float_or_int(float v) { return v; }
__device__ __forceinline__ float to_float_or_int(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float_or_int(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}

// Tile element e (0 <= e < T): 1 for +1, 0 for -1.
__device__ __forceinline__ uint32_t tile_bit(const uint32_t *tile, uint64_t e) {
    return (tile[e >> 5] >> (e & 31u)) & 1u;
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ int warp_sum(int v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
    return v;
}

// Scale, bias and activation of output o of repetition r (o = c + r*D).
struct Epilogue {
    const float *scale;
    int scale_mode;
    const float *bias;  // NULL: none
    int act;

    __device__ __forceinline__ float apply(float sum, int o, int r) const {
        float s = scale_mode == SCALE_PER_OUTPUT ? scale[o] : scale_mode == SCALE_PER_REPETITION ? scale[r] : scale[0];
        float v = sum * s + (bias ? bias[o] : 0.0f);
        if (act == ACT_RELU) v = fmaxf(v, 0.0f);
        if (act == ACT_RELU6) v = fminf(fmaxf(v, 0.0f), 6.0f);
        return v;
    }
};

}  // namespace tbn

#endif  // TBN_TILED_CUH
