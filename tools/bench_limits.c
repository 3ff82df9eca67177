/* bench_limits.c — what this machine's libraries do at best, measured in
 * the same process as the model runs: oneDNN matmuls (f32, bf16, u8·s8),
 * OpenBLAS sgemm and sgemv, and GEMV from DRAM (oneDNN's, OpenBLAS's and
 * the engine's own, through probe.h), plus the GEMV probe timed before
 * each caption. */
#include "bench.h"

#include <cblas.h>
#include <dnnl.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>

static EngineGemv *
engine_gemv_new (VlmPrecision prec, int n_copies)
{
  g_autoptr (GError) error = NULL;
  EngineGemv *b = vlm_gemv_probe_new (prec, GEMV_ROWS, GEMV_COLS, n_copies, n_threads, &error);
  if (!b)
    fprintf (stderr, "vlm-bench: the engine's GEMV: %s\n", error->message);
  return b;
}

static void
engine_gemv_run (void *data, int i)
{
  vlm_gemv_probe_run (data, i);
}

/* ---- the GEMV probe: DRAM bandwidth here drifts by a third from minute
 * to minute, so besides the limits (measured once, best of 3 rounds) a
 * short GEMV is timed right before each caption, and decode is also given
 * as a ratio to the bandwidth of its own minute. The engine's GEMV in the
 * run's dtype, 3 copies (270 MiB in bf16, 135 in int8), median of 9 calls. */
enum { PROBE_COPIES = 3 };

EngineGemv *probe;

void
probe_open (void)
{
  VlmPrecision p = precision == VLM_PRECISION_INT8 ? VLM_PRECISION_INT8
                   : vlm_precision_is_f32 (precision) ? VLM_PRECISION_F32 : VLM_PRECISION_BF16;
  probe = engine_gemv_new (p, PROBE_COPIES);
}

double
probe_mib (void)
{
  return probe ? PROBE_COPIES * vlm_gemv_probe_bytes (probe) / MIB : 0;
}

/* GB/s now, 0 without a probe. */
double
probe_gbps (void)
{
  if (!probe)
    return 0;
  vlm_gemv_probe_bind (probe);
  double t[3 * PROBE_COPIES];
  for (int i = 0; i < 3 * PROBE_COPIES; i++) {
    gint64 t0 = g_get_monotonic_time ();
    engine_gemv_run (probe, i);
    t[i] = (g_get_monotonic_time () - t0) / 1e6;
  }
  return vlm_gemv_probe_bytes (probe) / 1e9 / stats_of (t, 3 * PROBE_COPIES).median;
}

void
probe_close (void)
{
  g_clear_pointer (&probe, vlm_gemv_probe_free);
}

/* ================================================================ machine limits */

/* Other processes' largest CPU use during an accepted limit measurement. */
double limits_others;

/* Median seconds per call of fn over at least 5 calls and `min_time`
 * seconds, after two untimed calls. Started on a quiet machine and
 * repeated (twice at most) if other processes took more than
 * MAX_OTHER_CORES meanwhile. The median, not the best: with weight copies
 * cycling, an occasional call finds its copy still in the (large) L3 cache
 * and the best would overstate DRAM bandwidth. */
static double
time_call (BenchFunc fn, void *data, double min_time)
{
  double med = 0;
  for (int attempt = 0; attempt < 3; attempt++) {
    wait_quiet ();
    CpuMark mark = cpu_mark ();
    fn (data, 0);
    fn (data, 1);
    GArray *t = g_array_new (FALSE, FALSE, sizeof (double));
    double sum = 0;
    for (int i = 2; (t->len < 5 || sum < min_time) && t->len < 10000; i++) {
      gint64 t0 = g_get_monotonic_time ();
      fn (data, i);
      double dt = (g_get_monotonic_time () - t0) / 1e6;
      g_array_append_val (t, dt);
      sum += dt;
    }
    med = stats_of ((double *) t->data, t->len).median;
    g_array_free (t, TRUE);
    double others = other_cores_since (mark);
    if (others <= MAX_OTHER_CORES || attempt == 2) {
      limits_others = MAX (limits_others, others);
      break;
    }
  }
  return med;
}

