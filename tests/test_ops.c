/* test_ops.c — the compute ops. Every op runs on both backends (oneDNN and
 * OpenBLAS; linears also with oneDNN's packed f32 and bf16 weights) and is
 * compared with a naive double-precision loop written here
 * from the op's definition, so each of the three code paths can fail on its
 * own. Shapes are deliberately odd (m = 1, n not a multiple of 16). */
#include "testutil.h"

#include "ops.h"
#include "cpu.h"
#include "ops_gemv.h"
#include "kvcache.h"
#include "tensor.h"

#include <math.h>
#include <signal.h>
#include <sys/wait.h>

#define TOL 1e-5   /* of the reference's range: f32 rounding, not algorithms */

/* ------------------------------------------------------------ helpers */

static float *
rand_f32 (GRand *r, size_t n, float lo, float hi)
{
  float *x = g_new (float, n);
  for (size_t i = 0; i < n; i++) x[i] = (float) g_rand_double_range (r, lo, hi);
  return x;
}

static VlmOps *
new_ops_threads (VlmBackend backend, int n_threads)
{
  g_autoptr (GError) error = NULL;
  VlmOps *ops = vlm_ops_new (backend, n_threads, &error);
  g_assert_no_error (error);
  g_assert_cmpint (vlm_ops_backend (ops), ==, backend);
  vlm_ops_bind_thread (ops);
  return ops;
}

static VlmOps *
new_ops (VlmBackend backend)
{
  return new_ops_threads (backend, 2);
}

/* The tests that count primitives run their ops on one thread
 * (new_ops_threads (backend, 1)): oneDNN's are cached per thread count as
 * well as per shape, and with two the count follows the cores other
 * processes leave (vlm_cpu_threads_now). */
static const VlmBackend backends[] = { VLM_BACKEND_ONEDNN, VLM_BACKEND_BLAS };
static const char *const backend_names[] = { "onednn", "blas" };

/* An f32 2-D or 1-D tensor view of `data`. */
static VlmTensor
f32_tensor (const float *data, int64_t d0, int64_t d1)
{
  VlmTensor t = { data, VLM_DTYPE_F32, d1 ? 2 : 1, { d0, d1 } };
  return t;
}

static double
naive_act (VlmAct act, double x)
{
  switch (act) {
    case VLM_ACT_NONE: return x;
    case VLM_ACT_GELU_ERF: return x * 0.5 * erfc (-x / sqrt (2.0));
    case VLM_ACT_GELU_TANH:
      return 0.5 * x * (1.0 + tanh (sqrt (2.0 / G_PI) * (x + 0.044715 * pow (x, 3))));
    case VLM_ACT_QUICK_GELU: return x / (1.0 + exp (-1.702 * x));
    case VLM_ACT_SILU: return x / (1.0 + exp (-x));
    case VLM_ACT_RELU: return fmax (x, 0.0);
  }
  g_assert_not_reached ();
}

/* y[i,j] = act(Σ_t x[i,t] w[j,t] + b[j]) + res[i,j] */
static void
naive_linear (const float *w, const float *b, int n, int k, const float *x, int m, VlmAct act,
              const float *res, float *y)
{
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double acc = b ? b[j] : 0.0;
      for (int t = 0; t < k; t++) acc += (double) x[i * k + t] * w[j * k + t];
      y[i * n + j] = (float) (naive_act (act, acc) + (res ? res[i * n + j] : 0.0));
    }
}

/* ------------------------------------------------------------ linear */

enum { RES_NONE, RES_SEPARATE, RES_ALIAS };

typedef struct {
  const char *path;
  int m, n, k;
  gboolean bias;
  VlmAct act;
  int residual;
} LinearCase;

static const LinearCase linear_cases[] = {
  { "/ops/linear/m1", 1, 40, 24, TRUE, VLM_ACT_NONE, RES_NONE },
  { "/ops/linear/m7-n33-k17", 7, 33, 17, TRUE, VLM_ACT_NONE, RES_NONE },
  { "/ops/linear/no-bias", 5, 19, 48, FALSE, VLM_ACT_NONE, RES_NONE },
  { "/ops/linear/larger", 70, 130, 257, TRUE, VLM_ACT_NONE, RES_NONE },
  { "/ops/linear/act/gelu-erf", 7, 33, 17, TRUE, VLM_ACT_GELU_ERF, RES_NONE },
  { "/ops/linear/act/gelu-tanh", 7, 33, 17, TRUE, VLM_ACT_GELU_TANH, RES_NONE },
  { "/ops/linear/act/quick-gelu", 7, 33, 17, TRUE, VLM_ACT_QUICK_GELU, RES_NONE },
  { "/ops/linear/act/silu", 7, 33, 17, TRUE, VLM_ACT_SILU, RES_NONE },
  { "/ops/linear/act/relu", 7, 33, 17, TRUE, VLM_ACT_RELU, RES_NONE },
  { "/ops/linear/residual", 7, 33, 17, TRUE, VLM_ACT_NONE, RES_SEPARATE },
  { "/ops/linear/residual-after-act", 7, 33, 17, FALSE, VLM_ACT_GELU_ERF, RES_SEPARATE },
  { "/ops/linear/residual-alias", 7, 33, 17, TRUE, VLM_ACT_NONE, RES_ALIAS },
  { "/ops/linear/residual-alias-after-act", 1, 33, 17, TRUE, VLM_ACT_SILU, RES_ALIAS },
  { "/ops/linear/m2-act-residual", 2, 40, 24, TRUE, VLM_ACT_GELU_TANH, RES_SEPARATE },
  /* decode's rows (1..4) over several 64-column blocks, k not a multiple of 32 */
  { "/ops/linear/m3-blocks-alias", 3, 130, 50, TRUE, VLM_ACT_GELU_ERF, RES_ALIAS },
  { "/ops/linear/m4-blocks", 4, 200, 96, FALSE, VLM_ACT_SILU, RES_SEPARATE },
  { "/ops/linear/m1-long-k", 1, 257, 900, TRUE, VLM_ACT_NONE, RES_NONE },
};

/* xq[i] = x[i], i < n, quantised to u8 over [min(x, 0), max(x, 0)] with a
 * zero point and back. q = x · (1 / scale) in f32, as the engine defines
 * it: a quotient instead lands on the other side of a rounding tie now and
 * then (seen at k = 900). */
static void
u8_dequantised (const float *x, size_t n, float *xq)
{
  float lo = 0, hi = 0;
  for (size_t i = 0; i < n; i++) {
    lo = fminf (lo, x[i]);
    hi = fmaxf (hi, x[i]);
  }
  float sx = (hi - lo) / 255.0f, isx = 1.0f / sx, zp = rintf (-lo * isx);
  for (size_t i = 0; i < n; i++) xq[i] = (fminf (fmaxf (rintf (x[i] * isx) + zp, 0), 255) - zp) * sx;
}

/* Pre-activations span a few units so each activation's curved part and
 * both tails are exercised. */
