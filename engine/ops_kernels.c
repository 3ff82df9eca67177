/* ops_kernels.c — the engine's own kernels, compiled once per CPU tier
 * (meson builds this file with -mavx512*, with -mavx2 -mfma and with
 * nothing, naming the table VLM_KERNELS_NAME); ops_tier.c picks the table of the
 * tier vlm_cpu_tier() reports, so a DNNL_MAX_CPU_ISA / VLM_MAX_CPU_ISA cap
 * holds for them as for oneDNN. Nothing here is called except through the
 * table: no code of a higher tier can run on a lower one. */
#include "ops_kernels.h"
#include "cpu.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

/* the helpers below are always inlined into the table's functions: no
 * vector crosses a call */
#pragma GCC diagnostic ignored "-Wpsabi"

/* ------------------------------------------------------------ decode GEMV
 *
 * A few rows of input (m <= VLM_GEMV_MAX_ROWS) against weights in HF's
 * layout, [n][ldw] rows of f32 or bf16 (bf16 is f32's top half: widening
 * is a shift). Each output is a dot product streamed along its row, one
 * weight row after the other, so a block of rows is one run of memory read
 * from start to end, with a software prefetch ROW_PREFETCH_BYTES ahead.
 * Four rows side by side (four streams a few KB apart, each input vector
 * reused four times), measured with two threads capped to AVX2 on a Zen 5
 * VM, read 16–25 GB/s in bf16 and 21–30 in f32 (rows of 768–4864: the
 * prefetcher does not follow four interleaved streams within a page); one
 * row at a time with the prefetch, 43–45 in both. The input stays in L1 or
 * L2. VLM_VEC floats a vector: the tier's register width; two accumulators
 * per input row (the FMA latency), summed in the same order for every m, so
 * a row's result does not depend on the rows batched with it. */
typedef float Vf __attribute__ ((vector_size (VLM_VEC * 4)));
typedef float Vfu __attribute__ ((vector_size (VLM_VEC * 4), aligned (4), may_alias));
typedef uint16_t Vh __attribute__ ((vector_size (VLM_VEC * 2)));
typedef uint16_t Vhu __attribute__ ((vector_size (VLM_VEC * 2), aligned (2), may_alias));
typedef uint32_t Vu __attribute__ ((vector_size (VLM_VEC * 4)));

/* The prefetch by vendor, as the blocked kernel's (ops_gemv.c). AMD (Zen 5):
 * into L1, 2 KiB ahead. Intel (a Sapphire Rapids VM, probe of the engine's
 * linear from DRAM, two threads): into L2 (T1) 4 KiB ahead reads bf16 rows
 * at 28–30 GB/s against 22–26 (768- and 4096-wide rows, the `avx512`
 * tier), f32 rows (`avx2`) 29–31 against 26–27; T0 4 KiB ahead read less
 * (20–22), T1 2 KiB ahead in between. The s8 rows below keep AMD's
 * prefetch on Intel too: there T1 4 KiB ahead read 26.7–27.2 against
 * 28.3–28.6 GB/s at 4096-wide rows, 26.6 against 24.5–24.8 at 768. */
#define ROW_PREFETCH_BYTES 2048
#define ROW_PREFETCH_BYTES_INTEL 4096

static inline __attribute__ ((always_inline)) void
row_prefetch (const char *p, const int intel)
{
  if (intel)
    __builtin_prefetch (p + ROW_PREFETCH_BYTES_INTEL, 0, 2);
  else
    __builtin_prefetch (p + ROW_PREFETCH_BYTES, 0, 3);
}

static inline __attribute__ ((always_inline)) Vf
load_w (const void *w, size_t i, const int bf16)
{
  if (bf16) {
    /* one vpmovzxwd where the tier has it: GCC 12 splits the generic
     * conversion into halves and inserts (5 instructions a vector, which
     * held AVX2's bf16 decode to 10 GB/s) */
#if VLM_VEC == 16 && defined(__AVX512F__)
    __m512i u = _mm512_cvtepu16_epi32 (_mm256_loadu_si256 ((const __m256i *) ((const uint16_t *) w + i)));
    return (Vf) _mm512_slli_epi32 (u, 16);
#elif VLM_VEC == 8 && defined(__AVX2__)
    __m256i u = _mm256_cvtepu16_epi32 (_mm_loadu_si128 ((const __m128i *) ((const uint16_t *) w + i)));
    return (Vf) _mm256_slli_epi32 (u, 16);
#else
    Vu u = __builtin_convertvector (*(const Vhu *) ((const uint16_t *) w + i), Vu) << 16;
    return (Vf) u;
#endif
  }
  return *(const Vfu *) ((const float *) w + i);
}