static void
fill_random (void *p, size_t bytes, dnnl_data_type_t dt)
{
  if (dt == dnnl_f32)
    for (size_t i = 0; i < bytes / 4; i++)
      ((float *) p)[i] = synth_uniform ();
  else if (dt == dnnl_bf16)
    for (size_t i = 0; i < bytes / 2; i++) {
      float f = synth_uniform ();
      guint32 u;
      memcpy (&u, &f, 4);
      ((guint16 *) p)[i] = (guint16) (u >> 16);
    }
  else
    for (size_t i = 0; i < bytes; i++)
      ((guint8 *) p)[i] = (guint8) (synth_uniform () * 64 + 64);
}

/* One oneDNN matmul src[M,K] · wei[K,N] → dst[M,N] f32 with `n_wei` weight
 * copies that calls cycle through (more copies than the caches hold make a
 * GEMV read its weights from DRAM). */
typedef struct {
  dnnl_stream_t stream;
  dnnl_primitive_t prim;
  dnnl_memory_t src, wei, dst;
  void **wei_copies;
  int n_wei;
} DnnlMatmul;

static void
dnnl_matmul_run (void *data, int i)
{
  DnnlMatmul *b = data;
  dnnl_memory_set_data_handle (b->wei, b->wei_copies[i % b->n_wei]);
  dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, b->src}, {DNNL_ARG_WEIGHTS, b->wei}, {DNNL_ARG_DST, b->dst}};
  dnnl_primitive_execute (b->prim, b->stream, 3, args);
  dnnl_stream_wait (b->stream);
}

/* Seconds per call of the matmul `pd` describes, with random data. */
static double
time_dnnl_pd (dnnl_engine_t engine, const_dnnl_primitive_desc_t pd, double pool_bytes, double min_time)
{
  DnnlMatmul b = {0};
  const dnnl_memory_desc_t *src = dnnl_primitive_desc_query_md (pd, dnnl_query_src_md, 0);
  const dnnl_memory_desc_t *w = dnnl_primitive_desc_query_md (pd, dnnl_query_weights_md, 0);
  const dnnl_memory_desc_t *dst = dnnl_primitive_desc_query_md (pd, dnnl_query_dst_md, 0);
  size_t w_bytes = dnnl_memory_desc_get_size (w);
  b.n_wei = MAX (1, (int) ceil (pool_bytes / w_bytes));
  b.wei_copies = g_new (void *, b.n_wei);
  for (int i = 0; i < b.n_wei; i++) {   /* random once, then copies: filling is slower than timing */
    b.wei_copies[i] = g_aligned_alloc (w_bytes, 1, 64);
    if (i == 0)
      fill_random (b.wei_copies[i], w_bytes, w->data_type);
    else
      memcpy (b.wei_copies[i], b.wei_copies[0], w_bytes);
  }
  dnnl_stream_create (&b.stream, engine, dnnl_stream_default_flags);
  dnnl_primitive_create (&b.prim, pd);
  dnnl_memory_create (&b.src, src, engine, DNNL_MEMORY_ALLOCATE);
  dnnl_memory_create (&b.wei, w, engine, DNNL_MEMORY_NONE);
  dnnl_memory_create (&b.dst, dst, engine, DNNL_MEMORY_ALLOCATE);
  void *src_data;
  dnnl_memory_get_data_handle (b.src, &src_data);
  fill_random (src_data, dnnl_memory_desc_get_size (src), src->data_type);
  double t = time_call (dnnl_matmul_run, &b, min_time);
  for (int i = 0; i < b.n_wei; i++)
    g_aligned_free (b.wei_copies[i]);
  g_free (b.wei_copies);
  dnnl_memory_destroy (b.src);
  dnnl_memory_destroy (b.wei);
  dnnl_memory_destroy (b.dst);
  dnnl_primitive_destroy (b.prim);
  dnnl_stream_destroy (b.stream);
  return t;
}