static void
test_linear (gconstpointer data)
{
  const LinearCase *c = data;
  g_autoptr (GRand) r = g_rand_new_with_seed (c->m * 1000 + c->n);
  g_autofree float *w = rand_f32 (r, (size_t) c->n * c->k, -1, 1);
  g_autofree float *b = rand_f32 (r, c->n, -1, 1);
  g_autofree float *x = rand_f32 (r, (size_t) c->m * c->k, -1, 1);
  g_autofree float *res = rand_f32 (r, (size_t) c->m * c->n, -5, 5);
  g_autofree float *want = g_new (float, (size_t) c->m * c->n);
  g_autofree float *y = g_new (float, (size_t) c->m * c->n);
  VlmTensor wt = f32_tensor (w, c->n, c->k), bt = f32_tensor (b, c->n, 0);
  VlmLinearW lin;
  g_autoptr (GError) error = NULL;

  g_assert_true (vlm_linear_init (&lin, "fc", &wt, c->bias ? &bt : NULL, &error));
  naive_linear (w, c->bias ? b : NULL, c->n, c->k, x, c->m, c->act,
                c->residual ? res : NULL, want);
  for (int i = 0; i < 2; i++) {
    VlmOps *ops = new_ops (backends[i]);
    const float *residual = c->residual == RES_SEPARATE ? res : NULL;
    if (c->residual == RES_ALIAS) {
      memcpy (y, res, sizeof (float) * c->m * c->n);
      residual = y;
    }
    vlm_linear (ops, &lin, x, c->m, y, c->act, residual);
    vt_assert_close (backend_names[i], y, want, (int64_t) c->m * c->n, TOL);
    vlm_ops_free (ops);
  }
  vlm_linear_clear (&lin);

  /* oneDNN with the weight packed (vlm_linear_pack): in f32 to the same
   * tolerance; in bf16 against the reference run on bf16-rounded x and w
   * (their products are exact in f32, so only the summation order differs),
   * packed from an f32 tensor and from a bf16 one as a checkpoint stores it,
   * for one input row and for many */
  g_autofree float *xr = g_new (float, (size_t) c->m * c->k);
  g_autofree float *wr = g_new (float, (size_t) c->n * c->k);
  g_autofree guint16 *w16 = g_new (guint16, (size_t) c->n * c->k);
  for (int i = 0; i < c->m * c->k; i++) xr[i] = vlm_bf16_to_f32 (vlm_f32_to_bf16 (x[i]));
  for (int i = 0; i < c->n * c->k; i++) wr[i] = vlm_bf16_to_f32 (w16[i] = vlm_f32_to_bf16 (w[i]));
  g_autofree float *want16 = g_new (float, (size_t) c->m * c->n);
  naive_linear (wr, c->bias ? b : NULL, c->n, c->k, xr, c->m, c->act, c->residual ? res : NULL, want16);
  VlmTensor w16t = { w16, VLM_DTYPE_BF16, 2, { c->n, c->k } };
  /* On a tier without bf16 instructions bf16 weights are multiplied in
   * f32: only w is rounded */
  g_autofree float *want16w = g_new (float, (size_t) c->m * c->n);
  naive_linear (wr, c->bias ? b : NULL, c->n, c->k, x, c->m, c->act, c->residual ? res : NULL, want16w);
  /* int8: w quantised per output row (symmetric, scale max|.| / 127, or 63
   * below VNNI: vlm_cpu_int8_weight_max) and x per call to u8 over
   * [min(x, 0), max(x, 0)] with a zero point (decode's m <= 4 rows of the
   * GEMV each on its own), both rounding to nearest even; the reference
   * runs on the dequantised values (integer products summed in s32 are
   * exact) */
  g_autofree float *xq = g_new (float, (size_t) c->m * c->k);
  g_autofree float *wq = g_new (float, (size_t) c->n * c->k);
  int rows_apart = c->m <= VLM_GEMV_MAX_ROWS ? 1 : c->m;
  for (int r0 = 0; r0 < c->m; r0 += rows_apart)
    u8_dequantised (x + (size_t) r0 * c->k, (size_t) rows_apart * c->k, xq + (size_t) r0 * c->k);
  for (int j = 0; j < c->n; j++) {
    double wmax = 0;
    for (int t = 0; t < c->k; t++) wmax = fmax (wmax, fabs (w[j * c->k + t]));
    float sw = (float) wmax / vlm_cpu_int8_weight_max (), isw = 1.0f / sw;
    for (int t = 0; t < c->k; t++) wq[j * c->k + t] = rintf (w[j * c->k + t] * isw) * sw;
  }
  g_autofree float *want8 = g_new (float, (size_t) c->m * c->n);
  naive_linear (wq, c->bias ? b : NULL, c->n, c->k, xq, c->m, c->act, c->residual ? res : NULL, want8);
  static const struct { const char *name; VlmDType dtype; gboolean from_bf16; int rows; } packs[] = {
    { "onednn packed f32", VLM_DTYPE_F32, FALSE, 256 },
    { "onednn packed bf16 from f32, rows 1", VLM_DTYPE_BF16, FALSE, 1 },
    { "onednn packed bf16 as stored", VLM_DTYPE_BF16, TRUE, 256 },
    { "onednn bf16 as stored, rows 1 (HF's layout, no copy)", VLM_DTYPE_BF16, TRUE, 1 },
    { "onednn packed int8", VLM_DTYPE_I8, FALSE, 256 },
    { "onednn packed int8, rows 1", VLM_DTYPE_I8, FALSE, 1 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (packs); i++) {
    const VlmTensor *src = packs[i].from_bf16 ? &w16t : &wt;
    g_assert_true (vlm_linear_init (&lin, "fc", src, c->bias ? &bt : NULL, &error));
    g_assert_true (vlm_linear_pack (&lin, src, packs[i].dtype, packs[i].rows, &error));
    g_assert_no_error (error);
    g_assert_nonnull (lin.packed);
    g_assert_true (packs[i].from_bf16 ? lin.weight == NULL : lin.weight == w);  /* no f32 copy kept */
    VlmOps *ops = new_ops (VLM_BACKEND_ONEDNN);
    const float *residual = c->residual == RES_SEPARATE ? res : NULL;
    if (c->residual == RES_ALIAS) {
      memcpy (y, res, sizeof (float) * c->m * c->n);
      residual = y;
    }
    vlm_linear (ops, &lin, x, c->m, y, c->act, residual);
    const float *expect = packs[i].dtype == VLM_DTYPE_BF16 ? (vlm_cpu_native_bf16 () ? want16 : want16w)
                          : packs[i].dtype == VLM_DTYPE_I8 ? want8 : want;
    vt_assert_close (packs[i].name, y, expect, (int64_t) c->m * c->n, TOL);
    vlm_ops_free (ops);
    vlm_linear_clear (&lin);
  }
}

/* The decode GEMV on weights laid out here from the layout's definition
 * (not by oneDNN): [⌈n/64⌉][kpad/2][64][2] bf16, zero padded, so a
 * misreading of either side shows. Two outputs in one pass (their blocks
 * numbered across both): one with bias, activation and an in-place
 * residual, one plain. Rows 1..4. */
static guint16 *
gemv_blocked (float *w, int n, int k, int kpad)
{
  guint16 *blocked = g_aligned_alloc0 ((size_t) (n + 63) / 64 * 64 * kpad, sizeof (guint16), 64);
  for (int j = 0; j < n; j++)
    for (int t = 0; t < k; t++) {
      guint16 v = vlm_f32_to_bf16 (w[j * k + t]);
      w[j * k + t] = vlm_bf16_to_f32 (v);   /* the reference uses what the kernel sees */
      blocked[(size_t) (j / 64) * kpad * 64 + (t / 2) * 128 + (j % 64) * 2 + t % 2] = v;
    }
  return blocked;
}

static void
test_gemv_layout (void)
{
  if (!vlm_gemv_bf16_supported ()) {
    g_test_skip_printf ("tier %s has no bf16 instructions: the blocked kernel is never called (bf16 weights take "
                        "the rows GEMV, /ops/linear/gemv-rows)", vlm_cpu_describe ());
    return;
  }
  enum { N = 150, N2 = 70, K = 70, KPAD = 96 };
  g_autoptr (GRand) r = g_rand_new_with_seed (7);
  g_autofree float *w = rand_f32 (r, N * K, -1, 1);
  g_autofree float *w2 = rand_f32 (r, N2 * K, -1, 1);
  g_autofree float *b = rand_f32 (r, N, -1, 1);
  enum { M = VLM_GEMV_TILE_ROWS };
  g_autofree float *x = rand_f32 (r, M * K, -1, 1);
  g_autofree float *res = rand_f32 (r, M * N, -5, 5);
  guint16 *blocked = gemv_blocked (w, N, K, KPAD), *blocked2 = gemv_blocked (w2, N2, K, KPAD);
  g_autofree guint16 *xb = g_new0 (guint16, M * KPAD);
  for (int i = 0; i < M; i++)
    for (int t = 0; t < K; t++) {
      xb[i * KPAD + t] = vlm_f32_to_bf16 (x[i * K + t]);
      x[i * K + t] = vlm_bf16_to_f32 (xb[i * KPAD + t]);
    }
  g_autofree float *want = g_new (float, M * N);
  g_autofree float *want2 = g_new (float, M * N2);
  g_autofree float *y = g_new (float, M * N);
  g_autofree float *y2 = g_new (float, M * N2);
  /* 3 to 16 rows on AMX tiles where the process may use them, and up to 4
   * on the vector kernel (no_tiles) */
  g_test_message ("AMX tiles: %s (%s)", vlm_cpu_amx_tiles () ? "used for 3-16 rows" : "not available",
                  vlm_cpu_describe ());
  for (int no_tiles = 0; no_tiles <= vlm_cpu_amx_tiles (); no_tiles++)
    for (int m = 1; m <= (no_tiles ? VLM_GEMV_MAX_ROWS : vlm_gemv_bf16_max_rows ()); m++) {
      naive_linear (w, b, N, K, x, m, VLM_ACT_GELU_TANH, res, want);
      naive_linear (w2, NULL, N2, K, x, m, VLM_ACT_NONE, NULL, want2);
      memcpy (y, res, sizeof (float) * m * N);
      VlmGemvOut outs[] = { { blocked, 0, TRUE, N, b, VLM_ACT_GELU_TANH, y, y },
                            { blocked2, 0, TRUE, N2, NULL, VLM_ACT_NONE, NULL, y2 } };
      vlm_gemv (outs, 2, &(VlmGemvIn) { m, K, KPAD, xb, NULL, .no_tiles = no_tiles });
      vt_assert_close ("gemv, first output", y, want, (int64_t) m * N, TOL);
      vt_assert_close ("gemv, second output", y2, want2, (int64_t) m * N2, TOL);
    }
  g_aligned_free (blocked);
  g_aligned_free (blocked2);
}

/* Every table of the engine's kernels, the tier it needs and the widest
 * int8 weight its int8 GEMV takes (7 bits below VNNI). */
typedef struct {
  const char *name;
  const VlmKernels *k;
  VlmCpuTier needs;
  int qmax;
} KernelTable;

static const KernelTable kernel_tables[] = {
  { "generic", &vlm_kernels_generic, VLM_CPU_GENERIC, 63 },
  { "avx2", &vlm_kernels_avx2, VLM_CPU_AVX2, 63 },
  { "avx512", &vlm_kernels_avx512, VLM_CPU_AVX512, 63 },
  { "avx512vnni", &vlm_kernels_avx512vnni, VLM_CPU_AVX512_BF16, 127 },
};

/* Whether this CPU tier can run table t's kernels (logged when not). */
static gboolean
table_runs (const KernelTable *t)
{
  if (vlm_cpu_tier () >= t->needs)
    return TRUE;
  g_test_message ("%s kernels: not run, the tier is %s", t->name, vlm_cpu_describe ());
  return FALSE;
}

/* The rows GEMV (HF's [n][k] layout, f32 and bf16 weights) of every tier
 * this CPU can run, against the reference: m = 1..4, k not a multiple of
 * any vector width (the scalar tail), n not a multiple of 64 (the last
 * block), two outputs in one pass with bias, activation and an in-place
 * residual on the first. Each table is called directly, so on an AVX-512
 * machine the AVX2 and generic kernels are checked too. */
static void
test_gemv_rows (void)
{
  enum { N = 150, N2 = 70, K = 75 };
  g_autoptr (GRand) r = g_rand_new_with_seed (17);
  g_autofree float *w = rand_f32 (r, N * K, -1, 1), *w2 = rand_f32 (r, N2 * K, -1, 1);
  g_autofree float *b = rand_f32 (r, N, -1, 1), *x = rand_f32 (r, 4 * K, -1, 1);
  g_autofree float *res = rand_f32 (r, 4 * N, -5, 5);
  g_autofree guint16 *w16 = g_new (guint16, N * K), *w216 = g_new (guint16, N2 * K);
  g_autofree float *wr = g_new (float, N * K), *w2r = g_new (float, N2 * K);
  for (int i = 0; i < N * K; i++) wr[i] = vlm_bf16_to_f32 (w16[i] = vlm_f32_to_bf16 (w[i]));
  for (int i = 0; i < N2 * K; i++) w2r[i] = vlm_bf16_to_f32 (w216[i] = vlm_f32_to_bf16 (w2[i]));
  g_autofree float *want = g_new (float, 4 * N), *want2 = g_new (float, 4 * N2);
  g_autofree float *y = g_new (float, 4 * N), *y2 = g_new (float, 4 * N2);
  const KernelTable *tables = kernel_tables;
  int tested = 0;
  for (guint t = 0; t < G_N_ELEMENTS (kernel_tables); t++) {
    if (!table_runs (&tables[t]))
      continue;
    tested++;
    for (int bf16 = 0; bf16 <= 1; bf16++)
      for (int m = 1; m <= VLM_GEMV_MAX_ROWS; m++) {
        naive_linear (bf16 ? wr : w, b, N, K, x, m, VLM_ACT_GELU_TANH, res, want);
        naive_linear (bf16 ? w2r : w2, NULL, N2, K, x, m, VLM_ACT_NONE, NULL, want2);
        /* the table's block kernel over each 64-row block, as vlm_gemv shares them out */
        for (int o = 0; o < 2; o++) {
          int n = o ? N2 : N;
          const void *wp = o ? (bf16 ? (void *) w216 : (void *) w2) : (bf16 ? (void *) w16 : (void *) w);
          float *out = o ? y2 : y, blk[VLM_GEMV_MAX_ROWS * 64];
          for (int j0 = 0; j0 < n; j0 += 64) {
            int len = MIN (64, n - j0);
            tables[t].k->gemv_rows ((const char *) wp + (size_t) j0 * K * (bf16 ? 2 : 4), K, bf16, len, x, K, m, blk);
            for (int i = 0; i < m; i++)
              for (int j = 0; j < len; j++) {
                float v = blk[i * 64 + j];
                if (!o) {
                  v += b[j0 + j];
                  vlm_act_ref (VLM_ACT_GELU_TANH, &v, 1);
                  v += res[i * N + j0 + j];
                }
                out[i * n + j0 + j] = v;
              }
          }
        }
        g_autofree char *what = g_strdup_printf ("%s %s, m %d", tables[t].name, bf16 ? "bf16" : "f32", m);
        vt_assert_close (what, y, want, (int64_t) m * N, TOL);
        vt_assert_close (what, y2, want2, (int64_t) m * N2, TOL);
      }
  }
  g_assert_cmpint (tested, >=, 1);
  /* and through vlm_gemv, which picks the tier's table */
  for (int m = 1; m <= VLM_GEMV_MAX_ROWS; m++) {
    naive_linear (wr, b, N, K, x, m, VLM_ACT_GELU_TANH, res, want);
    naive_linear (w2, NULL, N2, K, x, m, VLM_ACT_NONE, NULL, want2);
    memcpy (y, res, sizeof (float) * m * N);
    VlmGemvOut outs[] = { { w16, K, TRUE, N, b, VLM_ACT_GELU_TANH, y, y }, { w2, K, FALSE, N2, NULL, VLM_ACT_NONE, NULL, y2 } };
    vlm_gemv (outs, 2, &(VlmGemvIn) { m, K, 0, NULL, x });
    vt_assert_close ("vlm_gemv, bf16 rows", y, want, (int64_t) m * N, TOL);
    vt_assert_close ("vlm_gemv, f32 rows", y2, want2, (int64_t) m * N2, TOL);
  }
}

/* vlm_gemv_with table t over s8 rows w [N][KPAD] and u8 rows x: m = 1..4
 * against y[r] = sx[r] · sw[j] · (Σ x[r] · w − zp[r] · Σ w) + bias in
 * double (one output with activation and an in-place residual, one
 * plain), and the 4-row call equal bit for bit to four 1-row calls: a row's
 * result does not depend on the rows it is batched with. */
enum { S8_N = 150, S8_K = 100, S8_KPAD = 128 };

static void
gemv_s8_rows_apart (GRand *r, const KernelTable *t, int8_t *w, uint8_t *x, const float *sx, const int32_t *zp)
{
  enum { N = S8_N, K = S8_K, KPAD = S8_KPAD, M = VLM_GEMV_MAX_ROWS };
  for (int j = 0; j < N; j++)
    for (int i = 0; i < K; i++) w[j * KPAD + i] = (int8_t) g_rand_int_range (r, -t->qmax, t->qmax + 1);
  g_autofree float *sw = rand_f32 (r, N, 0.001f, 0.01f), *b = rand_f32 (r, N, -1, 1);
  g_autofree float *res = rand_f32 (r, M * N, -5, 5);
  g_autofree int32_t *sums = g_new0 (int32_t, N);
  g_autofree float *wf = g_new (float, N * K), *xf = g_new (float, M * K);
  for (int j = 0; j < N; j++)
    for (int i = 0; i < K; i++) {
      sums[j] += w[j * KPAD + i];
      wf[j * K + i] = sw[j] * w[j * KPAD + i];
    }
  for (int i = 0; i < M * K; i++)
    xf[i] = sx[i / K] * ((int) (x[i / K * KPAD + i % K] = (uint8_t) g_rand_int_range (r, 0, 256)) - zp[i / K]);
  g_autofree float *want = g_new (float, M * N), *want2 = g_new (float, M * N);
  g_autofree float *y = g_new (float, M * N), *y2 = g_new (float, M * N);
  g_autofree float *one = g_new (float, M * N), *one2 = g_new (float, M * N);
  for (int m = 1; m <= M; m++) {
    naive_linear (wf, b, N, K, xf, m, VLM_ACT_GELU_TANH, res, want);
    naive_linear (wf, NULL, N, K, xf, m, VLM_ACT_NONE, NULL, want2);
    memcpy (y, res, sizeof (float) * m * N);
    VlmGemvOut outs[] = { { .w = w, .ldw = KPAD, .n = N, .bias = b, .act = VLM_ACT_GELU_TANH, .residual = y, .y = y,
                            .scales = sw, .sums = sums },
                          { .w = w, .ldw = KPAD, .n = N, .act = VLM_ACT_NONE, .y = y2, .scales = sw, .sums = sums } };
    vlm_gemv_with (t->k, outs, 2,
                   &(VlmGemvIn) { .m = m, .k = K, .kpad = KPAD, .xq = x, .xq_scales = sx, .xq_zeros = zp });
    g_autofree char *what = g_strdup_printf ("vlm_gemv, s8 rows, %s kernels, m %d", t->name, m);
    vt_assert_close (what, y, want, (int64_t) m * N, TOL);
    vt_assert_close (what, y2, want2, (int64_t) m * N, TOL);
  }
  /* y, y2 hold the 4-row call; now each row alone */
  memcpy (one, res, sizeof (float) * M * N);
  for (int i = 0; i < M; i++) {
    VlmGemvOut outs[] = { { .w = w, .ldw = KPAD, .n = N, .bias = b, .act = VLM_ACT_GELU_TANH,
                            .residual = one + i * N, .y = one + i * N, .scales = sw, .sums = sums },
                          { .w = w, .ldw = KPAD, .n = N, .act = VLM_ACT_NONE, .y = one2 + i * N, .scales = sw,
                            .sums = sums } };
    vlm_gemv_with (t->k, outs, 2,
                   &(VlmGemvIn) { .m = 1, .k = K, .kpad = KPAD, .xq = x + i * KPAD, .xq_scales = sx + i,
                                  .xq_zeros = zp + i });
  }
  int differ = 0;
  for (int i = 0; i < M * N; i++)
    differ += memcmp (&y[i], &one[i], sizeof (float)) != 0 || memcmp (&y2[i], &one2[i], sizeof (float)) != 0;
  g_test_message ("vlm_gemv, s8 rows, %s kernels: %d of %d outputs of 4 rows in one call differ from 1-row calls",
                  t->name, differ, 2 * M * N);
  g_assert_cmpint (differ, ==, 0);
}

/* The int8 GEMV (s8 rows [n][kpad] against u8 input rows, the layout
 * vlm_linear_pack makes for precision int8) of every tier this CPU can
 * run: each table's kernel against exact integer sums, m = 1..4, k = 100
 * (not a multiple of 64: rows zero padded to 128), n = 150 (a 22-row last
 * block), the extreme values included (x 0 and 255, w ±qmax). Weights are
 * 7-bit for the kernels below VNNI (their pairs are summed in s16), 8-bit
 * for VNNI's. Then through vlm_gemv_with each table, each row with its
 * own scale and zero point (gemv_s8_rows_apart). */
static void
test_gemv_s8 (void)
{
  enum { N = S8_N, K = S8_K, KPAD = S8_KPAD };
  g_autoptr (GRand) r = g_rand_new_with_seed (23);
  const KernelTable *tables = kernel_tables;
  int8_t *w = g_aligned_alloc0 (N * KPAD, 1, 64);
  uint8_t *x = g_aligned_alloc0 (VLM_GEMV_MAX_ROWS * KPAD, 1, 64);
  int tested = 0;
  for (guint t = 0; t < G_N_ELEMENTS (kernel_tables); t++) {
    if (!table_runs (&tables[t]))
      continue;
    tested++;
    int qmax = tables[t].qmax;
    for (int j = 0; j < N; j++)
      for (int i = 0; i < K; i++)
        w[j * KPAD + i] = (int8_t) (j < 2 ? (j ? -qmax : qmax) : g_rand_int_range (r, -qmax, qmax + 1));
    for (int i = 0; i < VLM_GEMV_MAX_ROWS * K; i++)
      x[i / K * KPAD + i % K] = (uint8_t) (i < K ? 255 : i < 2 * K ? 0 : g_rand_int_range (r, 0, 256));
    for (int m = 1; m <= VLM_GEMV_MAX_ROWS; m++) {
      int wrong = 0;
      for (int j0 = 0; j0 < N; j0 += 64) {
        int len = MIN (64, N - j0);
        int32_t out[VLM_GEMV_MAX_ROWS * 64];
        tables[t].k->gemv_rows_s8 (w + (size_t) j0 * KPAD, KPAD, len, x, KPAD, m, out);
        for (int i = 0; i < m; i++)
          for (int j = 0; j < len; j++) {
            int32_t want = 0;
            for (int u = 0; u < K; u++) want += (int32_t) x[i * KPAD + u] * w[(j0 + j) * KPAD + u];
            wrong += out[i * 64 + j] != want;
          }
      }
      g_test_message ("%s int8 kernel, %d-bit weights, m %d: %d of %d sums differ", tables[t].name,
                      qmax == 127 ? 8 : 7, m, wrong, m * N);
      g_assert_cmpint (wrong, ==, 0);
    }
  }
  g_assert_cmpint (tested, >=, 1);

  /* through vlm_gemv_with each table and its weight width, two outputs in
   * one pass, each input row with its own scale and zero point */
  float sx[VLM_GEMV_MAX_ROWS] = { 0.02f, 0.005f, 0.1f, 0.0371f };
  int32_t zp[VLM_GEMV_MAX_ROWS] = { 77, 0, 255, 128 };
  for (guint t = 0; t < G_N_ELEMENTS (kernel_tables); t++)
    if (vlm_cpu_tier () >= tables[t].needs)
      gemv_s8_rows_apart (r, &tables[t], w, x, sx, zp);
  g_aligned_free (w);
  g_aligned_free (x);
}

/* An int8 linear (vlm_linear_pack to I8, the oneDNN backend: decode's
 * GEMV for m <= 4) on 4 rows of very different ranges equals, bit for bit,
 * the same linear on each row alone: each row is quantised on its own, so
 * a stream's decode step does not depend on the steps batched with it. */
static void
test_linear_int8_rows_apart (void)
{
  enum { M = VLM_GEMV_MAX_ROWS, N = 130, K = 200 };
  g_autoptr (GRand) r = g_rand_new_with_seed (31);
  g_autoptr (GError) error = NULL;
  g_autofree float *w = rand_f32 (r, N * K, -1, 1), *b = rand_f32 (r, N, -1, 1);
  g_autofree float *x = rand_f32 (r, M * K, -1, 1);
  static const float row_range[M] = { 1.0f, 0.01f, 30.0f, 0.5f };
  for (int i = 0; i < M * K; i++) x[i] = x[i] * row_range[i / K] + (i / K == 3 ? 0.6f : 0.0f);  /* row 3 > 0 */
  VlmTensor wt = f32_tensor (w, N, K), bt = f32_tensor (b, N, 0);
  VlmLinearW lin;
  g_assert_true (vlm_linear_init (&lin, "fc", &wt, &bt, &error));
  g_assert_true (vlm_linear_pack (&lin, &wt, VLM_DTYPE_I8, 1, &error));
  g_assert_no_error (error);
  VlmOps *ops = new_ops (VLM_BACKEND_ONEDNN);
  g_autofree float *y = g_new (float, M * N), *one = g_new (float, M * N);
  vlm_linear (ops, &lin, x, M, y, VLM_ACT_GELU_ERF, NULL);
  for (int i = 0; i < M; i++) vlm_linear (ops, &lin, x + i * K, 1, one + i * N, VLM_ACT_GELU_ERF, NULL);
  g_assert_true (vlm_ops_take_error (ops, &error));
  int differ = 0;
  for (int i = 0; i < M * N; i++) differ += memcmp (&y[i], &one[i], sizeof (float)) != 0;
  g_test_message ("int8 linear (%s): %d of %d outputs of 4 rows in one call differ from 1-row calls",
                  vlm_cpu_describe (), differ, M * N);
  g_assert_cmpint (differ, ==, 0);
  vlm_ops_free (ops);
  vlm_linear_clear (&lin);
}

/* vlm_linear_multi equals one vlm_linear per weight, on both backends and
 * with bf16 packed weights (decode's one pass), for 1 and 6 rows. */
static void
test_linear_multi (void)
{
  enum { K = 48 };
  static const int ns[] = { 96, 16, 16 };
  static const VlmAct acts[] = { VLM_ACT_NONE, VLM_ACT_SILU, VLM_ACT_NONE };
  g_autoptr (GRand) r = g_rand_new_with_seed (11);
  g_autofree float *x = rand_f32 (r, 6 * K, -1, 1);
  float *w[3], *b[3], *want[3], *y[3];
  VlmTensor wt[3], bt[3];
  for (int i = 0; i < 3; i++) {
    w[i] = rand_f32 (r, (size_t) ns[i] * K, -1, 1);
    b[i] = rand_f32 (r, ns[i], -1, 1);
    want[i] = g_new (float, 6 * ns[i]);
    y[i] = g_new (float, 6 * ns[i]);
    wt[i] = f32_tensor (w[i], ns[i], K);
    bt[i] = f32_tensor (b[i], ns[i], 0);
  }
  for (int pass = 0; pass < 3; pass++) {   /* BLAS; oneDNN f32; oneDNN packed bf16 */
    VlmOps *ops = new_ops (pass == 0 ? VLM_BACKEND_BLAS : VLM_BACKEND_ONEDNN);
    VlmLinearW lins[3];
    const VlmLinearW *lp[3];
    g_autoptr (GError) error = NULL;
    for (int i = 0; i < 3; i++) {
      g_assert_true (vlm_linear_init (&lins[i], "fc", &wt[i], i == 1 ? NULL : &bt[i], &error));
      if (pass == 2)
        g_assert_true (vlm_linear_pack (&lins[i], &wt[i], VLM_DTYPE_BF16, 1, &error));
      lp[i] = &lins[i];
    }
    for (int m = 1; m <= 6; m += 5) {
      for (int i = 0; i < 3; i++)
        vlm_linear (ops, lp[i], x, m, want[i], acts[i], NULL);
      vlm_linear_multi (ops, lp, acts, 3, x, m, y);
      for (int i = 0; i < 3; i++)
        vt_assert_close (pass == 0 ? "blas" : pass == 1 ? "onednn" : "onednn packed bf16", y[i], want[i],
                         (int64_t) m * ns[i], TOL);
      /* acts NULL: none (the first and third linears have none) */
      vlm_linear_multi (ops, (const VlmLinearW *[]) { lp[0], lp[2] }, NULL, 2, x, m, (float *[]) { y[0], y[2] });
      vt_assert_close ("no activations, first", y[0], want[0], (int64_t) m * ns[0], TOL);
      vt_assert_close ("no activations, second", y[2], want[2], (int64_t) m * ns[2], TOL);
    }
    for (int i = 0; i < 3; i++)
      vlm_linear_clear (&lins[i]);
    vlm_ops_free (ops);
  }
  for (int i = 0; i < 3; i++) {
    g_free (w[i]);
    g_free (b[i]);
    g_free (want[i]);
    g_free (y[i]);
  }
}

/* vlm_mlp equals fc2(act(fc1(x))) + residual as two vlm_linears, on both
 * backends and with packed bf16 weights, for decode's 3 rows and 37, with
 * y aliasing the residual and, once, x itself. (With bf16 weights the
 * second linear rounds its input to bf16 either way: vlm_mlp only skips
 * the f32 copy, so the results are equal.) */
static void
test_mlp (void)
{
  enum { K = 40, H = 72 };
  g_autoptr (GRand) r = g_rand_new_with_seed (13);
  g_autofree float *w1 = rand_f32 (r, H * K, -1, 1), *b1 = rand_f32 (r, H, -1, 1);
  g_autofree float *w2 = rand_f32 (r, K * H, -1, 1), *b2 = rand_f32 (r, K, -1, 1);
  g_autofree float *x = rand_f32 (r, 37 * K, -1, 1), *res = rand_f32 (r, 37 * K, -1, 1);
  g_autofree float *hidden = g_new (float, 37 * H), *want = g_new (float, 37 * K);
  g_autofree float *y = g_new (float, 37 * K);
  VlmTensor wt1 = f32_tensor (w1, H, K), bt1 = f32_tensor (b1, H, 0);
  VlmTensor wt2 = f32_tensor (w2, K, H), bt2 = f32_tensor (b2, K, 0);
  for (int pass = 0; pass < 3; pass++) {   /* BLAS; oneDNN f32; oneDNN packed bf16 */
    VlmOps *ops = new_ops (pass == 0 ? VLM_BACKEND_BLAS : VLM_BACKEND_ONEDNN);
    VlmLinearW fc1, fc2;
    g_autoptr (GError) error = NULL;
    g_assert_true (vlm_linear_init (&fc1, "fc1", &wt1, &bt1, &error));
    g_assert_true (vlm_linear_init (&fc2, "fc2", &wt2, &bt2, &error));
    if (pass == 2) {
      g_assert_true (vlm_linear_pack (&fc1, &wt1, VLM_DTYPE_BF16, 64, &error));
      g_assert_true (vlm_linear_pack (&fc2, &wt2, VLM_DTYPE_BF16, 64, &error));
    }
    const char *name = pass == 0 ? "blas" : pass == 1 ? "onednn" : "onednn packed bf16";
    for (int m = 3; m <= 37; m += 34) {
      vlm_linear (ops, &fc1, x, m, hidden, VLM_ACT_GELU_ERF, NULL);
      vlm_linear (ops, &fc2, hidden, m, want, VLM_ACT_NONE, res);
      memcpy (y, res, sizeof (float) * m * K);
      vlm_mlp (ops, &fc1, VLM_ACT_GELU_ERF, &fc2, x, m, y, y);
      vt_assert_close (name, y, want, (int64_t) m * K, TOL);
      /* no residual */
      vlm_linear (ops, &fc2, hidden, m, want, VLM_ACT_NONE, NULL);
      vlm_mlp (ops, &fc1, VLM_ACT_GELU_ERF, &fc2, x, m, y, NULL);
      vt_assert_close ("no residual", y, want, (int64_t) m * K, TOL);
    }
    /* y = x = residual, as GIT's text layers call it */
    g_autofree float *xy = g_memdup2 (x, sizeof (float) * 37 * K);
    vlm_linear (ops, &fc2, hidden, 37, want, VLM_ACT_NONE, x);
    vlm_mlp (ops, &fc1, VLM_ACT_GELU_ERF, &fc2, xy, 37, xy, xy);
    vt_assert_close ("y aliasing x and the residual", xy, want, 37 * K, TOL);
    vlm_linear_clear (&fc1);
    vlm_linear_clear (&fc2);
    vlm_ops_free (ops);
  }
}

/* ------------------------------------------------------------ linear_init */

static void
test_linear_init_bad_weight (void)
{
  float w[24] = { 0 };
  VlmTensor wt = { w, VLM_DTYPE_F32, 3, { 2, 3, 4 } };
  VlmLinearW lin;
  g_autoptr (GError) error = NULL;

  g_assert_false (vlm_linear_init (&lin, "model.layers.0.mlp.fc1", &wt, NULL, &error));
  g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_SHAPE);
  g_assert_nonnull (strstr (error->message, "model.layers.0.mlp.fc1"));
  g_assert_nonnull (strstr (error->message, "[2, 3, 4]"));
}