static inline __attribute__ ((always_inline)) float
w_at (const void *w, size_t i, const int bf16)
{
  if (!bf16)
    return ((const float *) w)[i];
  uint32_t u = (uint32_t) ((const uint16_t *) w)[i] << 16;
  float f;
  memcpy (&f, &u, 4);
  return f;
}

/* out[r · 64] = Σ_t x[r · k + t] · w[t] for r < M, w one weight row */
static inline __attribute__ ((always_inline)) void
row_dot (const void *w, const int bf16, const float *x, int k, const int M, const int intel, float *out)
{
  const size_t es = bf16 ? 2 : 4;
  const char *bytes = (const char *) w;
  Vf acc[VLM_GEMV_MAX_ROWS][2] = { { { 0 } } };
  int k0 = k - k % (2 * VLM_VEC);
  for (int t = 0; t < k0; t += 2 * VLM_VEC) {
    if (t * es % 64 == 0)   /* a line a prefetch: bf16 on AVX2 every other step */
      for (size_t b = 0; b < 2 * VLM_VEC * es; b += 64) row_prefetch (bytes + t * es + b, intel);
    Vf w0 = load_w (w, t, bf16), w1 = load_w (w, t + VLM_VEC, bf16);
#pragma GCC unroll 4
    for (int r = 0; r < M; r++) {
      acc[r][0] += *(const Vfu *) (x + (size_t) r * k + t) * w0;
      acc[r][1] += *(const Vfu *) (x + (size_t) r * k + t + VLM_VEC) * w1;
    }
  }
  for (int r = 0; r < M; r++) {
    Vf a = acc[r][0] + acc[r][1];
    float s = 0.0f;
    for (int l = 0; l < VLM_VEC; l++) s += a[l];
    for (int t = k0; t < k; t++) s += x[(size_t) r * k + t] * w_at (w, t, bf16);
    out[r * 64] = s;
  }
}

#define ROWS_BLOCK(M, BF16, INTEL)                                                           \
  G_STMT_START {                                                                             \
    for (int j = 0; j < len; j++) row_dot (bw + j * ldw * es, BF16, x, k, M, INTEL, out + j); \
  } G_STMT_END

#define ROWS_BY_SHAPE(INTEL)                                                                 \
  G_STMT_START {                                                                             \
    switch (m * 2 + (bf16 ? 1 : 0)) {                                                        \
      case 2: ROWS_BLOCK (1, 0, INTEL); break;                                               \
      case 3: ROWS_BLOCK (1, 1, INTEL); break;                                               \
      case 4: ROWS_BLOCK (2, 0, INTEL); break;                                               \
      case 5: ROWS_BLOCK (2, 1, INTEL); break;                                               \
      case 6: ROWS_BLOCK (3, 0, INTEL); break;                                               \
      case 7: ROWS_BLOCK (3, 1, INTEL); break;                                               \
      case 8: ROWS_BLOCK (4, 0, INTEL); break;                                               \
      case 9: ROWS_BLOCK (4, 1, INTEL); break;                                               \
      default: g_assert_not_reached ();                                                      \
    }                                                                                        \
  } G_STMT_END

static void
gemv_rows (const void *w, size_t ldw, gboolean bf16, int len, const float *x, int k, int m, float *out)
{
  const char *bw = w;
  size_t es = bf16 ? 2 : 4;
  if (vlm_cpu_intel ())
    ROWS_BY_SHAPE (1);
  else
    ROWS_BY_SHAPE (0);
}