/* The fastest oneDNN can run src[M,K] · wei[K,N] → f32: every weight layout
 * (ab = Wᵀ row-major, ba = HF's [N, K] as stored, any = oneDNN's blocked
 * choice, a reorder at load) × every implementation but the reference
 * loops. Returns seconds per call (0 if none exists) and names the winner
 * in *best ("gemm:jit, weights ab"). */
static double
bench_dnnl_matmul (dnnl_engine_t engine, int64_t M, int64_t K, int64_t N, dnnl_data_type_t src_dt,
                   dnnl_data_type_t wei_dt, double pool_bytes, double min_time, char **best)
{
  static const struct { dnnl_format_tag_t tag; const char *name; } layouts[] = {
    {dnnl_ab, "ab"}, {dnnl_ba, "ba"}, {dnnl_format_tag_any, "any"}};
  double best_t = 0;
  for (guint i = 0; i < G_N_ELEMENTS (layouts); i++) {
    dnnl_memory_desc_t src_md, wei_md, dst_md;
    dnnl_memory_desc_init_by_tag (&src_md, 2, (dnnl_dims_t) {M, K}, src_dt, dnnl_ab);
    dnnl_memory_desc_init_by_tag (&wei_md, 2, (dnnl_dims_t) {K, N}, wei_dt, layouts[i].tag);
    dnnl_memory_desc_init_by_tag (&dst_md, 2, (dnnl_dims_t) {M, N}, dnnl_f32, dnnl_ab);
    dnnl_matmul_desc_t desc;
    dnnl_primitive_desc_iterator_t it;
    if (dnnl_matmul_desc_init (&desc, &src_md, &wei_md, NULL, &dst_md) != dnnl_success ||
        dnnl_primitive_desc_iterator_create (&it, &desc, NULL, engine, NULL) != dnnl_success)
      continue;
    do {
      dnnl_primitive_desc_t pd = dnnl_primitive_desc_iterator_fetch (it);
      const char *impl = NULL;
      dnnl_primitive_desc_query (pd, dnnl_query_impl_info_str, 0, &impl);
      if (!g_str_has_prefix (impl, "ref")) {   /* scalar loops: minutes, and no limit */
        double t = time_dnnl_pd (engine, pd, pool_bytes, min_time);
        if (best_t == 0 || t < best_t) {
          best_t = t;
          g_free (*best);
          *best = g_strdup_printf ("%s, weights %s", impl, layouts[i].name);
        }
      }
      dnnl_primitive_desc_destroy (pd);
    } while (dnnl_primitive_desc_iterator_next (it) == dnnl_success);
    dnnl_primitive_desc_iterator_destroy (it);
  }
  return best_t;
}

typedef struct {
  int rows, cols, n_copies;
  float **a;
  float *b, *c;
} BlasBench;

static void
sgemm_run (void *data, int i)
{
  BlasBench *b = data;
  int n = b->rows;
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, b->a[0], n, b->b, n, 0.0f, b->c, n);
}

static void
sgemv_run (void *data, int i)
{
  BlasBench *b = data;
  cblas_sgemv (CblasRowMajor, CblasNoTrans, b->rows, b->cols, 1.0f, b->a[i % b->n_copies], b->cols, b->b, 1, 0.0f,
               b->c, 1);
}

/* Seconds per call of OpenBLAS: sgemm n×n×n when `gemv` is FALSE, else
 * sgemv of rows×cols cycling through enough copies to fill pool_bytes. */