static void
test_linear_init_bad_bias (void)
{
  float w[12] = { 0 }, b[4] = { 0 };
  VlmTensor wt = f32_tensor (w, 3, 4), bt = f32_tensor (b, 4, 0);
  VlmLinearW lin;
  g_autoptr (GError) error = NULL;

  g_assert_false (vlm_linear_init (&lin, "proj", &wt, &bt, &error));
  g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_SHAPE);
  g_assert_nonnull (strstr (error->message, "proj"));
  g_assert_nonnull (strstr (error->message, "[4]"));   /* got */
  g_assert_nonnull (strstr (error->message, "[3]"));   /* expected */
}

static void
test_linear_init_bad_dtype (void)
{
  int64_t w[6] = { 0 };
  VlmTensor wt = { w, VLM_DTYPE_I64, 2, { 2, 3 } };
  VlmLinearW lin;
  g_autoptr (GError) error = NULL;

  g_assert_false (vlm_linear_init (&lin, "proj", &wt, NULL, &error));
  g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_SHAPE);
  g_assert_nonnull (strstr (error->message, "I64"));
}

/* f32 weights are used where they lie (the mmap), not copied. */
static void
test_linear_init_f32_in_place (void)
{
  float w[6] = { 1, 2, 3, 4, 5, 6 }, b[2] = { 7, 8 };
  VlmTensor wt = f32_tensor (w, 2, 3), bt = f32_tensor (b, 2, 0);
  VlmLinearW lin;

  g_assert_true (vlm_linear_init (&lin, "proj", &wt, &bt, NULL));
  g_assert_cmpint (lin.n, ==, 2);
  g_assert_cmpint (lin.k, ==, 3);
  g_assert_true (lin.weight == w);
  g_assert_true (lin.bias == b);
  vlm_linear_clear (&lin);
}

