/* ops_gemv.c — decode's linears: a few rows of input against a weight,
 * streamed once from memory, the outputs shared out over the threads.
 *
 * Three layouts. On AVX-512, a weight oneDNN packed for its matmul, read in
 * place (below): bf16 where the CPU has bf16 instructions, f32. Elsewhere
 * HF's own [n][k] rows, f32 or bf16, through the tier's dot-product kernel
 * (ops_kernels.c). int8
 * weights, on every tier: s8 rows (quantised per output channel at load),
 * which oneDNN's u8·s8 matmul also reads for more rows, against each input
 * row quantised on its own (u8 with a zero point: a row's result does not
 * depend on the rows batched with it), summed in s32 by the tier's kernel
 * and scaled back here: y[r] = sx[r] · sw[j] · (Σ xq[r] · q − zp[r] · Σ q)
 * + bias.
 *
 *
 * oneDNN 2.6 packs a bf16 matmul weight {k, n} for avx512_core_bf16 as
 * BA16a64b2a: blocks of 64 outputs, each a contiguous run over k in pairs,
 * [n/64][k/2][64][2]. One 64-byte load is 16 outputs × 2 inputs, exactly the
 * operand of vdpbf16ps, so a row of input costs one instruction per 64
 * bytes of weight and the loop streams each block from start to end. Its
 * f32 weights on AVX-512 (brgemm) are BA16a64b, [n/64][k][64]: the same
 * walk with one input a step and an FMA per 64 bytes. For
 * m = 1..4 rows this runs at the DRAM bandwidth oneDNN's own m = 1 matmul
 * falls 10–30 % short of here (docs/performance.md); larger m go to
 * oneDNN. The epilogue (bias, activation, residual) is applied per block
 * while it is in cache. */
#include "cpu.h"
#include "ops_gemv.h"

#include <immintrin.h>
#include <omp.h>
#include <string.h>

/* Prefetches, by vendor. AMD (Zen 4): one software prefetch per 4 KiB
 * page of weight, 16 KiB ahead of the loads (non-temporal: the line itself
 * is not what it is for). With 4 KiB pages the hardware prefetcher stops at
 * each page boundary and the stream waits for a page walk; touching each
 * page early hides both. Measured on a 4864 × 896 weight, alternating
 * variants 30 times: 57 GB/s without, 71 with this; 50–54 with a prefetch
 * of every line, which only adds work to a loop that is bound by DRAM.
 * Intel (a Sapphire Rapids VM, held, two threads): the page prefetch reads
 * 19–23.5 GB/s at 4096 × 11008 and 22–23 at git-base's 768-wide shapes, a
 * prefetch of every line into L2 (T1) 4 KiB ahead 28–29 and 26 (T0 28;
 * 2 or 8 KiB ahead 28–29; none 23). */
#define GEMV_PAGE_PAIRS 16          /* pairs of k (4 × 64 B) per 4 KiB */
#define GEMV_PREFETCH_AHEAD 256     /* 64-byte vectors: 16 KiB */
#define GEMV_LINE_AHEAD 64          /* 64-byte vectors: 4 KiB */

/* the most blocks of 64 outputs a thread takes at a time (16: 3 MB of a
 * 768-wide f32 weight); fewer where a weight has under 4 runs a thread */
#define GEMV_CHUNK 16

gboolean
vlm_gemv_bf16_supported (void)
{
  return vlm_cpu_native_bf16 ();
}

gboolean
vlm_gemv_f32_supported (void)
{
  return vlm_cpu_tier () >= VLM_CPU_AVX512;
}

#define GEMV_TARGET __attribute__ ((target ("avx512f,avx512bw,avx512bf16")))
#define GEMV_F32_TARGET __attribute__ ((target ("avx512f")))

/* The prefetch of a step p of a blocked kernel, 256 bytes of weight (4
 * vectors) a step; `lines`: Intel's every line, else AMD's every page. */
#define GEMV_PREFETCH(w, p, lines)                                                              \
  G_STMT_START {                                                                                \
    if (lines)                                                                                  \
      for (int c_ = 0; c_ < 4; c_++) _mm_prefetch ((const char *) ((w) + GEMV_LINE_AHEAD + c_), _MM_HINT_T1); \
    else if ((p) % GEMV_PAGE_PAIRS == 0)                                                        \
      _mm_prefetch ((const char *) ((w) + GEMV_PREFETCH_AHEAD), _MM_HINT_NTA);                  \
  } G_STMT_END