/* ------------------------------------------------------------ decode GEMV, int8
 *
 * s8 weight rows [n][ldw] against u8 input rows (each quantised on its own,
 * ops_dnnl.c), summed exactly in s32; the caller scales back to f32. One
 * dot product per output as above, one weight row × M rows at a time, then one
 * horizontal sum per accumulator. A step is QB bytes of k:
 * - VNNI (avx512vnni table): vpdpbusd adds four u8·s8 products to each
 *   s32 lane, no intermediate saturation: 8-bit weights;
 * - AVX-512BW / AVX2: vpmaddubsw adds pairs of u8·s8 products in s16
 *   (saturating), vpmaddwd by ones widens pairs of those to s32. With
 *   7-bit weights a pair is at most 2 · 255 · 63 < 32767: exact;
 * - generic: plain integer loops. */
#if VLM_VEC == 16
typedef __m512i Vq;
#define QB 64
#define q_load(p) _mm512_load_si512 ((const void *) (p))
#define q_zero() _mm512_setzero_si512 ()
#define q_sum(a) _mm512_reduce_add_epi32 (a)
#ifdef __AVX512VNNI__
#define q_dot(acc, x, w) _mm512_dpbusd_epi32 ((acc), (x), (w))
#else
#define q_dot(acc, x, w) _mm512_add_epi32 ((acc), _mm512_madd_epi16 (_mm512_maddubs_epi16 ((x), (w)), _mm512_set1_epi16 (1)))
#endif
#elif VLM_VEC == 8
typedef __m256i Vq;
#define QB 32
#define q_load(p) _mm256_load_si256 ((const __m256i *) (p))
#define q_zero() _mm256_setzero_si256 ()
#define q_dot(acc, x, w) _mm256_add_epi32 ((acc), _mm256_madd_epi16 (_mm256_maddubs_epi16 ((x), (w)), _mm256_set1_epi16 (1)))

static inline __attribute__ ((always_inline)) int32_t
q_sum (__m256i a)
{
  __m128i s = _mm_add_epi32 (_mm256_castsi256_si128 (a), _mm256_extracti128_si256 (a, 1));
  s = _mm_add_epi32 (s, _mm_shuffle_epi32 (s, _MM_SHUFFLE (1, 0, 3, 2)));
  s = _mm_add_epi32 (s, _mm_shuffle_epi32 (s, _MM_SHUFFLE (2, 3, 0, 1)));
  return _mm_cvtsi128_si32 (s);
}
#endif

#ifdef QB
/* out[r · 64] = Σ_t x[r · kpad + t] · w[t] for r < M, w one weight row:
 * one row at a time with a prefetch ahead, as row_dot (with four rows side
 * by side the AVX2 kernel read 33–34 GB/s where the f32 one read 44) */
static inline __attribute__ ((always_inline)) void
row_dot_s8 (const int8_t *w, const uint8_t *x, int kpad, const int M, int32_t *out)
{
  Vq acc[VLM_GEMV_MAX_ROWS][2];   /* two chains: vpdpbusd's latency */
#pragma GCC unroll 4
  for (int r = 0; r < M; r++) acc[r][0] = acc[r][1] = q_zero ();
  int t = 0;
  for (; t + 2 * QB <= kpad; t += 2 * QB) {
    if (t % 64 == 0)
      __builtin_prefetch ((const char *) w + ROW_PREFETCH_BYTES + t);
    if (QB == 64)
      __builtin_prefetch ((const char *) w + ROW_PREFETCH_BYTES + t + 64);
    Vq w0 = q_load (w + t), w1 = q_load (w + t + QB);
#pragma GCC unroll 4
    for (int r = 0; r < M; r++) {
      acc[r][0] = q_dot (acc[r][0], q_load (x + (size_t) r * kpad + t), w0);
      acc[r][1] = q_dot (acc[r][1], q_load (x + (size_t) r * kpad + t + QB), w1);
    }
  }
  if (t < kpad)
#pragma GCC unroll 4
    for (int r = 0; r < M; r++) acc[r][0] = q_dot (acc[r][0], q_load (x + (size_t) r * kpad + t), q_load (w + t));
#pragma GCC unroll 4
  for (int r = 0; r < M; r++) out[r * 64] = q_sum (acc[r][0]) + q_sum (acc[r][1]);
}