/* bf16 weights as stored against more rows than the GEMV takes. On a tier
 * without bf16 instructions they stay bf16 and are widened to f32 a chunk
 * of outputs at a time (2 MiB for a few rows, 16 MiB for 128 or more: the
 * shapes give 3 chunks of each), each chunk's columns written into y with
 * its bias, activation and residual; with bf16 instructions oneDNN
 * multiplies the packed weight in bf16. Either way against the reference
 * on the bf16-rounded weights (and inputs where the multiply is bf16). */
static void
test_linear_bf16_chunks (void)
{
  static const struct { int m, n, k; } cases[] = { { 5, 1100, 1024 }, { 128, 8300, 1040 } };
  for (guint c = 0; c < G_N_ELEMENTS (cases); c++) {
    int m = cases[c].m, n = cases[c].n, k = cases[c].k;
    g_autoptr (GRand) r = g_rand_new_with_seed (11 + c);
    g_autofree float *w = rand_f32 (r, (size_t) n * k, -1, 1);
    g_autofree float *b = rand_f32 (r, n, -1, 1);
    g_autofree float *x = rand_f32 (r, (size_t) m * k, -1, 1);
    g_autofree float *res = rand_f32 (r, (size_t) m * n, -5, 5);
    g_autofree uint16_t *wh = g_new (uint16_t, (size_t) n * k);
    for (size_t i = 0; i < (size_t) n * k; i++) w[i] = vlm_bf16_to_f32 (wh[i] = vlm_f32_to_bf16 (w[i]));
    if (vlm_cpu_native_bf16 ())
      for (size_t i = 0; i < (size_t) m * k; i++) x[i] = vlm_bf16_to_f32 (vlm_f32_to_bf16 (x[i]));
    g_autofree float *want = g_new (float, (size_t) m * n);
    g_autofree float *y = g_new (float, (size_t) m * n);
    naive_linear (w, b, n, k, x, m, VLM_ACT_GELU_TANH, res, want);
    VlmTensor wt = { wh, VLM_DTYPE_BF16, 2, { n, k } }, bt = f32_tensor (b, n, 0);
    VlmLinearW lin;
    g_autoptr (GError) error = NULL;
    g_assert_true (vlm_linear_init (&lin, "fc", &wt, &bt, &error));
    g_assert_true (vlm_linear_pack (&lin, &wt, VLM_DTYPE_BF16, m, &error));
    g_assert_no_error (error);
    VlmOps *ops = new_ops (VLM_BACKEND_ONEDNN);
    vlm_linear (ops, &lin, x, m, y, VLM_ACT_GELU_TANH, res);
    g_test_message ("bf16 weights, %d rows of %d x %d on %s", m, n, k, vlm_cpu_describe ());
    vt_assert_close ("bf16 weights in chunks", y, want, (int64_t) m * n, TOL);
    vlm_ops_free (ops);
    vlm_linear_clear (&lin);
  }
}