static double
bench_blas (gboolean gemv, int rows, int cols, double pool_bytes, double min_time)
{
  size_t a_floats = (size_t) rows * cols;
  BlasBench b = {rows, cols, gemv ? MAX (1, (int) ceil (pool_bytes / (a_floats * 4.0))) : 1};
  b.a = g_new (float *, b.n_copies);
  for (int i = 0; i < b.n_copies; i++) {
    b.a[i] = g_new (float, a_floats);
    if (i == 0)
      fill_random (b.a[i], a_floats * 4, dnnl_f32);
    else
      memcpy (b.a[i], b.a[0], a_floats * 4);
  }
  b.b = g_new (float, gemv ? (size_t) cols : a_floats);
  b.c = g_new0 (float, gemv ? (size_t) rows : a_floats);
  fill_random (b.b, (gemv ? (size_t) cols : a_floats) * 4, dnnl_f32);
  double t = time_call (gemv ? sgemv_run : sgemm_run, &b, min_time);
  for (int i = 0; i < b.n_copies; i++)
    g_free (b.a[i]);
  g_free (b.a);
  g_free (b.b);
  g_free (b.c);
  return t;
}

double
gflops (double flop, double seconds)
{
  return seconds > 0 ? flop / seconds / 1e9 : 0;
}

/* One round of the oneDNN GEMV limit in dtype dt: raises *gbps (and names
 * the implementation in *impl) if this round beat the rounds before. */
static void
gemv_best (dnnl_engine_t engine, dnnl_data_type_t dt, double pool, double min_time, double *gbps, char **impl)
{
  char *name = NULL;
  double t = bench_dnnl_matmul (engine, 1, GEMV_COLS, GEMV_ROWS, dt, dt, pool, min_time, &name);
  double bytes = (double) GEMV_ROWS * GEMV_COLS * (dt == dnnl_f32 ? 4 : 2);
  if (t > 0 && bytes / 1e9 / t > *gbps) {
    *gbps = bytes / 1e9 / t;
    g_free (*impl);
    *impl = g_steal_pointer (&name);
  }
  g_free (name);
}

/* The engine's linear at m = 1 in precision prec (F32, BF16 or INT8: its
 * own GEMV kernels, which outrun oneDNN's m = 1 matmul, so the limit must
 * count them too), cycling through copies filling `pool_bytes`. */
static double
bench_engine_gemv (VlmPrecision prec, double pool_bytes, double min_time)
{
  int size = prec == VLM_PRECISION_F32 ? 4 : prec == VLM_PRECISION_INT8 ? 1 : 2;
  EngineGemv *b = engine_gemv_new (prec, MAX (1, (int) ceil (pool_bytes / (GEMV_ROWS * GEMV_COLS * (double) size))));
  if (!b)
    return 0;
  double t = time_call (engine_gemv_run, b, min_time);
  vlm_gemv_probe_free (b);
  return t;
}