#define ROWS_S8_BLOCK(M)                                                                \
  G_STMT_START {                                                                        \
    for (int j = 0; j < len; j++) row_dot_s8 (w + j * ldw, x, kpad, M, out + j);       \
  } G_STMT_END

static void
gemv_rows_s8 (const int8_t *w, size_t ldw, int len, const uint8_t *x, int kpad, int m, int32_t *out)
{
  switch (m) {
    case 1: ROWS_S8_BLOCK (1); break;
    case 2: ROWS_S8_BLOCK (2); break;
    case 3: ROWS_S8_BLOCK (3); break;
    case 4: ROWS_S8_BLOCK (4); break;
    default: g_assert_not_reached ();
  }
}
#else
static void
gemv_rows_s8 (const int8_t *w, size_t ldw, int len, const uint8_t *x, int kpad, int m, int32_t *out)
{
  for (int r = 0; r < m; r++)
    for (int j = 0; j < len; j++) {
      int32_t s = 0;
      for (int t = 0; t < kpad; t++) s += (int32_t) x[(size_t) r * kpad + t] * w[j * ldw + t];
      out[r * 64 + j] = s;
    }
}
#endif

/* dst[i] = bf16 src[i] widened, n values (a bf16 weight's rows for an f32 matmul) */
static void
bf16_to_f32 (const uint16_t *src, size_t n, float *dst)
{
  size_t i = 0;
  for (; i + VLM_VEC <= n; i += VLM_VEC) *(Vfu *) (dst + i) = load_w (src, i, 1);
  for (; i < n; i++) dst[i] = w_at (src, i, 1);
}

/* ------------------------------------------------------------ decode attention
 *
 * Over transposed keys: a kv head's keys and values are read once for all
 * the query rows that share them (its group of heads × lq), blocks of up to
 * VLM_DECODE_MAX_ROWS rows at a time.
 *
 * Both passes stream memory in address order. Scores walk each key row
 * (one head dimension, all keys) from start to end, accumulating into the
 * rows' score vectors, which stay in L1 (keys in chunks of SCORE_CHUNK_BYTES
 * of scores); a head's keys are then one run of memory. The context takes
 * a value row's dims of this head in one pass where the accumulators fit in
 * registers. Blocks of 32 keys × every dimension (64 rows 5 KB apart) and
 * two passes over the values, measured for GIT's visual keys (1200 keys,
 * 12 heads, 6 layers) with two threads under the AVX2 cap, ran at 6 GB/s;
 * this order at 19–20, the DRAM bandwidth. */

typedef float Vf16 __attribute__ ((vector_size (64)));
typedef float Vf16u __attribute__ ((vector_size (64), aligned (4), may_alias));

#define SCORE_CHUNK_BYTES 16384   /* the rows' scores of one chunk of keys: in L1 */
#define VALUE_PREFETCH 16         /* value rows ahead */
#define CONTEXT_REGS 8            /* accumulator registers the context may use */

/* sr[r][j] = scale · qr[r] · k_j for keys j < lk of kt [hd rows, stride ldkt], f32 or bf16 */
static inline __attribute__ ((always_inline)) void
kt_scores (const float *const *qr, const int R, const void *kt, int ldkt, const int bf16, int hd, int lk,
           float scale, float *const *sr)
{
  int chunk = MAX (VLM_VEC, SCORE_CHUNK_BYTES / (4 * R) / VLM_VEC * VLM_VEC);
  size_t es = bf16 ? 2 : 4;
  for (int c0 = 0; c0 < lk; c0 += chunk) {
    int c1 = MIN (lk, c0 + chunk), cv = c0 + (c1 - c0) / VLM_VEC * VLM_VEC;
    for (int r = 0; r < R; r++) memset (sr[r] + c0, 0, (c1 - c0) * sizeof (float));
    for (int d = 0; d < hd; d++) {
      const void *kd = (const char *) kt + (size_t) d * ldkt * es;
      Vf qd[VLM_DECODE_MAX_ROWS];
#pragma GCC unroll 8
      for (int r = 0; r < R; r++) qd[r] = (Vf) { 0 } + qr[r][d];
      for (int j = c0; j < cv; j += VLM_VEC) {
        Vf k = load_w (kd, j, bf16);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) *(Vfu *) (sr[r] + j) += qd[r] * k;
      }
      for (int j = cv; j < c1; j++)
        for (int r = 0; r < R; r++) sr[r][j] += qr[r][d] * w_at (kd, j, bf16);
    }
    for (int r = 0; r < R; r++)
      for (int j = c0; j < c1; j++) sr[r][j] *= scale;
  }
}