/* bf16 weights and f16 bias are converted once; the op then uses exactly
 * the converted values. */
static void
test_linear_init_bf16 (void)
{
  g_autoptr (GRand) r = g_rand_new_with_seed (7);
  int n = 19, k = 21, m = 3;
  g_autofree float *w = rand_f32 (r, (size_t) n * k, -1, 1);
  g_autofree float *x = rand_f32 (r, (size_t) m * k, -1, 1);
  g_autofree uint16_t *wh = g_new (uint16_t, (size_t) n * k);
  g_autofree uint16_t *bh = g_new (uint16_t, n);
  g_autofree float *b = g_new (float, n);
  g_autofree float *want = g_new (float, (size_t) m * n);
  g_autofree float *y = g_new (float, (size_t) m * n);
  for (int i = 0; i < n * k; i++) w[i] = vlm_bf16_to_f32 (wh[i] = vlm_f32_to_bf16 (w[i]));
  for (int j = 0; j < n; j++) {
    bh[j] = 0x3800 + j;                      /* f16 0.5 + j·2⁻¹¹ */
    b[j] = 0.5f + j / 2048.0f;
  }
  VlmTensor wt = { wh, VLM_DTYPE_BF16, 2, { n, k } }, bt = { bh, VLM_DTYPE_F16, 1, { n } };
  VlmLinearW lin;

  g_assert_true (vlm_linear_init (&lin, "proj", &wt, &bt, NULL));
  g_assert_nonnull (lin.owned_weight);
  g_assert_cmpmem (lin.weight, sizeof (float) * n * k, w, sizeof (float) * n * k);
  g_assert_cmpmem (lin.bias, sizeof (float) * n, b, sizeof (float) * n);
  naive_linear (w, b, n, k, x, m, VLM_ACT_NONE, NULL, want);
  for (int i = 0; i < 2; i++) {
    VlmOps *ops = new_ops (backends[i]);
    vlm_linear (ops, &lin, x, m, y, VLM_ACT_NONE, NULL);
    vt_assert_close (backend_names[i], y, want, (int64_t) m * n, TOL);
    vlm_ops_free (ops);
  }
  vlm_linear_clear (&lin);
  g_assert_null (lin.weight);
}

/* ------------------------------------------------------------ primitive cache */

/* A second call of the same shape, on other buffers, reuses the primitive
 * (rebinding its memory) and still computes the right thing. */
static void
test_cache_same_shape (void)
{
  g_autoptr (GRand) r = g_rand_new_with_seed (11);
  int m = 7, n = 33, k = 17;
  g_autofree float *w = rand_f32 (r, (size_t) n * k, -1, 1);
  g_autofree float *x1 = rand_f32 (r, (size_t) m * k, -1, 1);
  g_autofree float *x2 = rand_f32 (r, (size_t) m * k, -1, 1);
  g_autofree float *y1 = g_new (float, (size_t) m * n);
  g_autofree float *y2 = g_new (float, (size_t) m * n);
  g_autofree float *want = g_new (float, (size_t) m * n);
  VlmTensor wt = f32_tensor (w, n, k);
  VlmLinearW lin;
  VlmOps *ops = new_ops_threads (VLM_BACKEND_ONEDNN, 1);

  g_assert_true (vlm_linear_init (&lin, "fc", &wt, NULL, NULL));
  g_assert_cmpint (vlm_ops_n_primitives (ops), ==, 0);
  vlm_linear (ops, &lin, x1, m, y1, VLM_ACT_RELU, NULL);
  int after_first = vlm_ops_n_primitives (ops);
  g_assert_cmpint (after_first, ==, 1);
  vlm_linear (ops, &lin, x2, m, y2, VLM_ACT_RELU, NULL);
  g_assert_cmpint (vlm_ops_n_primitives (ops), ==, after_first);
  naive_linear (w, NULL, n, k, x2, m, VLM_ACT_RELU, NULL, want);
  vt_assert_close ("second call", y2, want, (int64_t) m * n, TOL);

  vlm_linear (ops, &lin, x2, m - 1, y2, VLM_ACT_RELU, NULL);   /* a new m is a new shape */
  g_assert_cmpint (vlm_ops_n_primitives (ops), ==, after_first + 1);
  vlm_ops_free (ops);
  vlm_linear_clear (&lin);
}

typedef struct {
  VlmOps *ops;
  const VlmLinearW *lin;
  const float *x;
  float *y;
} ThreadCall;

static gpointer
linear_in_thread (gpointer data)
{
  ThreadCall *c = data;
  vlm_ops_bind_thread (c->ops);
  vlm_linear (c->ops, c->lin, c->x, 3, c->y, VLM_ACT_GELU_TANH, NULL);
  return NULL;
}

/* Primitives created on one thread run on another (user scratchpad), as
 * when GStreamer hands a session to a new streaming thread. */
static void
test_other_thread (void)
{
  g_autoptr (GRand) r = g_rand_new_with_seed (13);
  int m = 3, n = 33, k = 17;
  g_autofree float *w = rand_f32 (r, (size_t) n * k, -1, 1);
  g_autofree float *x = rand_f32 (r, (size_t) m * k, -1, 1);
  g_autofree float *y = g_new (float, (size_t) m * n);
  g_autofree float *want = g_new (float, (size_t) m * n);
  VlmTensor wt = f32_tensor (w, n, k);
  VlmLinearW lin;
  VlmOps *ops = new_ops_threads (VLM_BACKEND_ONEDNN, 1);
  ThreadCall call = { ops, &lin, x, y };

  g_assert_true (vlm_linear_init (&lin, "fc", &wt, NULL, NULL));
  vlm_linear (ops, &lin, x, m, y, VLM_ACT_GELU_TANH, NULL);
  memset (y, 0, sizeof (float) * m * n);
  g_thread_join (g_thread_new ("other", linear_in_thread, &call));
  g_assert_cmpint (vlm_ops_n_primitives (ops), ==, 1);
  naive_linear (w, NULL, n, k, x, m, VLM_ACT_GELU_TANH, NULL, want);
  vt_assert_close ("other thread", y, want, (int64_t) m * n, TOL);
  vlm_ops_free (ops);
  vlm_linear_clear (&lin);
}

/* ------------------------------------------------------------ norms, softmax, act */

static void
naive_layer_norm (const float *x, int m, int n, const float *g, const float *b, double eps,
                  float *y)
{
  for (int i = 0; i < m; i++) {
    double mean = 0, var = 0;
    for (int j = 0; j < n; j++) mean += x[i * n + j] / (double) n;
    for (int j = 0; j < n; j++) var += pow (x[i * n + j] - mean, 2) / n;
    for (int j = 0; j < n; j++)
      y[i * n + j] = (float) ((x[i * n + j] - mean) / sqrt (var + eps) * g[j] + (b ? b[j] : 0));
  }
}

/* Rows with a large mean and small spread, where a one-pass variance would
 * lose digits; computed in place (y aliases x). */
static void
check_layer_norm (gboolean with_beta)
{
  g_autoptr (GRand) r = g_rand_new_with_seed (3);
  int m = 7, n = 45;
  g_autofree float *x = rand_f32 (r, (size_t) m * n, 2.5, 3.5);
  g_autofree float *g = rand_f32 (r, n, 0.5, 1.5);
  g_autofree float *b = rand_f32 (r, n, -1, 1);
  g_autofree float *want = g_new (float, (size_t) m * n);
  g_autofree float *y = g_new (float, (size_t) m * n);

  naive_layer_norm (x, m, n, g, with_beta ? b : NULL, 1e-5, want);
  for (int i = 0; i < 2; i++) {
    VlmOps *ops = new_ops (backends[i]);
    memcpy (y, x, sizeof (float) * m * n);
    vlm_layer_norm (ops, y, m, n, g, with_beta ? b : NULL, 1e-5f, y);
    vt_assert_close (backend_names[i], y, want, (int64_t) m * n, TOL);
    vlm_ops_free (ops);
  }
}

static void test_layer_norm_beta (void) { check_layer_norm (TRUE); }
static void test_layer_norm_no_beta (void) { check_layer_norm (FALSE); }

