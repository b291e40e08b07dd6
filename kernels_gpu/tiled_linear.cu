// tiled_linear.cu -- tiled Linear on the GPU: GEMV, GEMM, and the pieces of the
// tensor-core route (unpack the D distinct sign rows once, multiply, scale-expand).
//
// Every kernel reads the tile exactly as the bytecode stores it (tbn_tiled.cuh). Entry
// points are extern "C", one per activation type: _f32, _f16, _bf16 (float accumulation)
// and _i32 (INT8 models: inputs already offset by the zero point, exact int32 sums).
#include "tbn_tiled.cuh"

namespace tbn {

// Sign dot product of tile row `c` (elements c*K .. c*K+K-1, mod T) with x[0..K), by one warp.
template <typename T, typename Acc>
__device__ __forceinline__ Acc warp_row_dot(const T *__restrict__ x, int K, const uint32_t *__restrict__ tile,
                                            uint64_t n_bits, int c) {
    const int lane = threadIdx.x & 31;
    const uint64_t start = ((uint64_t)c * (uint64_t)K) % n_bits;
    Acc acc = 0;
    if ((start & 31u) == 0 && (K & 31) == 0 && start + (uint64_t)K <= n_bits) {
        // aligned: the warp takes one tile word per step, lane l its bit l
        const uint32_t *w = tile + (start >> 5);
        for (int i = 0; i < (K >> 5); ++i) {
            const uint32_t word = __ldg(w + i);
            const Acc v = (Acc)to_float_or_int(x[(i << 5) + lane]);
            acc += ((word >> lane) & 1u) ? v : -v;
        }
    } else {
        // the tile restarts inside the row (p does not divide O), or K is not a multiple of 32
        uint64_t e = (start + (uint64_t)lane) % n_bits;
        for (int k = lane; k < K; k += 32) {
            const Acc v = (Acc)to_float_or_int(x[k]);
            acc += tile_bit(tile, e) ? v : -v;
            e += 32;
            while (e >= n_bits) e -= n_bits;
        }
    }
    return warp_sum(acc);
}

// One warp per (distinct row c < D, input n); writes the p outputs c + r*D of row n.
template <typename T>
__device__ void tiled_gemv(const T *__restrict__ x, int N, int K, const uint32_t *__restrict__ tile,
                           uint64_t n_bits, int D, int O, Epilogue ep, T *__restrict__ y) {
    const long long warp = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    if (warp >= (long long)N * D) return;  // uniform across the warp
    const int c = (int)(warp % D), n = (int)(warp / D);
    float sum = warp_row_dot<T, float>(x + (size_t)n * K, K, tile, n_bits, c);
    sum = __shfl_sync(0xffffffffu, sum, 0);
    for (int r = threadIdx.x & 31; r < O / D; r += 32) {
        const int o = c + r * D;
        y[(size_t)n * O + o] = from_float<T>(ep.apply(sum, o, r));
    }
}

// INT8 models: raw int32 sums of the D distinct rows, (N, D); requantisation follows on the host side.
__device__ void tiled_gemv_raw(const int32_t *__restrict__ x, int N, int K, const uint32_t *__restrict__ tile,
                               uint64_t n_bits, int D, int32_t *__restrict__ y) {
    const long long warp = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    if (warp >= (long long)N * D) return;
    const int c = (int)(warp % D), n = (int)(warp / D);
    const int sum = warp_row_dot<int32_t, int>(x + (size_t)n * K, K, tile, n_bits, c);
    if ((threadIdx.x & 31) == 0) y[(size_t)n * D + c] = sum;
}

// GEMM for the aligned case (K % 32 == 0, p divides O): a block computes 32 distinct rows
// for 32 inputs; the rows' tile words and the inputs' values for 128 k at a time are staged
// in shared memory, each tile word serving 32 inputs. 256 threads: thread t owns row t % 32
// and inputs 4*(t / 32) .. +3.
constexpr int GEMM_ROWS = 32, GEMM_COLS = 32, GEMM_WORDS = 4, GEMM_THREADS = 256;

template <typename T>
__device__ void tiled_gemm(const T *__restrict__ x, int N, int K, const uint32_t *__restrict__ tile, int D, int O,
                           Epilogue ep, T *__restrict__ y) {
    __shared__ uint32_t s_bits[GEMM_WORDS][GEMM_ROWS];
    __shared__ float s_x[GEMM_COLS][GEMM_WORDS * 32 + 1];
    const int t = threadIdx.x;
    const int c0 = blockIdx.x * GEMM_ROWS, n0 = blockIdx.y * GEMM_COLS;
    const int row = t & 31, col = (t >> 5) * 4;
    const int words = K >> 5;
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int w0 = 0; w0 < words; w0 += GEMM_WORDS) {
        if (t < GEMM_WORDS * GEMM_ROWS) {
            const int wi = t / GEMM_ROWS, r = t % GEMM_ROWS, c = c0 + r;
            s_bits[wi][r] = (c < D && w0 + wi < words) ? __ldg(tile + (size_t)c * words + w0 + wi) : 0u;
        }
        for (int i = t; i < GEMM_COLS * GEMM_WORDS * 32; i += GEMM_THREADS) {
            const int j = i / (GEMM_WORDS * 32), kk = i % (GEMM_WORDS * 32);
            const int n = n0 + j, k = (w0 << 5) + kk;
            s_x[j][kk] = (n < N && k < K) ? to_float(x[(size_t)n * K + k]) : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int wi = 0; wi < GEMM_WORDS; ++wi) {
            const uint32_t bits = s_bits[wi][row];
#pragma unroll 8
            for (int l = 0; l < 32; ++l) {
                const bool plus = (bits >> l) & 1u;
#pragma unroll
                for (int q = 0; q < 4; ++q) {
                    const float v = s_x[col + q][wi * 32 + l];
                    acc[q] += plus ? v : -v;
                }
            }
        }
        __syncthreads();
    }
    const int c = c0 + row;
    if (c >= D) return;
    for (int q = 0; q < 4; ++q) {
        const int n = n0 + col + q;
        if (n >= N) continue;
        for (int r = 0; r < O / D; ++r) y[(size_t)n * O + c + r * D] = from_float<T>(ep.apply(acc[q], c + r * D, r));
    }
}