/* or[r][d0 .. d0 + P) = Σ_{j < lk} pr[r][j] · v_j[d0 ..] for v [lk rows,
 * stride ldv]: P / VLM_VEC accumulators per row */
static inline __attribute__ ((always_inline)) void
v_context_pass (const float *const *pr, const int R, const void *v, int ldv, const int bf16, int lk, int d0,
                const int P, float *const *or)
{
  enum { NV = 64 / VLM_VEC };   /* vectors in the widest pass (64 dims) */
  Vf a[VLM_DECODE_MAX_ROWS][NV] = { { { 0 } } };
  const int nv = P / VLM_VEC;
  const size_t es = bf16 ? 2 : 4;
  for (int j = 0; j < lk; j++) {
    const char *vj = (const char *) v + ((size_t) j * ldv + d0) * es;
    const char *ahead = vj + (size_t) VALUE_PREFETCH * ldv * es;
#pragma GCC unroll 4
    for (size_t b = 0; b < P * es; b += 64) __builtin_prefetch (ahead + b);
    Vf x[NV];
#pragma GCC unroll 16
    for (int c = 0; c < nv; c++) x[c] = load_w (vj, c * VLM_VEC, bf16);
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
      float p = pr[r][j];
#pragma GCC unroll 16
      for (int c = 0; c < nv; c++) a[r][c] += p * x[c];
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; r++)
#pragma GCC unroll 16
    for (int c = 0; c < nv; c++) *(Vfu *) (or[r] + d0 + c * VLM_VEC) = a[r][c];
}

/* the widest pass (64, 32, 16 or 8 dims: a multiple of VLM_VEC) whose R
 * rows of accumulators fit in CONTEXT_REGS registers, over hd % 16 == 0 */
static inline __attribute__ ((always_inline)) void
v_context (const float *const *pr, const int R, const void *v, int ldv, const int bf16, int hd, int lk,
           float *const *or)
{
  const int P = R * 64 / VLM_VEC <= CONTEXT_REGS ? 64
                : R * 32 / VLM_VEC <= CONTEXT_REGS ? 32
                : R * 16 / VLM_VEC <= CONTEXT_REGS || VLM_VEC > 8 ? 16
                                                                 : 8;
  int d0 = 0;
  for (; d0 + P <= hd; d0 += P) v_context_pass (pr, R, v, ldv, bf16, lk, d0, P, or);
  for (; d0 < hd; d0 += 16) v_context_pass (pr, R, v, ldv, bf16, lk, d0, 16, or);
}

typedef int32_t Vi16 __attribute__ ((vector_size (64)));

/* e^x, x ≤ 0 (max-subtracted scores): x = n·ln 2 + r with |r| ≤ ln 2 / 2,
 * Cephes' expf polynomial for e^r (within 2 ulp of libm), 2^n through the
 * exponent bits; below -87.3 (masked keys) exactly 0, as libm's expf. */
static inline __attribute__ ((always_inline)) Vf16
exp16 (Vf16 x)
{
  const float magic = 12582912.0f;   /* 1.5 · 2^23: adding it rounds to an integer */
  Vf16 n = (x * 1.44269504088896341f + magic) - magic;
  Vf16 r = x - n * 0.693359375f + n * 2.12194440e-4f;
  Vf16 p = 1.9875691500e-4f * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  Vi16 ni = __builtin_convertvector (n, Vi16);
  Vi16 keep = x > -87.3f;   /* all ones where kept */
  Vi16 bits = ((Vi16) p + (ni << 23)) & keep;
  return (Vf16) bits;
}