/* Out of place: x must be left as it was. */
static void
test_rms_norm (void)
{
  g_autoptr (GRand) r = g_rand_new_with_seed (4);
  int m = 5, n = 37;
  g_autofree float *x = rand_f32 (r, (size_t) m * n, -3, 3);
  g_autofree float *x0 = g_memdup2 (x, sizeof (float) * m * n);
  g_autofree float *w = rand_f32 (r, n, 0.5, 1.5);
  g_autofree float *want = g_new (float, (size_t) m * n);
  g_autofree float *y = g_new (float, (size_t) m * n);

  for (int i = 0; i < m; i++) {
    double ss = 0;
    for (int j = 0; j < n; j++) ss += (double) x[i * n + j] * x[i * n + j];
    for (int j = 0; j < n; j++)
      want[i * n + j] = (float) (w[j] * x[i * n + j] / sqrt (ss / n + 1e-6));
  }
  for (int i = 0; i < 2; i++) {
    VlmOps *ops = new_ops (backends[i]);
    vlm_rms_norm (ops, x, m, n, w, 1e-6f, y);
    vt_assert_close (backend_names[i], y, want, (int64_t) m * n, TOL);
    g_assert_cmpmem (x, sizeof (float) * m * n, x0, sizeof (float) * m * n);
    vlm_ops_free (ops);
  }
}

static void
test_softmax (void)
{
  g_autoptr (GRand) r = g_rand_new_with_seed (5);
  int m = 6, n = 37;
  g_autofree float *x = rand_f32 (r, (size_t) m * n, -20, 20);
  g_autofree float *want = g_new (float, (size_t) m * n);
  g_autofree float *y = g_new (float, (size_t) m * n);

  for (int i = 0; i < m; i++) {
    double sum = 0;
    for (int j = 0; j < n; j++) sum += exp (x[i * n + j]);
    for (int j = 0; j < n; j++) want[i * n + j] = (float) (exp (x[i * n + j]) / sum);
  }
  for (int i = 0; i < 2; i++) {
    VlmOps *ops = new_ops (backends[i]);
    memcpy (y, x, sizeof (float) * m * n);
    vlm_softmax (ops, y, m, n);
    vt_assert_close (backend_names[i], y, want, (int64_t) m * n, TOL);
    vlm_ops_free (ops);
  }
}

/* ------------------------------------------------------------ convolution */

typedef struct {
  const char *path;
  int in, out, kernel, stride, padding, groups, h, w;
  gboolean residual;
} ConvCase;

static const ConvCase conv_cases[] = {
  /* DaViT's first patch embedding (7/4/3) and a later one (3/2/1), on odd sides */
  { "/ops/conv2d/dense-7x7-s4", 3, 16, 7, 4, 3, 1, 19, 13, FALSE },
  { "/ops/conv2d/dense-3x3-s2", 16, 24, 3, 2, 1, 1, 9, 11, FALSE },
  /* its depthwise position encoding, conv(x) + x */
  { "/ops/conv2d/depthwise-residual", 20, 20, 3, 1, 1, 20, 7, 5, TRUE },
};

/* y[oy, ox, o] = b[o] + Σ w[o, i, ky, kx] · x[iy, ix, g · in/G + i] (+ x) in double. */
static void
naive_conv (const ConvCase *c, const float *x, const float *wt, const float *b, float *y)
{
  int ho = (c->h + 2 * c->padding - c->kernel) / c->stride + 1, wo = (c->w + 2 * c->padding - c->kernel) / c->stride + 1;
  int ipg = c->in / c->groups, opg = c->out / c->groups;
  for (int oy = 0; oy < ho; oy++)
    for (int ox = 0; ox < wo; ox++)
      for (int o = 0; o < c->out; o++) {
        double acc = b[o];
        for (int i = 0; i < ipg; i++)
          for (int ky = 0; ky < c->kernel; ky++)
            for (int kx = 0; kx < c->kernel; kx++) {
              int iy = oy * c->stride - c->padding + ky, ix = ox * c->stride - c->padding + kx;
              if (iy >= 0 && iy < c->h && ix >= 0 && ix < c->w)
                acc += (double) wt[((o * ipg + i) * c->kernel + ky) * c->kernel + kx] *
                       x[(iy * c->w + ix) * c->in + (o / opg) * ipg + i];
            }
        if (c->residual)
          acc += x[(oy * c->w + ox) * c->in + o];
        y[(oy * wo + ox) * c->out + o] = (float) acc;
      }
}

static void
test_conv2d (gconstpointer data)
{
  const ConvCase *c = data;
  g_autoptr (GRand) r = g_rand_new_with_seed (11);
  int ho = (c->h + 2 * c->padding - c->kernel) / c->stride + 1, wo = (c->w + 2 * c->padding - c->kernel) / c->stride + 1;
  size_t nx = (size_t) c->h * c->w * c->in, ny = (size_t) ho * wo * c->out;
  size_t nw = (size_t) c->out * (c->in / c->groups) * c->kernel * c->kernel;
  g_autofree float *x = rand_f32 (r, nx, -1, 1), *wt = rand_f32 (r, nw, -0.5, 0.5), *b = rand_f32 (r, c->out, -1, 1);
  g_autofree float *want = g_new (float, ny), *y = g_new (float, ny);
  VlmConvW conv = { c->out, c->in, c->kernel, c->stride, c->padding, c->groups, wt, b };
  g_assert_cmpint (vlm_conv_out_size (&conv, c->h), ==, ho);
  naive_conv (c, x, wt, b, want);
  for (int i = 0; i < 4; i++) {   /* each backend on two threads, then on one */
    VlmOps *ops = i < 2 ? new_ops (backends[i]) : new_ops_threads (backends[i - 2], 1);
    for (int pass = 0; pass < 2; pass++) {   /* the second through the cached primitive */
      memset (y, 0, ny * sizeof (float));
      vlm_conv2d (ops, &conv, x, c->h, c->w, y, c->residual ? x : NULL);
      g_autoptr (GError) error = NULL;
      g_assert_true (vlm_ops_take_error (ops, &error));
      vt_assert_close (backend_names[i % 2], y, want, (int64_t) ny, TOL);
    }
    /* one primitive at most per thread count (on two threads the load
     * beside this test may have run a pass on one) */
    g_assert_cmpint (vlm_ops_n_primitives (ops), <=, i < 2 ? 2 : 1);
    vlm_ops_free (ops);
  }
}

static void
test_act (gconstpointer data)
{
  VlmAct act = GPOINTER_TO_INT (data);
  g_autoptr (GRand) r = g_rand_new_with_seed (6);
  size_t n = 1001;
  g_autofree float *x = rand_f32 (r, n, -6, 6);
  g_autofree float *want = g_new (float, n);
  g_autofree float *y = g_new (float, n);

  for (size_t i = 0; i < n; i++) want[i] = (float) naive_act (act, x[i]);
  for (int i = 0; i < 2; i++) {
    VlmOps *ops = new_ops (backends[i]);
    memcpy (y, x, sizeof (float) * n);
    vlm_act (ops, act, y, n);
    vt_assert_close (backend_names[i], y, want, n, TOL);
    vlm_ops_free (ops);
  }
  /* each kernel table's own (the decode GEMV's epilogue), over the range
   * above and far out (where sigmoid and erf saturate), against the
   * definition in double: |error| <= 5e-7 · max(1, |x|) (measured 1.2–1.6e-7) */
  static const float far[] = { -100, -30, -12, -9.5f, 0, 1e-30f, -1e-30f, 9.5f, 12, 30, 100 };
  memcpy (x, far, sizeof far);
  for (size_t i = 0; i < n; i++) want[i] = (float) naive_act (act, x[i]);
  for (guint t = 0; t < G_N_ELEMENTS (kernel_tables); t++) {
    if (!table_runs (&kernel_tables[t]))
      continue;
    memcpy (y, x, sizeof (float) * n);
    kernel_tables[t].k->act (act, y, n);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
      double e = fabs ((double) y[i] - want[i]) / MAX (1.0, fabs (x[i]));
      g_assert_true (isfinite (y[i]));
      worst = MAX (worst, e);
    }
    g_test_message ("%s kernels: act %d, worst |error| / max(1, |x|) %.2g", kernel_tables[t].name, act, worst);
    g_assert_cmpfloat (worst, <=, 5e-7);
  }
}

/* The int8 linears' input quantisation (u8_range, u8_quantise) of every
 * table this CPU runs against the definition, byte for byte: q =
 * clamp (rne (x · inv) + zero, 0, 255) with the product rounded to float
 * first, NaNs out of the range and quantised to 0. Every length 0..99 from
 * an odd address (the vector tails), exact ties (x · inv = k + 1/2, which
 * round to even), ±0, ±inf, NaN, values far out and at the clamps. */
static void
test_u8_quantise (void)
{
  enum { N = 100 };
  g_autoptr (GRand) r = g_rand_new_with_seed (29);
  float x[N + 1];
  static const float odd[] = { NAN, INFINITY, -INFINITY, -0.0f, 0.0f, 1e30f, -1e30f, 63.75f, 64.25f, -64.0f };
  for (int i = 0; i <= N; i++)
    x[i] = i % 3 == 0 ? (float) g_rand_int_range (r, -130, 130) / 2.0f + 0.25f   /* · 2: a tie */
                      : (float) g_rand_double_range (r, -70, 70);
  for (guint i = 0; i < G_N_ELEMENTS (odd); i++) x[7 * i + 5] = odd[i];
  const float invs[] = { 2.0f, 1.0f / 0.3f }, zeros[] = { 128.0f, 0.0f };
  for (guint t = 0; t < G_N_ELEMENTS (kernel_tables); t++) {
    if (!table_runs (&kernel_tables[t]))
      continue;
    const VlmKernels *k = kernel_tables[t].k;
    int differ = 0, checked = 0;
    for (int n = 0; n < N; n++) {
      const float *xs = x + 1;   /* an odd address */
      float lo = 0.0f, hi = 0.0f, lo_want = 0.0f, hi_want = 0.0f;
      k->u8_range (xs, n, &lo, &hi);
      for (int i = 0; i < n; i++) {
        if (xs[i] < lo_want) lo_want = xs[i];
        if (xs[i] > hi_want) hi_want = xs[i];
      }
      g_assert_cmpfloat (lo, ==, lo_want);
      g_assert_cmpfloat (hi, ==, hi_want);
      for (guint c = 0; c < G_N_ELEMENTS (invs); c++) {
        guint8 q[N + 1];
        q[n] = 0xa5;   /* must stay */
        k->u8_quantise (xs, n, invs[c], zeros[c], q);
        g_assert_cmpint (q[n], ==, 0xa5);
        for (int i = 0; i < n; i++) {
          volatile float p = xs[i] * invs[c];
          float v = isnan (p) ? 0.0f : rintf (p) + zeros[c];
          guint8 want = (guint8) (v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v);
          differ += q[i] != want;
          checked++;
        }
      }
    }
    g_test_message ("%s kernels: u8 quantisation, %d of %d bytes differ from the definition", kernel_tables[t].name,
                    differ, checked);
    g_assert_cmpint (differ, ==, 0);
  }
}

