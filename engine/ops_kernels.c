/* ops_kernels.c — the engine's own kernels, compiled once per CPU tier
 * (meson builds this file with -mavx512*, with -mavx2 -mfma and with
 * nothing, naming the table VLM_KERNELS_NAME); ops.c picks the table of the
 * tier vlm_cpu_tier() reports, so a DNNL_MAX_CPU_ISA / VLM_MAX_CPU_ISA cap
 * holds for them as for oneDNN. Nothing here is called except through the
 * table: no code of a higher tier can run on a lower one. */
#include "ops_kernels.h"

#include <math.h>
#include <string.h>

/* the helpers below are always inlined into the table's functions: no
 * vector crosses a call */
#pragma GCC diagnostic ignored "-Wpsabi"

/* ------------------------------------------------------------ decode GEMV
 *
 * A few rows of input (m <= VLM_GEMV_MAX_ROWS) against weights in HF's
 * layout, [n][ldw] rows of f32 or bf16 (bf16 is f32's top half: widening
 * is a shift). Each output is a dot product streamed along its row; J
 * outputs at a time give J streams for the prefetcher and reuse each input
 * vector J times. VLM_VEC floats a vector: the tier's register width, so
 * the accumulators stay in registers. */
typedef float Vf __attribute__ ((vector_size (VLM_VEC * 4)));
typedef float Vfu __attribute__ ((vector_size (VLM_VEC * 4), aligned (4), may_alias));
typedef uint16_t Vh __attribute__ ((vector_size (VLM_VEC * 2)));
typedef uint16_t Vhu __attribute__ ((vector_size (VLM_VEC * 2), aligned (2), may_alias));
typedef uint32_t Vu __attribute__ ((vector_size (VLM_VEC * 4)));