/* In place over one row of n scores. */
static inline __attribute__ ((always_inline)) void
softmax_row (float *x, int n)
{
  float max = x[0], sum = 0.0f;
  for (int j = 1; j < n; j++) max = x[j] > max ? x[j] : max;
  int j = 0;
  Vf16 acc = { 0 };
  for (; j + 16 <= n; j += 16) {
    Vf16 e = exp16 (*(Vf16u *) (x + j) - max);
    *(Vf16u *) (x + j) = e;
    acc += e;
  }
  for (int t = 0; t < 16; t++) sum += acc[t];
  for (; j < n; j++) sum += (x[j] = expf (x[j] - max));
  float inv = 1.0f / sum;
  for (j = 0; j < n; j++) x[j] *= inv;
}

/* R query rows of one kv head: scores, mask (row r sees keys < lim[r]),
 * softmax, context. Keys at or past every row's limit are skipped. */
static inline __attribute__ ((always_inline)) void
attend_rows_of (const float *const *qr, int R, const int *lim, const void *kt, int ldkt, const void *v,
                int ldv, const int bf16, int hd, float scale, float *const *sr, float *const *or)
{
  int lk = 0;
  for (int r = 0; r < R; r++) lk = MAX (lk, lim[r]);
  switch (R) {
#define SCORES_CASE(n) case n: kt_scores (qr, n, kt, ldkt, bf16, hd, lk, scale, sr); break;
    SCORES_CASE (1) SCORES_CASE (2) SCORES_CASE (3) SCORES_CASE (4)
    SCORES_CASE (5) SCORES_CASE (6) SCORES_CASE (7) SCORES_CASE (8)
#undef SCORES_CASE
    default: g_assert_not_reached ();
  }
  for (int r = 0; r < R; r++) {
    for (int j = lim[r]; j < lk; j++) sr[r][j] = -INFINITY;
    softmax_row (sr[r], lk);
  }
  const float *const *pr = (const float *const *) sr;
  switch (R) {
#define CONTEXT_CASE(n) case n: v_context (pr, n, v, ldv, bf16, hd, lk, or); break;
    CONTEXT_CASE (1) CONTEXT_CASE (2) CONTEXT_CASE (3) CONTEXT_CASE (4)
    CONTEXT_CASE (5) CONTEXT_CASE (6) CONTEXT_CASE (7) CONTEXT_CASE (8)
#undef CONTEXT_CASE
    default: g_assert_not_reached ();
  }
}


static void
attend_rows (const float *const *qr, int R, const int *lim, const void *kt, int ldkt, const void *v, int ldv,
             gboolean kv_bf16, int hd, float scale, float *const *sr, float *const *or)
{
  if (kv_bf16)
    attend_rows_of (qr, R, lim, kt, ldkt, v, ldv, 1, hd, scale, sr, or);
  else
    attend_rows_of (qr, R, lim, kt, ldkt, v, ldv, 0, hd, scale, sr, or);
}

/* ------------------------------------------------------------ activations
 *
 * The decode GEMV's epilogue, 16 values at a time: every activation as
 * x · sigmoid(z) or through erf's e^{-y²}, so that one exp (exp16, over
 * arguments ≤ 0) serves them all. PyTorch's definitions (ops_act.c) hold:
 * gelu_tanh's 0.5 (1 + tanh u) is sigmoid(2u), and
 * sigmoid(z) = (z ≥ 0 ? 1 : t) / (1 + t) with t = e^{-|z|} ≤ 1. erf is
 * Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7): 1 − erf(|y|) = P(s) e^{-y²},
 * s = 1 / (1 + p|y|), so gelu_erf's 1 + erf(y) is 2 − P e^{-y²} for y ≥ 0
 * and P e^{-y²} itself below, without cancellation where it is small.
 * test_ops bounds each against the definition in double. */
static inline __attribute__ ((always_inline)) Vf16
select16 (Vi16 mask, Vf16 a, Vf16 b)
{
  return (Vf16) (((Vi16) a & mask) | ((Vi16) b & ~mask));
}

static inline __attribute__ ((always_inline)) Vf16
abs16 (Vf16 x)
{
  return (Vf16) ((Vi16) x & 0x7fffffff);
}

static inline __attribute__ ((always_inline)) Vf16
times_sigmoid16 (Vf16 x, Vf16 z)
{
  Vf16 t = exp16 (-abs16 (z)), one = (Vf16) { 0 } + 1.0f;
  return x * (select16 (z >= 0.0f, one, t) / (one + t));
}