static void
test_act_from_name (void)
{
  VlmAct act;
  g_assert_true (vlm_act_from_name ("gelu", &act));
  g_assert_cmpint (act, ==, VLM_ACT_GELU_ERF);
  g_assert_true (vlm_act_from_name ("gelu_pytorch_tanh", &act));
  g_assert_cmpint (act, ==, VLM_ACT_GELU_TANH);
  g_assert_true (vlm_act_from_name ("gelu_new", &act));
  g_assert_cmpint (act, ==, VLM_ACT_GELU_TANH);
  g_assert_true (vlm_act_from_name ("quick_gelu", &act));
  g_assert_cmpint (act, ==, VLM_ACT_QUICK_GELU);
  g_assert_true (vlm_act_from_name ("silu", &act));
  g_assert_cmpint (act, ==, VLM_ACT_SILU);
  g_assert_true (vlm_act_from_name ("relu", &act));
  g_assert_cmpint (act, ==, VLM_ACT_RELU);
  g_assert_false (vlm_act_from_name ("gelu_10", &act));
  g_assert_false (vlm_act_from_name (NULL, &act));
}

/* ------------------------------------------------------------ KV cache */

/* A bf16 KV cache (a bf16 model's) attends exactly as an f32 one holding
 * the same keys and values rounded to bf16: the decode kernel (up to 8
 * query rows, head_dim 32) reads them widened in place, the other paths
 * (12 query rows; head_dim 8) from a widened copy; after a beam reorder,
 * on both backends. */
static void
test_kv_cache_bf16 (void)
{
  enum { LAYERS = 2, BEAMS = 2, MAXR = 40, LK = 37, H = 4, KVH = 2 };
  static const int hds[] = { 32, 8 }, lqs[] = { 1, 3, 8, 12 };
  g_autoptr (GRand) r = g_rand_new_with_seed (23);
  for (int bi = 0; bi < 2; bi++)
    for (guint hi = 0; hi < G_N_ELEMENTS (hds); hi++) {
      int hd = hds[hi], width = KVH * hd;
      VlmOps *ops = new_ops (backends[bi]);
      VlmArena arena;
      g_assert_true (vlm_arena_init (&arena, vlm_kv_cache_bytes (LAYERS, BEAMS, MAXR, KVH, hd, FALSE) +
                                                 vlm_kv_cache_bytes (LAYERS, BEAMS, MAXR, KVH, hd, TRUE)));
      VlmKvCache f, b;
      vlm_kv_cache_init (&f, &arena, LAYERS, BEAMS, MAXR, KVH, hd, FALSE);
      vlm_kv_cache_init (&b, &arena, LAYERS, BEAMS, MAXR, KVH, hd, TRUE);
      for (int li = 0; li < LAYERS; li++)
        for (int beam = 0; beam < BEAMS; beam++) {
          g_autofree float *k = rand_f32 (r, (size_t) LK * width, -2, 2), *v = rand_f32 (r, (size_t) LK * width, -2, 2);
          g_autofree float *kr = g_new (float, (size_t) LK * width), *vr = g_new (float, (size_t) LK * width);
          for (int i = 0; i < LK * width; i++) {
            kr[i] = vlm_bf16_to_f32 (vlm_f32_to_bf16 (k[i]));
            vr[i] = vlm_bf16_to_f32 (vlm_f32_to_bf16 (v[i]));
          }
          vlm_kv_cache_store (&f, li, beam, 0, LK, kr, width, vr, width);
          vlm_kv_cache_store (&b, li, beam, 0, LK, k, width, v, width);
        }
      const int swap[] = { 1, 0 };
      vlm_kv_cache_reorder (&f, swap, BEAMS, LK);
      vlm_kv_cache_reorder (&b, swap, BEAMS, LK);
      for (guint qi = 0; qi < G_N_ELEMENTS (lqs); qi++) {
        int lq = lqs[qi];
        g_autofree float *q = rand_f32 (r, (size_t) lq * H * hd, -1, 1);
        g_autofree float *of = g_new0 (float, (size_t) lq * H * hd), *ob = g_new0 (float, (size_t) lq * H * hd);
        const VlmMask causal = { TRUE, 0, LK - lq };
        for (int beam = 0; beam < BEAMS; beam++) {
          vlm_kv_cache_attend (&f, ops, 1, beam, q, H * hd, lq, LK, H, 0.3f, &causal, of, H * hd);
          vlm_kv_cache_attend (&b, ops, 1, beam, q, H * hd, lq, LK, H, 0.3f, &causal, ob, H * hd);
          g_assert_true (vlm_ops_take_error (ops, NULL));
          for (int i = 0; i < lq * H * hd; i++)
            if (of[i] != ob[i])
              g_error ("%s, head_dim %d, %d query rows, beam %d: output %d %.9g vs %.9g", backend_names[bi], hd, lq,
                       beam, i, of[i], ob[i]);
        }
      }
      vlm_arena_clear (&arena);
      vlm_ops_free (ops);
    }
}

/* ------------------------------------------------------------ attention */

typedef struct {
  const char *path;
  int lq, lk, n_heads, n_kv_heads, head_dim;
  VlmMask mask;
  gboolean fused_qkv;   /* q, k, v interleaved in one [l, 3·D] buffer, out strided */
} AttnCase;

static const AttnCase attn_cases[] = {
  { "/ops/attention/full", 17, 17, 4, 4, 16, { FALSE, 0, 0 }, FALSE },
  { "/ops/attention/cross-lengths", 5, 23, 3, 3, 8, { FALSE, 0, 0 }, FALSE },
  { "/ops/attention/causal-prefill", 9, 9, 2, 2, 16, { TRUE, 0, 0 }, FALSE },
  { "/ops/attention/causal-decode", 1, 12, 4, 4, 16, { TRUE, 0, 11 }, FALSE },
  { "/ops/attention/causal-chunk", 3, 10, 2, 2, 16, { TRUE, 0, 7 }, FALSE },
  { "/ops/attention/git-prefix", 15, 15, 2, 2, 16, { TRUE, 10, 0 }, FALSE },
  { "/ops/attention/git-prefix-decode", 1, 16, 2, 2, 16, { TRUE, 10, 15 }, FALSE },
  { "/ops/attention/gqa", 6, 6, 4, 2, 16, { TRUE, 0, 0 }, FALSE },
  { "/ops/attention/gqa-decode", 1, 9, 4, 2, 16, { TRUE, 0, 8 }, FALSE },
  { "/ops/attention/strided", 11, 11, 3, 3, 8, { FALSE, 0, 0 }, TRUE },
  { "/ops/attention/strided-gqa-causal", 7, 7, 4, 2, 8, { TRUE, 0, 0 }, TRUE },
  { "/ops/attention/large", 1182, 1182, 2, 2, 64, { FALSE, 0, 0 }, FALSE },
  /* oneDNN runs this in two blocks of query rows (4 MiB of scores each):
   * the mask must follow the block's rows */
  { "/ops/attention/large-gqa-causal-prefix", 700, 700, 4, 2, 16, { TRUE, 100, 0 }, FALSE },
  /* decode shapes of the real models (head_dim 64, key counts with a
   * partial block of 32): Qwen2-0.5B's 7-head groups, GIT's prefix */
  { "/ops/attention/gqa7-decode", 1, 77, 14, 2, 64, { TRUE, 0, 76 }, FALSE },
  { "/ops/attention/gqa7-chunk", 4, 45, 14, 2, 64, { TRUE, 0, 41 }, FALSE },
  { "/ops/attention/git-prefix-decode-64", 1, 70, 12, 12, 64, { TRUE, 60, 69 }, FALSE },
  { "/ops/attention/mqa-decode", 2, 40, 8, 1, 32, { TRUE, 0, 38 }, FALSE },
  { "/ops/attention/cross-decode", 3, 33, 4, 2, 16, { FALSE, 0, 0 }, FALSE },
};

static gboolean
naive_sees (const VlmMask *mask, int i, int j)
{
  if (!mask->causal || j < mask->prefix)
    return TRUE;
  return j <= mask->q_pos0 + i;   /* i is relative to the first query */
}

static void
naive_attention (const AttnCase *c, const float *q, int ldq, const float *k, int ldk,
                 const float *v, int ldv, float scale, float *out, int ldo)
{
  int hd = c->head_dim;
  g_autofree double *p = g_new (double, c->lk);
  for (int h = 0; h < c->n_heads; h++) {
    int kvh = h * c->n_kv_heads / c->n_heads;
    for (int i = 0; i < c->lq; i++) {
      double max = -INFINITY, sum = 0;
      for (int j = 0; j < c->lk; j++) {
        double s = 0;
        for (int t = 0; t < hd; t++)
          s += (double) q[i * ldq + h * hd + t] * k[j * ldk + kvh * hd + t];
        p[j] = naive_sees (&c->mask, i, j) ? s * scale : -INFINITY;
        max = fmax (max, p[j]);
      }
      for (int j = 0; j < c->lk; j++) sum += (p[j] = exp (p[j] - max));
      for (int t = 0; t < hd; t++) {
        double o = 0;
        for (int j = 0; j < c->lk; j++) o += p[j] / sum * v[j * ldv + kvh * hd + t];
        out[i * ldo + h * hd + t] = (float) o;
      }
    }
  }
}

/* A copy of n floats rounded to bf16 and back. */
static float *
bf16_rounded (const float *x, size_t n)
{
  float *y = g_new (float, n);
  for (size_t i = 0; i < n; i++) y[i] = vlm_bf16_to_f32 (vlm_f32_to_bf16 (x[i]));
  return y;
}

/* Each backend in f32, and oneDNN with bf16 attention. bf16 attention
 * (more than 8 query rows) must equal the exact attention of q, k and v
 * rounded to bf16, up to the rounding of the probabilities to bf16: each
 * moves by at most 2^-8 of itself (8 significant bits), so an output, a
 * convex combination of values, by at most 2^-8 · max|v| = 2^-7. That
 * bound over the output's range is the tolerance. Decode sizes stay f32.
 * Padding columns of a strided output must stay untouched. */
