// tiled_linear.cu -- tiled Linear on the GPU: GEMV, GEMM, and the pieces of the
// tensor-core route (unpack the D distinct sign rows once, multiply, scale-expand).
//
// Every kernel reads the tile exactly as the bytecode stores it (tbn_tiled.cuh). Entry
// points are extern "C", one per activation type: _f32, _f16, _bf16 (float accumulation)
// and _i32 (INT8 models: inputs already offset by the zero point, exact int32 sums).
#include "tbn_tiled.cuh"

namespace tbn {

// Sum over 8 consecutive elements of x (16-byte aligned) of +x or -x by `bits` (LSB first):
// one or two 16-byte loads per lane instead of eight scalar ones.
template <typename T, typename Acc>
__device__ __forceinline__ Acc signed_sum8(const T *__restrict__ x, uint32_t bits) {
    constexpr int PER = 16 / (int)sizeof(T);  // elements per 16-byte load
    Acc acc = 0;
#pragma unroll
    for (int part = 0; part < 8 / PER; ++part) {
        const uint4 raw = __ldg(reinterpret_cast<const uint4 *>(x) + part);
        const T *v = reinterpret_cast<const T *>(&raw);
#pragma unroll
        for (int j = 0; j < PER; ++j) {
            const Acc a = (Acc)to_float_or_int(v[j]);
            acc += ((bits >> (part * PER + j)) & 1u) ? a : -a;
        }
    }
    return acc;
}

template <typename Acc> __device__ __forceinline__ Acc block_sum(Acc v) {
    __shared__ Acc partial[32];
    v = warp_sum(v);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    v = (int)threadIdx.x < (int)(blockDim.x >> 5) ? partial[lane] : (Acc)0;
    if (warp == 0) v = warp_sum(v);
    return v;  // valid in thread 0
}

// Sign dot product of tile row `c` (elements c*K .. c*K+K-1, mod T) with x[0..K), by one
// block. A GEMV is a few thousand rows at most, so a whole block per row (not a warp) is
// what keeps enough loads in flight to fill the GPU.
template <typename T, typename Acc>
__device__ __forceinline__ Acc block_row_dot(const T *__restrict__ x, int K, const uint32_t *__restrict__ tile,
                                             uint64_t n_bits, int c) {
    const uint64_t start = ((uint64_t)c * (uint64_t)K) % n_bits;
    Acc acc = 0;
    if ((start & 31u) == 0 && (K & 7) == 0 && start + (uint64_t)K <= n_bits && ((uintptr_t)x & 15u) == 0) {
        // aligned: thread takes 8 elements at a time, and their 8 bits, one byte of a tile word
        const uint32_t *w = tile + (start >> 5);
        for (int g = threadIdx.x; g < (K >> 3); g += blockDim.x) {
            const uint32_t bits = __ldg(w + (g >> 2)) >> ((g & 3) << 3);
            acc += signed_sum8<T, Acc>(x + ((size_t)g << 3), bits);
        }
    } else {
        // the tile restarts inside the row (p does not divide O), or K is not a multiple of 8
        uint64_t e = (start + threadIdx.x) % n_bits;
        const uint64_t step = (uint64_t)blockDim.x % n_bits;
        for (int k = threadIdx.x; k < K; k += blockDim.x) {
            const Acc v = (Acc)to_float_or_int(x[k]);
            acc += tile_bit(tile, e) ? v : -v;
            e += step;
            if (e >= n_bits) e -= n_bits;
        }
    }
    return block_sum(acc);
}

// One block per (distinct row c < D, input n); writes the p outputs c + r*D of row n.
template <typename T>
__device__ void tiled_gemv(const T *__restrict__ x, int N, int K, const uint32_t *__restrict__ tile,
                           uint64_t n_bits, int D, int O, Epilogue ep, T *__restrict__ y) {
    const int c = (int)(blockIdx.x % (unsigned)D), n = (int)(blockIdx.x / (unsigned)D);
    if (n >= N) return;  // uniform across the block
    __shared__ float total;
    const float sum = block_row_dot<T, float>(x + (size_t)n * K, K, tile, n_bits, c);
    if (threadIdx.x == 0) total = sum;
    __syncthreads();
    for (int r = threadIdx.x; r < O / D; r += blockDim.x) {
        const int o = c + r * D;
        y[(size_t)n * O + o] = from_float<T>(ep.apply(total, o, r));
    }
}

// INT8 models: raw int32 sums of the D distinct rows, (N, D); requantisation follows on the host side.
__device__ void tiled_gemv_raw(const int32_t *__restrict__ x, int N, int K, const uint32_t *__restrict__ tile,
                               uint64_t n_bits, int D, int32_t *__restrict__ y) {
    const int c = (int)(blockIdx.x % (unsigned)D), n = (int)(blockIdx.x / (unsigned)D);
    if (n >= N) return;
    const int sum = block_row_dot<int32_t, int>(x + (size_t)n * K, K, tile, n_bits, c);
    if (threadIdx.x == 0) y[(size_t)n * D + c] = sum;
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
// A thread owns 8 consecutive outputs: with D % 8 == 0 they share r and read 8 consecutive
// sums, so loads and stores are 16-byte vectors (the kernel is a pure memory stream).
// Grid (ceil(O / 8 / threads), min(N, 65535)).
constexpr int EXPAND = 8;

template <typename T>
__device__ void scale_expand(const T *__restrict__ sums, int N, int D, int O, Epilogue ep, T *__restrict__ y) {
    constexpr int WORDS = EXPAND * (int)sizeof(T) / 16;
    const int o0 = (blockIdx.x * blockDim.x + threadIdx.x) * EXPAND;
    if (o0 >= O) return;
    const bool vec = (D % EXPAND) == 0 && (((uintptr_t)sums | (uintptr_t)y) & 15u) == 0;
    const int r0 = o0 / D, c0 = o0 - r0 * D;
    for (int n = blockIdx.y; n < N; n += gridDim.y) {
        const T *s = sums + (size_t)n * D;
        T *out = y + (size_t)n * O;
        if (vec) {
            uint4 in[WORDS], res[WORDS];
#pragma unroll
            for (int w = 0; w < WORDS; ++w) in[w] = __ldg(reinterpret_cast<const uint4 *>(s + c0) + w);
            const T *a = reinterpret_cast<const T *>(in);
            T *b = reinterpret_cast<T *>(res);
#pragma unroll
            for (int j = 0; j < EXPAND; ++j) b[j] = from_float<T>(ep.apply(to_float(a[j]), o0 + j, r0));
#pragma unroll
            for (int w = 0; w < WORDS; ++w) reinterpret_cast<uint4 *>(out + o0)[w] = res[w];
        } else {
            for (int o = o0; o < min(o0 + EXPAND, O); ++o) {
                const int r = o / D;
                out[o] = from_float<T>(ep.apply(to_float(s[o - r * D]), o, r));
            }
        }
    }
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