static inline __attribute__ ((always_inline)) Vf16
act16 (VlmAct act, Vf16 x)
{
  switch (act) {
    case VLM_ACT_GELU_TANH:
      return times_sigmoid16 (x, 1.5957691216057308f * (x + 0.044715f * x * x * x));   /* 2 sqrt(2/pi) */
    case VLM_ACT_QUICK_GELU: return times_sigmoid16 (x, 1.702f * x);
    case VLM_ACT_SILU: return times_sigmoid16 (x, x);
    case VLM_ACT_GELU_ERF: {
      Vf16 y = abs16 (x) * 0.70710678118654752f, s = 1.0f / (1.0f + 0.3275911f * y);
      Vf16 p = 1.061405429f * s - 1.453152027f;
      p = p * s + 1.421413741f;
      p = p * s - 0.284496736f;
      p = p * s + 0.254829592f;
      Vf16 q = p * s * exp16 (-(y * y));   /* 1 - erf(|y|) */
      return 0.5f * x * select16 (x >= 0.0f, 2.0f - q, q);
    }
    case VLM_ACT_RELU: return select16 (x > 0.0f, x, (Vf16) { 0 });
    case VLM_ACT_NONE: break;
  }
  return x;
}

static void
act (VlmAct a, float *x, size_t n)
{
  if (a == VLM_ACT_NONE)
    return;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) *(Vf16u *) (x + i) = act16 (a, *(Vf16u *) (x + i));
  if (i < n) {   /* the tail through the same lanes */
    float t[16] = { 0 };
    memcpy (t, x + i, (n - i) * sizeof (float));
    *(Vf16u *) t = act16 (a, *(Vf16u *) t);
    memcpy (x + i, t, (n - i) * sizeof (float));
  }
}

/* ------------------------------------------------------------ u8 input quantisation
 *
 * An int8 linear's input in u8 (ops_dnnl.c: the range, then the levels).
 * Every tier gives the same bytes: q = clamp(rne(x · inv) + zero, 0, 255),
 * the product rounded to float first (the generic table's 1.5 · 2^23 trick
 * is that rounding where no FMA can fuse it; the vector tiers round with
 * vroundps / vrndscaleps, which no compiler fuses with the product). NaNs
 * are left out of the range and quantise to 0, as in the comparisons of
 * the generic code. In plain C (the baseline SSE2 build) these took 13 % of
 * a git-base-vatex int8 caption under the AVX2 cap. */

#if VLM_VEC == 16 && defined(__AVX512F__)
static void
u8_quantise (const float *x, size_t n, float inv, float zero, uint8_t *q)
{
  const __m512 vi = _mm512_set1_ps (inv), vz = _mm512_set1_ps (zero), top = _mm512_set1_ps (255.0f);
  size_t i = 0;
  for (; i < n; i += 16) {
    __mmask16 k = n - i >= 16 ? 0xffff : (__mmask16) ((1u << (n - i)) - 1);
    __m512 p = _mm512_mul_ps (_mm512_maskz_loadu_ps (k, x + i), vi);
    __m512 v = _mm512_add_ps (_mm512_roundscale_ps (p, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), vz);
    v = _mm512_min_ps (_mm512_max_ps (v, _mm512_setzero_ps ()), top);   /* NaN → 0 */
    _mm_mask_storeu_epi8 (q + i, k, _mm512_cvtusepi32_epi8 (_mm512_cvttps_epi32 (v)));
  }
}
#elif VLM_VEC == 8 && defined(__AVX2__)
static inline __attribute__ ((always_inline)) float
hmin8 (__m256 v)
{
  __m128 m = _mm_min_ps (_mm256_castps256_ps128 (v), _mm256_extractf128_ps (v, 1));
  m = _mm_min_ps (m, _mm_movehl_ps (m, m));
  return _mm_cvtss_f32 (_mm_min_ss (m, _mm_shuffle_ps (m, m, 1)));
}

static inline __attribute__ ((always_inline)) float
hmax8 (__m256 v)
{
  __m128 m = _mm_max_ps (_mm256_castps256_ps128 (v), _mm256_extractf128_ps (v, 1));
  m = _mm_max_ps (m, _mm_movehl_ps (m, m));
  return _mm_cvtss_f32 (_mm_max_ss (m, _mm_shuffle_ps (m, m, 1)));
}