static void
test_attention (gconstpointer data)
{
  const AttnCase *c = data;
  g_autoptr (GRand) r = g_rand_new_with_seed (c->lq * 100 + c->lk);
  int dq = c->n_heads * c->head_dim, dkv = c->n_kv_heads * c->head_dim;
  int ldq = c->fused_qkv ? dq + 2 * dkv : dq, ldk = c->fused_qkv ? ldq : dkv, ldv = ldk;
  int ldo = c->fused_qkv ? dq + 5 : dq;
  /* fused: each row is [q | k | v]; else three dense buffers */
  size_t n_qkv = (size_t) MAX (c->lq, c->lk) * (dq + 2 * dkv) + 1;
  g_autofree float *qkv = rand_f32 (r, n_qkv, -2, 2);
  g_autofree float *kbuf = rand_f32 (r, (size_t) c->lk * dkv, -2, 2);
  g_autofree float *vbuf = rand_f32 (r, (size_t) c->lk * dkv, -2, 2);
  const float *q = qkv;
  const float *k = c->fused_qkv ? qkv + dq : kbuf, *v = c->fused_qkv ? qkv + dq + dkv : vbuf;
  float scale = 1.0f / sqrtf ((float) c->head_dim);
  size_t n_out = (size_t) c->lq * ldo;
  g_autofree float *want = g_new0 (float, n_out);
  g_autofree float *want16 = g_new0 (float, n_out);
  g_autofree float *out = g_new (float, n_out);

  naive_attention (c, q, ldq, k, ldk, v, ldv, scale, want, ldo);
  {
    g_autofree float *qkv16 = bf16_rounded (qkv, n_qkv);
    g_autofree float *k16 = bf16_rounded (kbuf, (size_t) c->lk * dkv);
    g_autofree float *v16 = bf16_rounded (vbuf, (size_t) c->lk * dkv);
    naive_attention (c, qkv16, ldq, c->fused_qkv ? qkv16 + dq : k16, ldk,
                     c->fused_qkv ? qkv16 + dq + dkv : v16, ldv, scale, want16, ldo);
  }
  float lo = want16[0], hi = want16[0];
  for (size_t i = 0; i < n_out; i++) {
    lo = MIN (lo, want16[i]);
    hi = MAX (hi, want16[i]);
  }
  double bf16_tol = ldexp (1.0, -7) / (hi - lo);
  const struct { VlmBackend backend; VlmDType attn; const char *name; } runs[] = {
    { VLM_BACKEND_ONEDNN, VLM_DTYPE_F32, "onednn" },
    { VLM_BACKEND_BLAS, VLM_DTYPE_F32, "blas" },
    { VLM_BACKEND_ONEDNN, VLM_DTYPE_BF16, "onednn, bf16 attention" },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (runs); i++) {
    VlmOps *ops = new_ops (runs[i].backend);
    vlm_ops_set_attention_dtype (ops, runs[i].attn);
    gboolean in_bf16 = runs[i].attn == VLM_DTYPE_BF16 && c->lq > 8;
    const float *expect = in_bf16 ? want16 : want;
    double tol = in_bf16 ? bf16_tol : TOL;
    memset (out, 0, sizeof (float) * n_out);
    vlm_attention (ops, q, ldq, k, ldk, v, ldv, c->lq, c->lk, c->n_heads, c->n_kv_heads,
                   c->head_dim, scale, &c->mask, out, ldo);
    vt_assert_close (runs[i].name, out, expect, (int64_t) n_out, tol);
    for (int row = 0; row < c->lq; row++)
      for (int col = dq; col < ldo; col++) g_assert_cmpfloat (out[row * ldo + col], ==, 0.0f);

    /* the same keys transposed, as a KV cache holds them (rows padded) */
    int ldkt = c->lk + 3;
    g_autofree float *kt = g_new0 (float, (size_t) dkv * ldkt);
    for (int j = 0; j < c->lk; j++)
      for (int t = 0; t < dkv; t++) kt[(size_t) t * ldkt + j] = k[(size_t) j * ldk + t];
    memset (out, 0, sizeof (float) * n_out);
    vlm_attention_kt (ops, q, ldq, kt, ldkt, v, ldv, c->lq, c->lk, c->n_heads, c->n_kv_heads,
                      c->head_dim, scale, &c->mask, out, ldo);
    g_autofree char *what = g_strdup_printf ("%s, keys transposed", runs[i].name);
    vt_assert_close (what, out, expect, (int64_t) n_out, tol);
    for (int row = 0; row < c->lq; row++)
      for (int col = dq; col < ldo; col++) g_assert_cmpfloat (out[row * ldo + col], ==, 0.0f);
    vlm_ops_free (ops);
  }
}

/* vlm_cpu_threads_now gives up a core to a process that spins on it, and
 * oneDNN's ops then run on one thread through a primitive made for one
 * (GIT's f32 tower capped to AVX2 beside a spinner: 18 % slower through
 * the primitives made for two). The suite runs with VLM_FOLLOW_LOAD=0;
 * this case turns the following on. */
static void
test_threads_follow_load (void)
{
  if (!g_file_test ("/proc/stat", G_FILE_TEST_EXISTS)) {
    g_test_skip ("no /proc/stat: the engine keeps its thread count");
    return;
  }
  g_autoptr (GRand) r = g_rand_new_with_seed (31);
  int m = 40, n = 96, k = 64;
  g_autofree float *w = rand_f32 (r, (size_t) n * k, -1, 1), *x = rand_f32 (r, (size_t) m * k, -1, 1);
  g_autofree float *y = g_new (float, (size_t) m * n), *want = g_new (float, (size_t) m * n);
  VlmTensor wt = f32_tensor (w, n, k);
  VlmLinearW lin;
  g_assert_true (vlm_linear_init (&lin, "fc", &wt, NULL, NULL));
  naive_linear (w, NULL, n, k, x, m, VLM_ACT_NONE, NULL, want);
  vlm_cpu_follow_load (TRUE);
  g_assert_cmpint (vlm_cpu_threads_now (2), ==, 2);   /* no sample yet */
  char *argv[] = { "/bin/sh", "-c", "while :; do :; done", NULL };
  GPid pid;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_spawn_async (NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &pid, &error));
  g_assert_no_error (error);
  int now = 2;
  gint64 t0 = g_get_monotonic_time ();
  while (now != 1 && g_get_monotonic_time () - t0 < 5 * G_USEC_PER_SEC) {
    g_usleep (50000);
    now = vlm_cpu_threads_now (2);
  }
  g_test_message ("beside a spinning process: %d of 2 threads after %.2f s", now,
                  (g_get_monotonic_time () - t0) / 1e6);
  VlmOps *ops = new_ops (VLM_BACKEND_ONEDNN);
  vlm_linear (ops, &lin, x, m, y, VLM_ACT_NONE, NULL);
  int prims = vlm_ops_n_primitives (ops);
  kill (pid, SIGKILL);   /* before any assertion: no spinner outlives a failure */
  waitpid (pid, NULL, 0);
  g_spawn_close_pid (pid);
  vt_assert_close ("on the cores left", y, want, (int64_t) m * n, TOL);
  vlm_cpu_follow_load (FALSE);
  g_assert_cmpint (vlm_cpu_threads_now (2), ==, 2);
  /* and a primitive of its own for two threads */
  vlm_linear (ops, &lin, x, m, y, VLM_ACT_NONE, NULL);
  vt_assert_close ("on two threads", y, want, (int64_t) m * n, TOL);
  g_assert_cmpint (now, ==, 1);
  g_assert_cmpint (prims, ==, 1);
  g_assert_cmpint (vlm_ops_n_primitives (ops), ==, 2);
  vlm_ops_free (ops);
  vlm_linear_clear (&lin);
}

/* A decode-like repeat of one attention shape creates no primitive. */
static void
test_cache_attention (void)
{
  const AttnCase *c = &attn_cases[0];
  int d = c->n_heads * c->head_dim;
  g_autoptr (GRand) r = g_rand_new_with_seed (12);
  g_autofree float *q = rand_f32 (r, (size_t) c->lq * d, -1, 1);
  g_autofree float *out = g_new (float, (size_t) c->lq * d);
  VlmOps *ops = new_ops_threads (VLM_BACKEND_ONEDNN, 1);

  vlm_attention (ops, q, d, q, d, q, d, c->lq, c->lk, c->n_heads, c->n_kv_heads, c->head_dim,
                 0.25f, &c->mask, out, d);
  int after_first = vlm_ops_n_primitives (ops);
  g_assert_cmpint (after_first, >, 0);
  vlm_attention (ops, q, d, q, d, q, d, c->lq, c->lk, c->n_heads, c->n_kv_heads, c->head_dim,
                 0.25f, &c->mask, out, d);
  g_assert_cmpint (vlm_ops_n_primitives (ops), ==, after_first);
  vlm_ops_free (ops);
}

/* ------------------------------------------------------------ main */

int
main (int argc, char **argv)
{
  static const struct { const char *path; VlmAct act; } acts[] = {
    { "/ops/act/gelu-erf", VLM_ACT_GELU_ERF }, { "/ops/act/gelu-tanh", VLM_ACT_GELU_TANH },
    { "/ops/act/quick-gelu", VLM_ACT_QUICK_GELU }, { "/ops/act/silu", VLM_ACT_SILU },
    { "/ops/act/relu", VLM_ACT_RELU },
  };
  g_test_init (&argc, &argv, NULL);

  for (size_t i = 0; i < G_N_ELEMENTS (linear_cases); i++)
    g_test_add_data_func (linear_cases[i].path, &linear_cases[i], test_linear);
  g_test_add_func ("/ops/linear/gemv-bf16-layout", test_gemv_layout);
  g_test_add_func ("/ops/linear/gemv-rows", test_gemv_rows);
  g_test_add_func ("/ops/linear/gemv-s8", test_gemv_s8);
  g_test_add_func ("/ops/linear/int8-rows-apart", test_linear_int8_rows_apart);
  g_test_add_func ("/ops/linear/multi", test_linear_multi);
  g_test_add_func ("/ops/linear/bf16-chunks", test_linear_bf16_chunks);
  g_test_add_func ("/ops/mlp", test_mlp);
  g_test_add_func ("/ops/linear-init/bad-weight-shape", test_linear_init_bad_weight);
  g_test_add_func ("/ops/linear-init/bad-bias-shape", test_linear_init_bad_bias);
  g_test_add_func ("/ops/linear-init/bad-dtype", test_linear_init_bad_dtype);
  g_test_add_func ("/ops/linear-init/f32-in-place", test_linear_init_f32_in_place);
  g_test_add_func ("/ops/linear-init/bf16-f16", test_linear_init_bf16);
  g_test_add_func ("/ops/cache/linear-same-shape", test_cache_same_shape);
  g_test_add_func ("/ops/cache/attention-same-shape", test_cache_attention);
  g_test_add_func ("/ops/cache/other-thread", test_other_thread);
  g_test_add_func ("/ops/layer-norm/beta", test_layer_norm_beta);
  g_test_add_func ("/ops/layer-norm/no-beta", test_layer_norm_no_beta);
  g_test_add_func ("/ops/rms-norm", test_rms_norm);
  g_test_add_func ("/ops/softmax", test_softmax);
  for (size_t i = 0; i < G_N_ELEMENTS (conv_cases); i++)
    g_test_add_data_func (conv_cases[i].path, &conv_cases[i], test_conv2d);
  for (size_t i = 0; i < G_N_ELEMENTS (acts); i++)
    g_test_add_data_func (acts[i].path, GINT_TO_POINTER (acts[i].act), test_act);
  g_test_add_func ("/ops/act/from-name", test_act_from_name);
  g_test_add_func ("/ops/int8/u8-quantise", test_u8_quantise);
  g_test_add_func ("/ops/threads/follow-load", test_threads_follow_load);
  g_test_add_func ("/ops/kv-cache/bf16", test_kv_cache_bf16);
  for (size_t i = 0; i < G_N_ELEMENTS (attn_cases); i++)
    g_test_add_data_func (attn_cases[i].path, &attn_cases[i], test_attention);
  return g_test_run ();
}
