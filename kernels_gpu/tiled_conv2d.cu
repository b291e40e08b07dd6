// tiled_conv2d.cu -- tiled Conv2d on the GPU, reading the input directly (no im2col buffer).
//
// One warp per (distinct output channel c < D, output position): the warp walks the
// K = (C/g) * kh * kw weights of that channel through the tile, zero padding, stride,
// dilation and groups as in docs/bytecode.md, and writes the p channels c + r*D that share
// these signs. With groups > 1 the caller passes D = O (channels of different groups read
// different inputs, so no two share a dot product).
#include "tbn_tiled.cuh"

namespace tbn {

struct ConvShape {
    int N, C, H, W, O, Ho, Wo, kh, kw, sh, sw, dh, dw, pt, pl, groups;
};

template <typename T, typename Acc>
__device__ __forceinline__ Acc warp_conv_dot(const T *__restrict__ x, const ConvShape &s, const uint32_t *__restrict__ tile,
                                             uint64_t n_bits, int c, int n, int ho, int wo) {
    const int lane = threadIdx.x & 31;
    const int cg = s.C / s.groups, khw = s.kh * s.kw, K = cg * khw;
    const int g = c / (s.O / s.groups);
    const T *xg = x + ((size_t)n * s.C + (size_t)g * cg) * s.H * s.W;
    uint64_t e = (((uint64_t)c * (uint64_t)K) % n_bits + (uint64_t)lane) % n_bits;
    Acc acc = 0;
    for (int k = lane; k < K; k += 32) {
        const int ci = k / khw, rem = k % khw, i = rem / s.kw, j = rem % s.kw;
        const int h = ho * s.sh - s.pt + i * s.dh, w = wo * s.sw - s.pl + j * s.dw;
        if (h >= 0 && h < s.H && w >= 0 && w < s.W) {
            const Acc v = (Acc)to_float_or_int(xg[((size_t)ci * s.H + h) * s.W + w]);
            acc += tile_bit(tile, e) ? v : -v;
        }
        e += 32;
        while (e >= n_bits) e -= n_bits;
    }
    return warp_sum(acc);
}

template <typename T>
__device__ void tiled_conv2d(const T *__restrict__ x, ConvShape s, const uint32_t *__restrict__ tile, uint64_t n_bits,
                             int D, Epilogue ep, T *__restrict__ y) {
    const long long warp = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const long long positions = (long long)s.N * s.Ho * s.Wo;
    if (warp >= positions * D) return;  // uniform across the warp
    const int c = (int)(warp % D);
    const long long pos = warp / D;
    const int wo = (int)(pos % s.Wo), ho = (int)((pos / s.Wo) % s.Ho), n = (int)(pos / ((long long)s.Wo * s.Ho));
    float sum = warp_conv_dot<T, float>(x, s, tile, n_bits, c, n, ho, wo);
    sum = __shfl_sync(0xffffffffu, sum, 0);
    for (int r = threadIdx.x & 31; r < s.O / D; r += 32) {
        const int o = c + r * D;
        y[(((size_t)n * s.O + o) * s.Ho + ho) * s.Wo + wo] = from_float<T>(ep.apply(sum, o, r));
    }
}

// INT8 models: raw int32 sums, (N, D, Ho, Wo); inputs already offset by the zero point,
// so padded positions (which hold the zero point) contribute 0 as the spec says.
__device__ void tiled_conv2d_raw(const int32_t *__restrict__ x, ConvShape s, const uint32_t *__restrict__ tile,
                                 uint64_t n_bits, int D, int32_t *__restrict__ y) {
    const long long warp = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const long long positions = (long long)s.N * s.Ho * s.Wo;
    if (warp >= positions * D) return;
    const int c = (int)(warp % D);
    const long long pos = warp / D;
    const int wo = (int)(pos % s.Wo), ho = (int)((pos / s.Wo) % s.Ho), n = (int)(pos / ((long long)s.Wo * s.Ho));
    const int sum = warp_conv_dot<int32_t, int>(x, s, tile, n_bits, c, n, ho, wo);
    if ((threadIdx.x & 31) == 0) y[(((size_t)n * D + c) * s.Ho + ho) * s.Wo + wo] = sum;
}

}  // namespace tbn

// geometry: int32[16] = N C H W O Ho Wo kh kw sh sw dh dw pt pl groups
#define TBN_CONV_SHAPE(g) \
    tbn::ConvShape{g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]}

#define TBN_CONV_KERNELS(SUFFIX, T)                                                                              \
    extern "C" __global__ void tbn_tiled_conv2d_##SUFFIX(const T *x, const int *geometry, const uint32_t *tile,  \
                                                         unsigned long long n_bits, int D, const float *scale,   \
                                                         int scale_mode, const float *bias, int has_bias,        \
                                                         int act, T *y) {                                        \
        __shared__ int g[16];                                                                                    \
        if (threadIdx.x < 16) g[threadIdx.x] = geometry[threadIdx.x];                                            \
        __syncthreads();                                                                                         \
        tbn::tiled_conv2d<T>(x, TBN_CONV_SHAPE(g), tile, n_bits, D,                                              \
                             tbn::Epilogue{scale, scale_mode, has_bias ? bias : nullptr, act}, y);               \
    }

TBN_CONV_KERNELS(f32, float)
TBN_CONV_KERNELS(f16, __half)
TBN_CONV_KERNELS(bf16, __nv_bfloat16)

extern "C" __global__ void tbn_tiled_conv2d_raw_i32(const int32_t *x, const int *geometry, const uint32_t *tile,
                                                    unsigned long long n_bits, int D, int32_t *y) {
    __shared__ int g[16];
    if (threadIdx.x < 16) g[threadIdx.x] = geometry[threadIdx.x];
    __syncthreads();
    tbn::tiled_conv2d_raw(x, TBN_CONV_SHAPE(g), tile, n_bits, D, y);
}