static inline __attribute__ ((always_inline)) Vf
load_w (const void *w, size_t i, const int bf16)
{
  if (bf16) {
    Vu u = __builtin_convertvector (*(const Vhu *) ((const uint16_t *) w + i), Vu) << 16;
    return (Vf) u;
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

/* out[r · 64 + j] = Σ_t x[r · k + t] · w[j · ldw + t] for j < J, r < M */
static inline __attribute__ ((always_inline)) void
rows_dot (const void *w, size_t ldw, const int bf16, const float *x, int k, const int M, const int J,
          float *out)
{
  Vf acc[VLM_GEMV_MAX_ROWS][4] = { { { 0 } } };
  int k0 = k - k % VLM_VEC;
  for (int t = 0; t < k0; t += VLM_VEC) {
    Vf wv[4];
#pragma GCC unroll 4
    for (int j = 0; j < J; j++) wv[j] = load_w (w, j * ldw + t, bf16);
#pragma GCC unroll 4
    for (int r = 0; r < M; r++) {
      Vf xv = *(const Vfu *) (x + (size_t) r * k + t);
#pragma GCC unroll 4
      for (int j = 0; j < J; j++) acc[r][j] += xv * wv[j];
    }
  }
  for (int r = 0; r < M; r++)
    for (int j = 0; j < J; j++) {
      float s = 0.0f;
      for (int l = 0; l < VLM_VEC; l++) s += acc[r][j][l];
      for (int t = k0; t < k; t++) s += x[(size_t) r * k + t] * w_at (w, j * ldw + t, bf16);
      out[r * 64 + j] = s;
    }
}

/* J = 4 outputs a pass where the accumulators fit (m <= 2), else 2 */
#define ROWS_BLOCK(M, BF16)                                                              \
  G_STMT_START {                                                                         \
    const int J = (M) <= 2 ? 4 : 2;                                                      \
    int j = 0;                                                                           \
    for (; j + J <= len; j += J)                                                         \
      rows_dot (bw + j * ldw * es, ldw, BF16, x, k, M, J, out + j);                      \
    for (; j < len; j++) rows_dot (bw + j * ldw * es, ldw, BF16, x, k, M, 1, out + j);   \
  } G_STMT_END

static void
gemv_rows (const void *w, size_t ldw, gboolean bf16, int len, const float *x, int k, int m, float *out)
{
  const char *bw = w;
  size_t es = bf16 ? 2 : 4;
  switch (m * 2 + (bf16 ? 1 : 0)) {
    case 2: ROWS_BLOCK (1, 0); break;
    case 3: ROWS_BLOCK (1, 1); break;
    case 4: ROWS_BLOCK (2, 0); break;
    case 5: ROWS_BLOCK (2, 1); break;
    case 6: ROWS_BLOCK (3, 0); break;
    case 7: ROWS_BLOCK (3, 1); break;
    case 8: ROWS_BLOCK (4, 0); break;
    case 9: ROWS_BLOCK (4, 1); break;
    default: g_assert_not_reached ();
  }
}

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
 * VLM_VLM_DECODE_MAX_ROWS rows at a time. 64-byte GNU C vectors: one AVX-512
 * register, two AVX2 ones, four SSE ones. */

/* the helpers below are always inlined into the clones: no vector crosses a call */
typedef float Vf16 __attribute__ ((vector_size (64)));
typedef float Vf16u __attribute__ ((vector_size (64), aligned (4), may_alias));

#define KEY_BLOCK 32
#define KEY_PREFETCH 64     /* floats ahead in each key row */
#define VALUE_PREFETCH 32   /* value rows ahead */

/* a[r] += c[r][i] · (x0, x1) for rows r < R: one step of both kernels */
static inline __attribute__ ((always_inline)) void
axpy_rows (Vf16 (*a)[2], const int R, const float *const *c, int i, Vf16 x0, Vf16 x1)
{
#pragma GCC unroll 8
  for (int r = 0; r < R; r++) {
    float ci = c[r][i];
    a[r][0] += ci * x0;
    a[r][1] += ci * x1;
  }
}

/* sr[r][j] = scale · qr[r] · k_j for keys j < lk of kt [hd rows, stride ldkt] */
static inline __attribute__ ((always_inline)) void
kt_scores (const float *const *qr, const int R, const float *kt, int ldkt, int hd, int lk, float scale,
           float *const *sr)
{
  int j0 = 0;
  for (; j0 + KEY_BLOCK <= lk; j0 += KEY_BLOCK) {
    Vf16 a[VLM_DECODE_MAX_ROWS][2] = { { { 0 } } };
    for (int d = 0; d < hd; d++) {
      const float *kd = kt + (size_t) d * ldkt + j0;
      __builtin_prefetch (kd + KEY_PREFETCH);
      __builtin_prefetch (kd + KEY_PREFETCH + 16);
      Vf16 k0 = *(const Vf16u *) kd, k1 = *(const Vf16u *) (kd + 16);
      axpy_rows (a, R, qr, d, k0, k1);
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
      *(Vf16u *) (sr[r] + j0) = a[r][0] * scale;
      *(Vf16u *) (sr[r] + j0 + 16) = a[r][1] * scale;
    }
  }
  for (int r = 0; r < R; r++)
    for (int j = j0; j < lk; j++) {
      float acc = 0.0f;
      for (int d = 0; d < hd; d++) acc += qr[r][d] * kt[(size_t) d * ldkt + j];
      sr[r][j] = acc * scale;
    }
}

/* or[r] = Σ_{j < lk} pr[r][j] · v_j for v [lk rows, stride ldv], hd % 16 == 0:
 * 32 dims (two cache lines of a row) per pass, so each pass streams half
 * of every row */
static inline __attribute__ ((always_inline)) void
v_context (const float *const *pr, const int R, const float *v, int ldv, int hd, int lk, float *const *or)
{
  int d0 = 0;
  for (; d0 + 32 <= hd; d0 += 32) {
    Vf16 a[VLM_DECODE_MAX_ROWS][2] = { { { 0 } } };
    for (int j = 0; j < lk; j++) {
      const float *vj = v + (size_t) j * ldv + d0;
      __builtin_prefetch (vj + (size_t) VALUE_PREFETCH * ldv);
      __builtin_prefetch (vj + (size_t) VALUE_PREFETCH * ldv + 16);
      Vf16 v0 = *(const Vf16u *) vj, v1 = *(const Vf16u *) (vj + 16);
      axpy_rows (a, R, pr, j, v0, v1);
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
      *(Vf16u *) (or[r] + d0) = a[r][0];
      *(Vf16u *) (or[r] + d0 + 16) = a[r][1];
    }
  }
  for (; d0 < hd; d0 += 16) {
    Vf16 a[VLM_DECODE_MAX_ROWS] = { { 0 } };
    for (int j = 0; j < lk; j++) {
      Vf16 vj = *(const Vf16u *) (v + (size_t) j * ldv + d0);
#pragma GCC unroll 8
      for (int r = 0; r < R; r++) a[r] += pr[r][j] * vj;
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) *(Vf16u *) (or[r] + d0) = a[r];
  }
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
static void
attend_rows (const float *const *qr, int R, const int *lim, const float *kt, int ldkt, const float *v,
             int ldv, int hd, float scale, float *const *sr, float *const *or)
{
  int lk = 0;
  for (int r = 0; r < R; r++) lk = MAX (lk, lim[r]);
  switch (R) {
#define SCORES_CASE(n) case n: kt_scores (qr, n, kt, ldkt, hd, lk, scale, sr); break;
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
#define CONTEXT_CASE(n) case n: v_context (pr, n, v, ldv, hd, lk, or); break;
    CONTEXT_CASE (1) CONTEXT_CASE (2) CONTEXT_CASE (3) CONTEXT_CASE (4)
    CONTEXT_CASE (5) CONTEXT_CASE (6) CONTEXT_CASE (7) CONTEXT_CASE (8)
#undef CONTEXT_CASE
    default: g_assert_not_reached ();
  }
}


const VlmKernels VLM_KERNELS_NAME = { gemv_rows, bf16_to_f32, attend_rows };