/* a blocked kernel's accumulators: 64 outputs (4 vectors) for each of M rows */
static inline __attribute__ ((always_inline)) GEMV_F32_TARGET void
acc_zero (__m512 acc[][4], const int M)
{
#pragma GCC unroll 4
  for (int r = 0; r < M; r++)
    for (int c = 0; c < 4; c++) acc[r][c] = _mm512_setzero_ps ();
}

static inline __attribute__ ((always_inline)) GEMV_F32_TARGET void
acc_store (__m512 acc[][4], const int M, float *out)
{
#pragma GCC unroll 4
  for (int r = 0; r < M; r++)
    for (int c = 0; c < 4; c++) _mm512_storeu_ps (out + r * 64 + c * 16, acc[r][c]);
}

/* acc[r][0..3] (64 outputs of row r) = Σ_p x_r[p] · w[p], pairs p < kp */
static inline __attribute__ ((always_inline)) GEMV_TARGET void
gemv_block (const __m512i *w, const uint32_t *x, int ldx, int kp, const int M, const int lines, float *out)
{
  __m512 acc[VLM_GEMV_MAX_ROWS][4];
  acc_zero (acc, M);
  for (int p = 0; p < kp; p++, w += 4) {
    GEMV_PREFETCH (w, p, lines);
    __m512bh w0 = (__m512bh) _mm512_load_si512 (w), w1 = (__m512bh) _mm512_load_si512 (w + 1);
    __m512bh w2 = (__m512bh) _mm512_load_si512 (w + 2), w3 = (__m512bh) _mm512_load_si512 (w + 3);
#pragma GCC unroll 4
    for (int r = 0; r < M; r++) {
      __m512bh xr = (__m512bh) _mm512_set1_epi32 ((int) x[(size_t) r * ldx + p]);
      acc[r][0] = _mm512_dpbf16_ps (acc[r][0], xr, w0);
      acc[r][1] = _mm512_dpbf16_ps (acc[r][1], xr, w1);
      acc[r][2] = _mm512_dpbf16_ps (acc[r][2], xr, w2);
      acc[r][3] = _mm512_dpbf16_ps (acc[r][3], xr, w3);
    }
  }
  acc_store (acc, M, out);
}

/* The same over f32 weights blocked as [kpad][64] (one input a step): the
 * padding past k is zeros, so the steps stop at k. */