// The D distinct sign rows as a dense (D, K) matrix of +1/-1, for a tensor-core GEMM.
template <typename T>
__device__ void unpack_signs(const uint32_t *__restrict__ tile, uint64_t n_bits, int D, int K, T *__restrict__ s) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)D * K) return;
    const int c = (int)(i / K), k = (int)(i % K);
    s[i] = from_float<T>(tile_bit(tile, ((uint64_t)c * K + k) % n_bits) ? 1.0f : -1.0f);
}

// y (N, O) from the distinct sums (N, D): output o = c + r*D is sums[c] scaled for o and r.
template <typename T>
__device__ void scale_expand(const T *__restrict__ sums, int N, int D, int O, Epilogue ep, T *__restrict__ y) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)N * O) return;
    const int n = (int)(i / O), o = (int)(i % O);
    y[i] = from_float<T>(ep.apply(to_float(sums[(size_t)n * D + o % D]), o, o / D));
}

}  // namespace tbn

#define TBN_EPILOGUE tbn::Epilogue{scale, scale_mode, has_bias ? bias : nullptr, act}

#define TBN_LINEAR_KERNELS(SUFFIX, T)                                                                             \
    extern "C" __global__ void tbn_tiled_gemv_##SUFFIX(const T *x, int N, int K, const uint32_t *tile,            \
                                                       unsigned long long n_bits, int D, int O, const float *scale, \
                                                       int scale_mode, const float *bias, int has_bias, int act,   \
                                                       T *y) {                                                    \
        tbn::tiled_gemv<T>(x, N, K, tile, n_bits, D, O, TBN_EPILOGUE, y);                                         \
    }                                                                                                             \
    extern "C" __global__ void __launch_bounds__(tbn::GEMM_THREADS)                                               \
        tbn_tiled_gemm_##SUFFIX(const T *x, int N, int K, const uint32_t *tile, int D, int O, const float *scale,  \
                                int scale_mode, const float *bias, int has_bias, int act, T *y) {                  \
        tbn::tiled_gemm<T>(x, N, K, tile, D, O, TBN_EPILOGUE, y);                                                 \
    }                                                                                                             \
    extern "C" __global__ void tbn_unpack_signs_##SUFFIX(const uint32_t *tile, unsigned long long n_bits, int D,  \
                                                         int K, T *s) {                                           \
        tbn::unpack_signs<T>(tile, n_bits, D, K, s);                                                              \
    }                                                                                                             \
    extern "C" __global__ void tbn_scale_expand_##SUFFIX(const T *sums, int N, int D, int O, const float *scale,   \
                                                         int scale_mode, const float *bias, int has_bias, int act, \
                                                         T *y) {                                                  \
        tbn::scale_expand<T>(sums, N, D, O, TBN_EPILOGUE, y);                                                     \
    }

TBN_LINEAR_KERNELS(f32, float)
TBN_LINEAR_KERNELS(f16, __half)
TBN_LINEAR_KERNELS(bf16, __nv_bfloat16)

extern "C" __global__ void tbn_tiled_gemv_raw_i32(const int32_t *x, int N, int K, const uint32_t *tile,
                                                  unsigned long long n_bits, int D, int32_t *y) {
    tbn::tiled_gemv_raw(x, N, K, tile, n_bits, D, y);
}