/* 8 levels as s32 */
static inline __attribute__ ((always_inline)) __m256i
u8_levels8 (const float *x, __m256 vi, __m256 vz)
{
  __m256 p = _mm256_mul_ps (_mm256_loadu_ps (x), vi);
  __m256 v = _mm256_add_ps (_mm256_round_ps (p, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), vz);
  v = _mm256_min_ps (_mm256_max_ps (v, _mm256_setzero_ps ()), _mm256_set1_ps (255.0f));   /* NaN → 0 */
  return _mm256_cvttps_epi32 (v);
}

static void
u8_quantise (const float *x, size_t n, float inv, float zero, uint8_t *q)
{
  const __m256 vi = _mm256_set1_ps (inv), vz = _mm256_set1_ps (zero);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    /* packs work within 128-bit lanes: dwords come out as a0 b0 c0 d0 a1 b1 c1 d1 */
    __m256i ab = _mm256_packus_epi32 (u8_levels8 (x + i, vi, vz), u8_levels8 (x + i + 8, vi, vz));
    __m256i cd = _mm256_packus_epi32 (u8_levels8 (x + i + 16, vi, vz), u8_levels8 (x + i + 24, vi, vz));
    __m256i b = _mm256_permutevar8x32_epi32 (_mm256_packus_epi16 (ab, cd), _mm256_setr_epi32 (0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256 ((__m256i *) (q + i), b);
  }
  if (i < n) {   /* the tail through the same lanes */
    float t[32] = { 0 };
    uint8_t b[32];
    memcpy (t, x + i, (n - i) * sizeof (float));
    u8_quantise (t, 32, inv, zero, b);
    memcpy (q + i, b, n - i);
  }
}
#else
static void
u8_quantise (const float *x, size_t n, float inv, float zero, uint8_t *q)
{
  for (size_t i = 0; i < n; i++) {
    /* adding and subtracting 1.5 · 2^23 rounds to nearest even (no FMA on this tier) */
    float v = ((x[i] * inv + 12582912.0f) - 12582912.0f) + zero;
    v = v > 0.0f ? v : 0.0f;
    q[i] = (uint8_t) (v < 255.0f ? v : 255.0f);
  }
}
#endif

#if VLM_VEC == 16 && defined(__AVX512F__)
typedef __m512 Vr;
#define VR_WIDTH 16
#define vr_set1 _mm512_set1_ps
#define vr_load _mm512_loadu_ps
#define vr_min _mm512_min_ps
#define vr_max _mm512_max_ps
#define vr_hmin _mm512_reduce_min_ps
#define vr_hmax _mm512_reduce_max_ps
#elif VLM_VEC == 8 && defined(__AVX2__)
typedef __m256 Vr;
#define VR_WIDTH 8
#define vr_set1 _mm256_set1_ps
#define vr_load _mm256_loadu_ps
#define vr_min _mm256_min_ps
#define vr_max _mm256_max_ps
#define vr_hmin hmin8
#define vr_hmax hmax8
#endif

static void
u8_range (const float *x, size_t n, float *lo, float *hi)
{
  /* comparisons, not fminf/fmaxf (min_ps(v, l) is v < l ? v : l): NaNs
   * are left out, and GCC vectorises the generic loop */
  float l = *lo, h = *hi;
  size_t i = 0;
#ifdef VR_WIDTH
  Vr lv = vr_set1 (l), hv = vr_set1 (h);
  for (; i + VR_WIDTH <= n; i += VR_WIDTH) {
    Vr v = vr_load (x + i);
    lv = vr_min (v, lv);
    hv = vr_max (v, hv);
  }
  l = vr_hmin (lv);
  h = vr_hmax (hv);
#endif
  for (; i < n; i++) {
    l = x[i] < l ? x[i] : l;
    h = x[i] > h ? x[i] : h;
  }
  *lo = l;
  *hi = h;
}

const VlmKernels VLM_KERNELS_NAME = { gemv_rows, gemv_rows_s8, bf16_to_f32, attend_rows, act, u8_range, u8_quantise };