static inline __attribute__ ((always_inline)) GEMV_F32_TARGET void
gemv_block_f32 (const __m512 *w, const float *x, int ldx, int k, const int M, const int lines, float *out)
{
  __m512 acc[VLM_GEMV_MAX_ROWS][4];
  acc_zero (acc, M);
  for (int p = 0; p < k; p++, w += 4) {
    GEMV_PREFETCH (w, p, lines);
    __m512 w0 = _mm512_load_ps (w), w1 = _mm512_load_ps (w + 1), w2 = _mm512_load_ps (w + 2), w3 = _mm512_load_ps (w + 3);
#pragma GCC unroll 4
    for (int r = 0; r < M; r++) {
      __m512 xr = _mm512_set1_ps (x[(size_t) r * ldx + p]);
      acc[r][0] = _mm512_fmadd_ps (xr, w0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps (xr, w1, acc[r][1]);
      acc[r][2] = _mm512_fmadd_ps (xr, w2, acc[r][2]);
      acc[r][3] = _mm512_fmadd_ps (xr, w3, acc[r][3]);
    }
  }
  acc_store (acc, M, out);
}

/* M and the prefetch as constants: each combination its own loop */
#define GEMV_BY_ROWS(m, BLOCK)                                                                  \
  G_STMT_START {                                                                                \
    switch (m) {                                                                                \
      case 1: BLOCK (1); break;                                                                 \
      case 2: BLOCK (2); break;                                                                 \
      case 3: BLOCK (3); break;                                                                 \
      default: BLOCK (4); break;                                                                \
    }                                                                                           \
  } G_STMT_END

/* one block of 64 outputs for m rows: out[r * 64 + c] */
static GEMV_TARGET void
gemv_one (const uint16_t *w, const uint16_t *x, int m, int kpad, float *out)
{
  const __m512i *wb = (const __m512i *) w;
  const uint32_t *xp = (const uint32_t *) x;
  int kp = kpad / 2;
  gboolean lines = vlm_cpu_intel ();
#define GEMV_BLOCK(M) (lines ? gemv_block (wb, xp, kp, kp, M, 1, out) : gemv_block (wb, xp, kp, kp, M, 0, out))
  GEMV_BY_ROWS (m, GEMV_BLOCK);
#undef GEMV_BLOCK
}

static GEMV_F32_TARGET void
gemv_one_f32 (const float *w, const float *x, int m, int k, float *out)
{
  const __m512 *wb = (const __m512 *) w;
  gboolean lines = vlm_cpu_intel ();
#define GEMV_BLOCK(M) (lines ? gemv_block_f32 (wb, x, k, k, M, 1, out) : gemv_block_f32 (wb, x, k, k, M, 0, out))
  GEMV_BY_ROWS (m, GEMV_BLOCK);
#undef GEMV_BLOCK
}

/* AMX (tiles: tdpbf16ps) for 3 to 16 rows of bf16 input over the same
 * blocks. The vector kernel above issues a vdpbf16ps per 64 bytes of
 * weight and row, so from 3 rows on it no longer keeps up with DRAM, nor
 * does oneDNN's AMX matmul at that size; a tile multiply takes 16 pairs of
 * k for 16 outputs and every row at once, and the loop stays bound by the
 * weight's stream, each line prefetched 4 KiB ahead. Sapphire Rapids VM,
 * from DRAM, 4 rows of 768 × 3072 and 3072 × 768: 26.4–28.6 GB/s vs
 * oneDNN's AMX matmul 22.4–23.7 (the vector kernel the same as oneDNN);
 * prefetching into L1 (T0) 27.1–28.2, into L2 (T1) 25.5–26.4, none
 * 24.1–26.1. One or two rows stay on the vector kernel (1 row: 27.7 vs
 * 25.8 on tiles; 2: level). Tiles: 0-3 the 4 × 16 outputs of a block (m rows each), 4
 * the input (m rows × 16 pairs), 5-7 the weight (16 pairs × 16 outputs:
 * rows 256 bytes apart in the block). Each thread configures the tiles
 * once per vlm_gemv (gemv_amx_begin) and releases them after. */
#define GEMV_AMX_MIN_ROWS 3
#define GEMV_AMX_TARGET __attribute__ ((target ("avx512f,avx512bw,avx512bf16,amx-tile,amx-bf16")))

typedef struct {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} __attribute__ ((aligned (64))) TileConfig;

static GEMV_AMX_TARGET void
gemv_amx_begin (int m)
{
  TileConfig c = { .palette = 1 };
  for (int t = 0; t < 8; t++) {
    c.colsb[t] = 64;
    c.rows[t] = t < 5 ? m : 16;
  }
  /* as asm: GCC 12 drops the stores to `c` before its _tile_loadconfig */
  __asm__ volatile ("ldtilecfg %0" : : "m" (c));
}

static GEMV_AMX_TARGET void
gemv_amx_end (void)
{
  _tile_release ();
}

/* out[r * 64 + c] for the m rows (as configured) of x [m][kpad] bf16 */
static GEMV_AMX_TARGET void
gemv_one_amx (const uint16_t *w, const uint16_t *x, int kpad, float *out)
{
  const char *wb = (const char *) w;
  _tile_zero (0);
  _tile_zero (1);
  _tile_zero (2);
  _tile_zero (3);
  for (int p0 = 0; p0 < kpad / 2; p0 += 16) {
    const char *wp = wb + (size_t) p0 * 256;
    for (int l = 0; l < 64; l++) _mm_prefetch (wp + 4096 + l * 64, _MM_HINT_T0);
    _tile_loadd (4, x + 2 * p0, kpad * 2);
    _tile_loadd (5, wp, 256);
    _tile_dpbf16ps (0, 4, 5);
    _tile_loadd (6, wp + 64, 256);
    _tile_dpbf16ps (1, 4, 6);
    _tile_loadd (7, wp + 128, 256);
    _tile_dpbf16ps (2, 4, 7);
    _tile_loadd (5, wp + 192, 256);
    _tile_dpbf16ps (3, 4, 5);
  }
  _tile_stored (0, out, 256);
  _tile_stored (1, out + 16, 256);
  _tile_stored (2, out + 32, 256);
  _tile_stored (3, out + 48, 256);
}

int
vlm_gemv_bf16_max_rows (void)
{
  return vlm_cpu_amx_tiles () ? VLM_GEMV_TILE_ROWS : VLM_GEMV_MAX_ROWS;
}

/* Whether vlm_gemv runs `in` on tiles */
static gboolean
gemv_amx (const VlmGemvIn *in)
{
  return in->xb && in->m >= GEMV_AMX_MIN_ROWS && !in->no_tiles && vlm_cpu_amx_tiles ();
}

/* block b of output o: its 64 (or fewer) columns for the m rows, the
 * epilogue applied while they are in cache; `tiles`: bf16 on AMX tiles
 * (gemv_amx) */
static inline void
gemv_block_out (const VlmGemvOut *o, int b, const VlmGemvIn *in, const VlmKernels *kernels, gboolean tiles,
                float *out)
{
  int m = in->m, n = o->n, j0 = b * 64, len = MIN (64, n - j0);
  if (o->scales) {
    int32_t acc[VLM_GEMV_MAX_ROWS * 64];
    kernels->gemv_rows_s8 ((const int8_t *) o->w + (size_t) j0 * o->ldw, o->ldw, len, in->xq, in->kpad, m, acc);
    for (int r = 0; r < m; r++)
      for (int j = 0; j < len; j++)
        out[r * 64 + j] =
            in->xq_scales[r] * o->scales[j0 + j] * (float) (acc[r * 64 + j] - in->xq_zeros[r] * o->sums[j0 + j]);
  } else if (tiles)
    gemv_one_amx ((const uint16_t *) o->w + (size_t) j0 * in->kpad, in->xb, in->kpad, out);
  else if (in->xb)
    gemv_one ((const uint16_t *) o->w + (size_t) j0 * in->kpad, in->xb, m, in->kpad, out);
  else if (in->kpad)
    gemv_one_f32 ((const float *) o->w + (size_t) j0 * in->kpad, in->x, m, in->k, out);
  else
    kernels->gemv_rows ((const char *) o->w + (size_t) j0 * o->ldw * (o->bf16 ? 2 : 4), o->ldw, o->bf16, len,
                        in->x, in->k, m, out);
  for (int r = 0; r < m; r++) {
    float *v = out + r * 64;
    if (o->bias)
      for (int j = 0; j < len; j++) v[j] += o->bias[j0 + j];
    kernels->act (o->act, v, len);
    float *yr = o->y + (size_t) r * n + j0;
    const float *rr = o->residual ? o->residual + (size_t) r * n + j0 : NULL;
    if (rr)
      for (int j = 0; j < len; j++) yr[j] = v[j] + rr[j];
    else
      memcpy (yr, v, len * sizeof (float));
  }
}

void
vlm_gemv (const VlmGemvOut *outs, int n_outs, const VlmGemvIn *in)
{
  vlm_gemv_with (vlm_kernels (), outs, n_outs, in);
}

void
vlm_gemv_with (const VlmKernels *kernels, const VlmGemvOut *outs, int n_outs, const VlmGemvIn *in)
{
  int m = in->m;
  gboolean tiles = gemv_amx (in);
  g_assert (m >= 1 && m <= (tiles ? VLM_GEMV_TILE_ROWS : VLM_GEMV_MAX_ROWS) && n_outs >= 1 &&
            n_outs <= VLM_GEMV_MAX_OUTS);
  g_assert (!in->xb || in->kpad % 32 == 0);
  g_assert (!in->xq || in->kpad % 64 == 0);
  /* the outputs' blocks of 64 columns, numbered one after another */
  int first[VLM_GEMV_MAX_OUTS + 1] = { 0 };
  for (int i = 0; i < n_outs; i++) first[i + 1] = first[i] + (outs[i].n + 63) / 64;
  int nb = first[n_outs];
  int nt = MIN (vlm_cpu_threads_now (omp_get_max_threads ()), nb);
  /* Runs of GEMV_CHUNK blocks handed out in order as each thread comes for
   * more: the threads still stream long stretches of memory, and one that
   * the OS deschedules (a pipeline shares its cores with decoders and
   * converters) holds up at most the run it has, not a fixed share. */
  int next = 0, chunk = CLAMP (nb / (4 * nt), 1, GEMV_CHUNK);
#pragma omp parallel num_threads (nt)
  {
    float out[VLM_GEMV_TILE_ROWS * 64] __attribute__ ((aligned (64)));
    int i = 0;
    if (tiles)
      gemv_amx_begin (m);
    for (;;) {
      int b0;
#pragma omp atomic capture
      {
        b0 = next;
        next += chunk;
      }
      if (b0 >= nb)
        break;
      for (int b = b0; b < MIN (nb, b0 + chunk); b++) {
        while (b >= first[i + 1]) i++;
        gemv_block_out (&outs[i], b - first[i], in, kernels, tiles, out);
      }
    }
    if (tiles)
      gemv_amx_end ();
  }
}