void
measure_limits (Limits *l)
{
  double min_time = quick ? 0.02 : 0.5, pool = (quick ? 64 : 1024) * MIB;
  int threads = n_threads > 0 ? n_threads : (int) g_get_num_processors ();
  omp_set_num_threads (threads);
  openblas_set_num_threads (threads);
  dnnl_engine_t engine;
  dnnl_engine_create (&engine, dnnl_cpu, 0);
  double mm = 2.0 * LIM_M * LIM_K * LIM_N, gemv_elems = (double) GEMV_ROWS * GEMV_COLS;
  struct {
    const char *what;
    dnnl_data_type_t src, wei;
    double *out;
    char **impl;
  } mms[] = {{"f32", dnnl_f32, dnnl_f32, &l->matmul_f32, &l->impl_f32},
             {"bf16", dnnl_bf16, dnnl_bf16, &l->matmul_bf16, &l->impl_bf16},
             {"u8·s8", dnnl_u8, dnnl_s8, &l->matmul_u8s8, &l->impl_u8s8}};
  for (guint i = 0; i < G_N_ELEMENTS (mms); i++) {
    progress ("limit: oneDNN matmul %dx%dx%d %s (each weight layout and implementation)", LIM_M, LIM_K, LIM_N,
              mms[i].what);
    *mms[i].out = gflops (mm, bench_dnnl_matmul (engine, LIM_M, LIM_K, LIM_N, mms[i].src, mms[i].wei, 0, min_time,
                                                 mms[i].impl));
  }
  progress ("limit: OpenBLAS sgemm %d²", SGEMM_N);
  l->sgemm = gflops (2.0 * SGEMM_N * SGEMM_N * SGEMM_N, bench_blas (FALSE, SGEMM_N, SGEMM_N, 0, min_time));
  /* DRAM bandwidth on this (virtual) machine varies from minute to minute
   * with what shares the host (seen here: 43 to 62 GB/s for the same bf16
   * GEMV within an hour), so the limit is the best of several rounds. */
  int rounds = quick ? 1 : GEMV_ROUNDS;
  for (int r = 0; r < rounds; r++) {
    progress ("limit: GEMV %dx%d from DRAM (%.0f MiB of weight copies), f32, bf16 and int8, round %d/%d", GEMV_COLS,
              GEMV_ROWS, pool / MIB, r + 1, rounds);
    l->gemv_f32_blas = MAX (l->gemv_f32_blas, gemv_elems * 4 / 1e9 / bench_blas (TRUE, GEMV_ROWS, GEMV_COLS, pool,
                                                                                 min_time));
    gemv_best (engine, dnnl_f32, pool, min_time, &l->gemv_f32_dnnl, &l->impl_gemv_f32);
    gemv_best (engine, dnnl_bf16, pool, min_time, &l->gemv_bf16_dnnl, &l->impl_gemv_bf16);
    double t = bench_engine_gemv (VLM_PRECISION_BF16, pool, min_time);
    if (t > 0)
      l->gemv_bf16_engine = MAX (l->gemv_bf16_engine, gemv_elems * 2 / 1e9 / t);
    t = bench_engine_gemv (VLM_PRECISION_F32, pool, min_time);
    if (t > 0)
      l->gemv_f32_engine = MAX (l->gemv_f32_engine, gemv_elems * 4 / 1e9 / t);
    t = bench_engine_gemv (VLM_PRECISION_INT8, pool, min_time);
    if (t > 0)
      l->gemv_int8_engine = MAX (l->gemv_int8_engine, gemv_elems / 1e9 / t);
  }
  l->gemv_bf16 = MAX (l->gemv_bf16_dnnl, l->gemv_bf16_engine);
  l->gemv_f32 = MAX (MAX (l->gemv_f32_blas, l->gemv_f32_dnnl), l->gemv_f32_engine);
  /* every dtype streams the same DRAM: int8 decode is bounded by the best
   * bandwidth any of them reached (its own kernel's, if that is slower,
   * would flatter it) */
  l->gemv_int8 = MAX (l->gemv_int8_engine, MAX (l->gemv_f32, l->gemv_bf16));
  dnnl_engine_destroy (engine);
}

double
limits_matmul_peak (const Limits *l, gboolean dnnl, const char *dtype, const char **name)
{
  const char *unused;
  name = name ? name : &unused;
  if (!dnnl) {
    *name = "OpenBLAS sgemm";
    return l->sgemm;
  }
  if (strcmp (dtype, "int8") == 0) {
    *name = "oneDNN u8s8 matmul";
    return l->matmul_u8s8;
  }
  if (strcmp (dtype, "bf16") == 0 && l->matmul_bf16 > 0) {
    *name = "oneDNN bf16 matmul";
    return l->matmul_bf16;
  }
  *name = "oneDNN f32 matmul";
  return l->matmul_f32;
}

void
limits_clear (Limits *l)
{
  g_clear_pointer (&l->impl_f32, g_free);
  g_clear_pointer (&l->impl_bf16, g_free);
  g_clear_pointer (&l->impl_u8s8, g_free);
  g_clear_pointer (&l->impl_gemv_f32, g_free);
  g_clear_pointer (&l->impl_gemv_bf16, g_free);
}
