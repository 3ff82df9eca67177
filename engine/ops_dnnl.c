/* ops_dnnl.c — the oneDNN backend (oneDNN 2.6 C API, OpenMP runtime).
 *
 * Each op is a primitive created (JIT-compiled) the first time its exact
 * geometry is seen and then kept in a cache keyed by that geometry. A cached
 * primitive owns memory objects for its arguments, created without data;
 * each call only rebinds their handles, so a steady-state call allocates
 * nothing. Primitives use a user-mode scratchpad owned here, which makes
 * them independent of the thread that created them. */
#include "ops_backend.h"

#include <dnnl.h>
#include <dnnl_debug.h>
#include <math.h>
#include <omp.h>

/* oneDNN fails only on invalid descriptors (our bug: the ops' contracts
 * have been checked by then) or on memory exhaustion: both are fatal. */
#define DNNL_CHECK(call)                                                          \
  G_STMT_START {                                                                  \
    dnnl_status_t st_ = (call);                                                   \
    if (st_ != dnnl_success)                                                      \
      g_error ("oneDNN: %s failed: %s", #call, dnnl_status2str (st_));            \
  } G_STMT_END

/* ------------------------------------------------------------ primitive cache */

enum {
  PRIM_LINEAR = 1, PRIM_LAYER_NORM, PRIM_ELTWISE, PRIM_SOFTMAX, PRIM_ATTN_SCORES,
  PRIM_ATTN_CONTEXT, PRIM_TO_BF16,
};

/* Everything that makes two primitives different: the op kind, then its
 * dims, strides, flags and float parameters (as bit patterns). Unused words
 * are zero, so the key can be hashed and compared as bytes. */
typedef struct {
  int64_t kind;
  int64_t w[10];
} PrimKey;

#define PRIM_MAX_ARGS 6

typedef struct {
  PrimKey key;
  dnnl_primitive_t prim;
  int n_args;                               /* the caller's handles, in order */
  gboolean has_scratchpad;                  /* then args[n_args] is the scratchpad */
  dnnl_exec_arg_t args[PRIM_MAX_ARGS + 1];
} Prim;

struct VlmOpsDnnl {
  dnnl_engine_t engine;
  dnnl_stream_t stream;
  GHashTable *cache;         /* PrimKey* -> Prim*, owns the Prims */
  void *scratchpad;          /* shared by all primitives: one runs at a time */
  size_t scratchpad_size;
  VlmScratch src_bf16;       /* a bf16 linear's input, converted (halves of floats) */
  VlmScratch src_s8;         /* an int8 linear's input, quantised (quarters of floats) */
  VlmScratch out_scales;     /* an int8 linear's per-channel output scales */
};

static inline int64_t
fbits (float f)
{
  uint32_t u;
  memcpy (&u, &f, 4);
  return u;
}

static guint
key_hash (gconstpointer p)
{
  const guint8 *b = p;
  guint32 h = 2166136261u;  /* FNV-1a */
  for (size_t i = 0; i < sizeof (PrimKey); i++) h = (h ^ b[i]) * 16777619u;
  return h;
}

static gboolean
key_equal (gconstpointer a, gconstpointer b)
{
  return memcmp (a, b, sizeof (PrimKey)) == 0;
}

static void
prim_free (gpointer data)
{
  Prim *p = data;
  for (int i = 0; i < p->n_args + (p->has_scratchpad ? 1 : 0); i++)
    dnnl_memory_destroy (p->args[i].memory);
  dnnl_primitive_destroy (p->prim);
  g_free (p);
}

static void
arg_init (VlmOpsDnnl *d, dnnl_exec_arg_t *arg, int id, const dnnl_memory_desc_t *md)
{
  arg->arg = id;
  DNNL_CHECK (dnnl_memory_create (&arg->memory, md, d->engine, DNNL_MEMORY_NONE));
}

/* Takes ownership of `pd`: creates the primitive and one memory object per
 * argument id (in the order the caller will pass handles), grows the shared
 * scratchpad if this primitive needs more, and caches the result. */
static Prim *
prim_new (VlmOpsDnnl *d, const PrimKey *key, dnnl_primitive_desc_t pd, const int *ids,
          int n_ids)
{
  g_assert (n_ids <= PRIM_MAX_ARGS);
  Prim *p = g_new0 (Prim, 1);
  p->key = *key;
  p->n_args = n_ids;
  DNNL_CHECK (dnnl_primitive_create (&p->prim, pd));
  for (int i = 0; i < n_ids; i++) {
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md (pd, dnnl_query_exec_arg_md, ids[i]);
    dnnl_memory_desc_t scales;
    if (ids[i] == DNNL_ARG_ATTR_OUTPUT_SCALES) {   /* runtime scales: one f32 per output channel */
      const dnnl_memory_desc_t *dst = dnnl_primitive_desc_query_md (pd, dnnl_query_dst_md, 0);
      DNNL_CHECK (dnnl_memory_desc_init_by_tag (&scales, 1, (dnnl_dims_t) { dst->dims[dst->ndims - 1] },
                                                dnnl_f32, dnnl_a));
      md = &scales;
    }
    arg_init (d, &p->args[i], ids[i], md);
  }

  const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md (pd, dnnl_query_scratchpad_md, 0);
  size_t need = smd ? dnnl_memory_desc_get_size (smd) : 0;
  if (need > 0) {
    p->has_scratchpad = TRUE;
    arg_init (d, &p->args[n_ids], DNNL_ARG_SCRATCHPAD, smd);
    if (need > d->scratchpad_size) {
      g_aligned_free (d->scratchpad);
      d->scratchpad = g_aligned_alloc (need, 1, 64);
      d->scratchpad_size = need;
    }
  }
  DNNL_CHECK (dnnl_primitive_desc_destroy (pd));
  g_hash_table_insert (d->cache, &p->key, p);
  return p;
}

/* Binds `handles` (one per argument id given to prim_new) and runs. */
static void
prim_run (VlmOpsDnnl *d, Prim *p, void *const *handles)
{
  int n = p->n_args;
  for (int i = 0; i < n; i++)
    DNNL_CHECK (dnnl_memory_set_data_handle (p->args[i].memory, handles[i]));
  if (p->has_scratchpad)
    DNNL_CHECK (dnnl_memory_set_data_handle (p->args[n++].memory, d->scratchpad));
  DNNL_CHECK (dnnl_primitive_execute (p->prim, d->stream, n, p->args));
  DNNL_CHECK (dnnl_stream_wait (d->stream));
}

static const char *
impl_name (const_dnnl_primitive_desc_t pd)
{
  const char *name = "";
  dnnl_primitive_desc_query (pd, dnnl_query_impl_info_str, 0, &name);
  return name;
}

/* Primitive descriptor for `op_desc` with a user scratchpad and `post_ops`
 * (may be NULL; destroyed here): oneDNN's first choice, or the first
 * implementation whose name starts with `prefer` if there is one. */
static void set_runtime_scales (dnnl_primitive_attr_t attr);

static dnnl_primitive_desc_t
pd_create_scaled (VlmOpsDnnl *d, const_dnnl_op_desc_t op_desc, dnnl_post_ops_t post_ops,
                  const char *prefer, gboolean runtime_scales)
{
  dnnl_primitive_attr_t attr;
  dnnl_primitive_desc_iterator_t it;
  DNNL_CHECK (dnnl_primitive_attr_create (&attr));
  DNNL_CHECK (dnnl_primitive_attr_set_scratchpad_mode (attr, dnnl_scratchpad_mode_user));
  if (runtime_scales)
    set_runtime_scales (attr);
  if (post_ops) {
    DNNL_CHECK (dnnl_primitive_attr_set_post_ops (attr, post_ops));
    dnnl_post_ops_destroy (post_ops);
  }
  DNNL_CHECK (dnnl_primitive_desc_iterator_create (&it, op_desc, attr, d->engine, NULL));
  dnnl_primitive_desc_t pd = dnnl_primitive_desc_iterator_fetch (it);
  while (prefer && !g_str_has_prefix (impl_name (pd), prefer)
         && dnnl_primitive_desc_iterator_next (it) == dnnl_success) {
    dnnl_primitive_desc_t next = dnnl_primitive_desc_iterator_fetch (it);
    if (g_str_has_prefix (impl_name (next), prefer)) {
      dnnl_primitive_desc_destroy (pd);
      pd = next;
    } else {
      dnnl_primitive_desc_destroy (next);
    }
  }
  dnnl_primitive_desc_iterator_destroy (it);
  dnnl_primitive_attr_destroy (attr);
  return pd;
}

static dnnl_primitive_desc_t
pd_create (VlmOpsDnnl *d, const_dnnl_op_desc_t op_desc, dnnl_post_ops_t post_ops, const char *prefer)
{
  return pd_create_scaled (d, op_desc, post_ops, prefer, FALSE);
}

/* A memory descriptor with explicit strides (all ours are plain). */
static dnnl_memory_desc_t
md_typed (int ndims, const dnnl_dims_t dims, const dnnl_dims_t strides, dnnl_data_type_t dt)
{
  dnnl_memory_desc_t md;
  DNNL_CHECK (dnnl_memory_desc_init_by_strides (&md, ndims, dims, dt, strides));
  return md;
}

static dnnl_memory_desc_t
md_strided (int ndims, const dnnl_dims_t dims, const dnnl_dims_t strides)
{
  return md_typed (ndims, dims, strides, dnnl_f32);
}

/* ------------------------------------------------------------ context */

VlmOpsDnnl *
vlm_dnnl_new (GError **error)
{
  VlmOpsDnnl *d = g_new0 (VlmOpsDnnl, 1);
  dnnl_status_t st = dnnl_engine_create (&d->engine, dnnl_cpu, 0);
  if (st == dnnl_success)
    st = dnnl_stream_create (&d->stream, d->engine, dnnl_stream_default_flags);
  if (st != dnnl_success) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_INFERENCE, "oneDNN: cannot create a CPU engine: %s",
                 dnnl_status2str (st));
    vlm_dnnl_free (d);
    return NULL;
  }
  d->cache = g_hash_table_new_full (key_hash, key_equal, NULL, prim_free);
  return d;
}

void
vlm_dnnl_free (VlmOpsDnnl *d)
{
  if (!d)
    return;
  if (d->cache)
    g_hash_table_destroy (d->cache);
  if (d->stream)
    dnnl_stream_destroy (d->stream);
  if (d->engine)
    dnnl_engine_destroy (d->engine);
  g_aligned_free (d->scratchpad);
  vlm_scratch_clear (&d->src_bf16);
  vlm_scratch_clear (&d->src_s8);
  vlm_scratch_clear (&d->out_scales);
  g_free (d);
}

int
vlm_dnnl_n_primitives (const VlmOpsDnnl *d)
{
  return g_hash_table_size (d->cache);
}

/* ------------------------------------------------------------ packed weights */

/* A weight in the layout a matmul primitive asked for (format_tag_any). */
typedef struct {
  dnnl_memory_desc_t md;
  void *data;
  int rows;     /* what the layout was chosen for: with n, k, dtype it fixes md */
  float *scales;  /* s8: per output channel, W[j, :] ≈ scales[j] · q[j, :] */
  int gemv_kpad;  /* > 0: bf16 in the layout vlm_gemv_bf16 reads, k padded to this */
} Packed;

/* Weights are packed at load, before any session (and its engine) exists,
 * by one engine kept for the process. */
static dnnl_engine_t
pack_engine (void)
{
  static gsize once = 0;
  static dnnl_engine_t engine;
  if (g_once_init_enter (&once)) {
    DNNL_CHECK (dnnl_engine_create (&engine, dnnl_cpu, 0));
    g_once_init_leave (&once, 1);
  }
  return engine;
}

gboolean
vlm_dnnl_has_native_bf16 (void)
{
  /* ISA values are bit sets that include the ISAs below them */
  dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa ();
  return (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
}

static dnnl_data_type_t
dnnl_dt (VlmDType dtype)
{
  return dtype == VLM_DTYPE_BF16 ? dnnl_bf16 : dtype == VLM_DTYPE_I8 ? dnnl_s8 : dnnl_f32;
}

/* An s8 matmul's output scales (src scale × weight scale per channel) are
 * only known at run time: the input is quantised per call. */
static void
set_runtime_scales (dnnl_primitive_attr_t attr)
{
  DNNL_CHECK (dnnl_primitive_attr_set_output_scales (attr, 1, 1 << 1, (float[]) { DNNL_RUNTIME_F32_VAL }));
}

/* The weight layout oneDNN's matmul chooses for `rows` × k inputs of dtype
 * dt: blocked so that its kernels stream it without re-packing per call. */
static dnnl_memory_desc_t
packed_md (int rows, int n, int k, dnnl_data_type_t dt)
{
  dnnl_memory_desc_t src, wei, dst;
  DNNL_CHECK (dnnl_memory_desc_init_by_tag (&src, 2, (dnnl_dims_t) { rows, k }, dt, dnnl_ab));
  DNNL_CHECK (dnnl_memory_desc_init_by_tag (&wei, 2, (dnnl_dims_t) { k, n }, dt, dnnl_format_tag_any));
  DNNL_CHECK (dnnl_memory_desc_init_by_tag (&dst, 2, (dnnl_dims_t) { rows, n }, dnnl_f32, dnnl_ab));
  dnnl_matmul_desc_t desc;
  dnnl_primitive_desc_t pd;
  DNNL_CHECK (dnnl_matmul_desc_init (&desc, &src, &wei, NULL, &dst));
  dnnl_primitive_attr_t attr;
  DNNL_CHECK (dnnl_primitive_attr_create (&attr));
  if (dt == dnnl_s8)
    set_runtime_scales (attr);
  DNNL_CHECK (dnnl_primitive_desc_create (&pd, &desc, attr, pack_engine (), NULL));
  dnnl_primitive_attr_destroy (attr);
  dnnl_memory_desc_t md = *dnnl_primitive_desc_query_md (pd, dnnl_query_weights_md, 0);
  DNNL_CHECK (dnnl_primitive_desc_destroy (pd));
  return md;
}

/* Whether md is {k, n} bf16 blocked as BA16a64b2a, which vlm_gemv_bf16
 * reads ([n/64][k/2][64][2]: k blocks of 32 inside each 64-column block),
 * on a CPU that runs it. */
static gboolean
gemv_layout (const dnnl_memory_desc_t *md)
{
  const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
  return md->data_type == dnnl_bf16 && md->format_kind == dnnl_blocked && md->ndims == 2 &&
         b->inner_nblks == 3 && b->inner_blks[0] == 16 && b->inner_idxs[0] == 0 &&
         b->inner_blks[1] == 64 && b->inner_idxs[1] == 1 && b->inner_blks[2] == 2 &&
         b->inner_idxs[2] == 0 && b->strides[0] == 32 * 64 &&
         b->strides[1] == md->padded_dims[0] * 64 && md->offset0 == 0 && vlm_gemv_bf16_supported ();
}

void *
vlm_dnnl_pack (const VlmLinearW *lin, const VlmTensor *weight, VlmDType dtype, int rows)
{
  int n = lin->n, k = lin->k;
  /* the source: HF's [n, k] read as {k, n} (tag ba), bf16 as stored when
   * that is what we pack to, s8 quantised here per output channel
   * (symmetric, scale = max |W[j, :]| / 127), else the f32 vlm_linear_init
   * made */
  gboolean as_stored = weight->dtype == VLM_DTYPE_BF16 && dtype == VLM_DTYPE_BF16;
  dnnl_data_type_t src_dt = as_stored ? dnnl_bf16 : dtype == VLM_DTYPE_I8 ? dnnl_s8 : dnnl_f32;
  dnnl_memory_desc_t src_md;
  DNNL_CHECK (dnnl_memory_desc_init_by_strides (&src_md, 2, (dnnl_dims_t) { k, n }, src_dt, (dnnl_dims_t) { 1, k }));
  Packed *p = g_new0 (Packed, 1);
  int8_t *q = NULL;
  if (dtype == VLM_DTYPE_I8) {
    p->scales = g_new (float, n);
    q = g_malloc ((size_t) n * k);
    for (int j = 0; j < n; j++) {
      const float *w = lin->weight + (size_t) j * k;
      float amax = 0.0f;
      for (int t = 0; t < k; t++) amax = fmaxf (amax, fabsf (w[t]));
      p->scales[j] = amax > 0.0f ? amax / 127.0f : 1.0f;
      float inv = 1.0f / p->scales[j];
      for (int t = 0; t < k; t++) q[(size_t) j * k + t] = (int8_t) lrintf (w[t] * inv);
    }
  }
  p->rows = MAX (rows, 1);
  p->md = packed_md (p->rows, n, k, dnnl_dt (dtype));
  p->data = g_aligned_alloc (dnnl_memory_desc_get_size (&p->md), 1, 64);
  p->gemv_kpad = gemv_layout (&p->md) ? (int) p->md.padded_dims[0] : 0;

  dnnl_engine_t engine = pack_engine ();
  dnnl_primitive_desc_t pd;
  dnnl_primitive_t reorder;
  dnnl_memory_t from, to;
  dnnl_stream_t stream;
  DNNL_CHECK (dnnl_reorder_primitive_desc_create (&pd, &src_md, engine, &p->md, engine, NULL));
  DNNL_CHECK (dnnl_primitive_create (&reorder, pd));
  DNNL_CHECK (dnnl_memory_create (&from, &src_md, engine,
                                   q ? (void *) q : as_stored ? (void *) weight->data : (void *) lin->weight));
  DNNL_CHECK (dnnl_memory_create (&to, &p->md, engine, p->data));
  DNNL_CHECK (dnnl_stream_create (&stream, engine, dnnl_stream_default_flags));
  dnnl_exec_arg_t args[] = { { DNNL_ARG_FROM, from }, { DNNL_ARG_TO, to } };
  DNNL_CHECK (dnnl_primitive_execute (reorder, stream, 2, args));
  DNNL_CHECK (dnnl_stream_wait (stream));
  dnnl_stream_destroy (stream);
  dnnl_memory_destroy (from);
  dnnl_memory_destroy (to);
  dnnl_primitive_destroy (reorder);
  dnnl_primitive_desc_destroy (pd);
  g_free (q);
  return p;
}

void
vlm_dnnl_packed_free (void *packed)
{
  Packed *p = packed;
  if (p) {
    g_aligned_free (p->data);
    g_free (p->scales);
  }
  g_free (p);
}

/* x [m rows of k, stride ld] f32 → dense bf16 [m, k] in out, rounding to
 * nearest even: by a cached reorder (vectorised, threaded), or for a few
 * values by a loop (decode's rows: a primitive call would cost more). */
void
vlm_dnnl_to_bf16 (VlmOpsDnnl *d, const float *x, int m, int k, int ld, uint16_t *out)
{
  if ((size_t) m * k <= 16384) {
    for (int i = 0; i < m; i++)
      for (int j = 0; j < k; j++) out[(size_t) i * k + j] = vlm_f32_to_bf16 (x[(size_t) i * ld + j]);
    return;
  }
  PrimKey key = { PRIM_TO_BF16, { m, k, ld } };
  Prim *p = g_hash_table_lookup (d->cache, &key);
  if (!p) {
    dnnl_memory_desc_t from = md_strided (2, (dnnl_dims_t) { m, k }, (dnnl_dims_t) { ld, 1 }), to;
    dnnl_primitive_desc_t pd;
    DNNL_CHECK (dnnl_memory_desc_init_by_tag (&to, 2, (dnnl_dims_t) { m, k }, dnnl_bf16, dnnl_ab));
    dnnl_primitive_attr_t attr;
    DNNL_CHECK (dnnl_primitive_attr_create (&attr));
    DNNL_CHECK (dnnl_primitive_attr_set_scratchpad_mode (attr, dnnl_scratchpad_mode_user));
    DNNL_CHECK (dnnl_reorder_primitive_desc_create (&pd, &from, d->engine, &to, d->engine, attr));
    dnnl_primitive_attr_destroy (attr);
    p = prim_new (d, &key, pd, (int[]) { DNNL_ARG_FROM, DNNL_ARG_TO }, 2);
  }
  prim_run (d, p, (void *[]) { (void *) x, out });
}

/* A linear's input x [m, k] in bf16, in d->src_bf16. */
static void *
to_bf16 (VlmOpsDnnl *d, const float *x, int m, int k)
{
  uint16_t *out = (uint16_t *) vlm_scratch_get (&d->src_bf16, ((size_t) m * k + 1) / 2);
  vlm_dnnl_to_bf16 (d, x, m, k, k, out);
  return out;
}

/* The largest |x[i]| of n floats, and x / scale rounded to nearest even
 * into q (|x / scale| <= 127 by construction). Plain loops the compiler
 * vectorises, built for AVX-512 where the CPU has it. */
__attribute__ ((target_clones ("avx512f", "avx2", "default"))) static float
abs_max (const float *x, size_t n)
{
  float m = 0.0f;
  for (size_t i = 0; i < n; i++) m = fmaxf (m, fabsf (x[i]));
  return m;
}

__attribute__ ((target_clones ("avx512f", "avx2", "default"))) static void
quantize (const float *x, size_t n, float inv_scale, int8_t *q)
{
  /* adding and subtracting 1.5 · 2^23 rounds to nearest even (|v| < 2^22) */
  for (size_t i = 0; i < n; i++) q[i] = (int8_t) (int) ((x[i] * inv_scale + 12582912.0f) - 12582912.0f);
}

/* x [m, k] → s8 into d->src_s8 with one symmetric scale for the call
 * (dynamic quantisation); returns the scale. */
static float
to_s8 (VlmOpsDnnl *d, const float *x, int m, int k, int8_t **out)
{
  size_t n = (size_t) m * k;
  int8_t *q = (int8_t *) vlm_scratch_get (&d->src_s8, (n + 3) / 4);
  int nt = n > 65536 ? omp_get_max_threads () : 1;
  size_t chunk = (n + nt - 1) / nt;
  float part[64] = { 0 }, amax = 0.0f;
  nt = MIN (nt, 64);
#pragma omp parallel for num_threads (nt) schedule (static) if (nt > 1)
  for (int t = 0; t < nt; t++)
    part[t] = abs_max (x + MIN (n, t * chunk), MIN (n, (t + 1) * chunk) - MIN (n, t * chunk));
  for (int t = 0; t < nt; t++) amax = fmaxf (amax, part[t]);
  float scale = amax > 0.0f ? amax / 127.0f : 1.0f;
#pragma omp parallel for num_threads (nt) schedule (static) if (nt > 1)
  for (int t = 0; t < nt; t++)
    quantize (x + MIN (n, t * chunk), MIN (n, (t + 1) * chunk) - MIN (n, t * chunk), 1.0f / scale,
              q + MIN (n, t * chunk));
  *out = q;
  return scale;
}

/* ------------------------------------------------------------ linear */

/* The HF activations as oneDNN eltwise algorithms. */
static void
act_alg (VlmAct act, dnnl_alg_kind_t *alg, float *alpha)
{
  *alpha = 0.0f;
  switch (act) {
    case VLM_ACT_GELU_ERF: *alg = dnnl_eltwise_gelu_erf; break;
    case VLM_ACT_GELU_TANH: *alg = dnnl_eltwise_gelu_tanh; break;
    case VLM_ACT_QUICK_GELU: *alg = dnnl_eltwise_swish; *alpha = 1.702f; break;
    case VLM_ACT_SILU: *alg = dnnl_eltwise_swish; *alpha = 1.0f; break;
    case VLM_ACT_RELU: *alg = dnnl_eltwise_relu; break;  /* alpha: negative slope 0 */
    case VLM_ACT_NONE: g_assert_not_reached ();
  }
}

enum { RES_NONE, RES_IN_PLACE, RES_OTHER };

/* matmul {m,k}·{k,n} + bias, then post-ops: the activation, then the
 * residual as a sum (y += ..., when it is y itself) or a binary add. The
 * weight is packed (its layout and dtype, the input converted to that
 * dtype), or HF's [n,k] row-major f32 read as {k,n} with strides {1,k}
 * (tag ba): no copy. An s8 matmul scales its s32 sums after adding the
 * bias (oneDNN 2.x int8 semantics: dst = scale · (acc + bias)), so the
 * caller passes the bias divided by the scales. (As a binary post-op
 * instead, gemm:jit ran at a third of its speed and a residual sum sent
 * oneDNN to its reference loops.) */

static dnnl_primitive_desc_t
linear_pd (VlmOpsDnnl *d, int m, int n, int k, const Packed *packed, gboolean bias, VlmAct act,
           int res, gboolean dst_bf16)
{
  dnnl_memory_desc_t src, wei;
  if (packed) {
    wei = packed->md;
    DNNL_CHECK (dnnl_memory_desc_init_by_tag (&src, 2, (dnnl_dims_t) { m, k }, wei.data_type, dnnl_ab));
  } else {
    src = md_strided (2, (dnnl_dims_t) { m, k }, (dnnl_dims_t) { k, 1 });
    wei = md_strided (2, (dnnl_dims_t) { k, n }, (dnnl_dims_t) { 1, k });
  }
  dnnl_memory_desc_t bia = md_strided (2, (dnnl_dims_t) { 1, n }, (dnnl_dims_t) { n, 1 });
  dnnl_memory_desc_t dst = md_typed (2, (dnnl_dims_t) { m, n }, (dnnl_dims_t) { n, 1 },
                                     dst_bf16 ? dnnl_bf16 : dnnl_f32);
  dnnl_post_ops_t po;
  DNNL_CHECK (dnnl_post_ops_create (&po));
  if (act != VLM_ACT_NONE) {
    dnnl_alg_kind_t alg;
    float alpha;
    act_alg (act, &alg, &alpha);
    DNNL_CHECK (dnnl_post_ops_append_eltwise (po, 1.0f, alg, alpha, 0.0f));
  }
  if (res == RES_IN_PLACE)
    DNNL_CHECK (dnnl_post_ops_append_sum (po, 1.0f));
  else if (res == RES_OTHER)
    DNNL_CHECK (dnnl_post_ops_append_binary (po, dnnl_binary_add, &dst));
  dnnl_matmul_desc_t desc;
  DNNL_CHECK (dnnl_matmul_desc_init (&desc, &src, &wei, bias ? &bia : NULL, &dst));
  /* For m <= 2 (decode) brgemm re-packs the whole `ba` weight on every call
   * and runs at half the speed of the gemm-based matmul (measured here:
   * 0.19 vs 0.09 ms for 1x768x3072); from m = 4 on brgemm wins. Packed
   * weights need no re-packing. */
  return pd_create_scaled (d, &desc, po, m <= 2 && !packed ? "gemm" : NULL,
                           packed && packed->md.data_type == dnnl_s8);
}

/* decode's rows of bf16 input for vlm_gemv_bf16, padded to kpad with zeros */
static const uint16_t *
gemv_input (VlmOpsDnnl *d, const float *x, int m, int k, int kpad)
{
  uint16_t *xb = (uint16_t *) vlm_scratch_get (&d->src_bf16, (size_t) m * kpad / 2);
  for (int r = 0; r < m; r++) {
    for (int t = 0; t < k; t++) xb[(size_t) r * kpad + t] = vlm_f32_to_bf16 (x[(size_t) r * k + t]);
    memset (xb + (size_t) r * kpad + k, 0, (size_t) (kpad - k) * sizeof (uint16_t));
  }
  return xb;
}

/* One linear through a cached matmul primitive. x is f32, or already bf16
 * (x_bf16: for a bf16 weight only); y is f32, or bf16 (y_bf16, without a
 * residual). */
static void
linear_run (VlmOpsDnnl *d, const VlmLinearW *lin, const void *x, gboolean x_bf16, int m, void *y,
            gboolean y_bf16, VlmAct act, const float *residual)
{
  int res = !residual ? RES_NONE : residual == y ? RES_IN_PLACE : RES_OTHER;
  const Packed *pk = lin->packed;
  int wdt = pk ? pk->md.data_type : dnnl_f32;
  g_assert ((!x_bf16 || wdt == dnnl_bf16) && (!y_bf16 || res == RES_NONE));
  PrimKey key = { PRIM_LINEAR, { m, lin->n, lin->k, lin->bias != NULL, act, res, wdt,
                                 pk ? pk->rows : 0, y_bf16 } };
  const void *src = x;
  const float *bias = lin->bias;
  int ids[PRIM_MAX_ARGS] = { DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST };
  void *h[PRIM_MAX_ARGS] = { NULL, pk ? pk->data : (void *) lin->weight, y };
  int n = 3;
  if (wdt == dnnl_bf16 && !x_bf16) {
    src = to_bf16 (d, x, m, lin->k);
  } else if (wdt == dnnl_s8) {
    int8_t *q;
    float sx = to_s8 (d, x, m, lin->k, &q);
    float *scales = vlm_scratch_get (&d->out_scales, 2 * (size_t) lin->n);
    for (int j = 0; j < lin->n; j++) scales[j] = sx * pk->scales[j];
    if (lin->bias) {
      float *b = scales + lin->n;
      for (int j = 0; j < lin->n; j++) b[j] = lin->bias[j] / scales[j];
      bias = b;
    }
    src = q;
    ids[n] = DNNL_ARG_ATTR_OUTPUT_SCALES;
    h[n++] = scales;
  }
  h[0] = (void *) src;
  if (lin->bias) {
    ids[n] = DNNL_ARG_BIAS;
    h[n++] = (void *) bias;
  }
  if (res == RES_OTHER) {
    int po_index = act != VLM_ACT_NONE ? 1 : 0;
    ids[n] = DNNL_ARG_ATTR_MULTIPLE_POST_OP (po_index) | DNNL_ARG_SRC_1;
    h[n++] = (void *) residual;
  }
  Prim *p = g_hash_table_lookup (d->cache, &key);
  if (!p)
    p = prim_new (d, &key, linear_pd (d, m, lin->n, lin->k, pk, lin->bias != NULL, act, res, y_bf16),
                  ids, n);
  prim_run (d, p, h);
}

/* Whether `lin` on m rows runs as a bf16 oneDNN matmul (not decode's GEMV):
 * then its input may be given, and its output taken, in bf16. */
static gboolean
bf16_matmul (const VlmLinearW *lin, int m)
{
  const Packed *p = lin->packed;
  return p && p->md.data_type == dnnl_bf16 && m > VLM_GEMV_MAX_ROWS;
}

void
vlm_dnnl_linear (VlmOpsDnnl *d, const VlmLinearW *lin, const float *x, int m, float *y,
                 VlmAct act, const float *residual)
{
  const Packed *pk = lin->packed;
  if (pk && pk->gemv_kpad && m <= VLM_GEMV_MAX_ROWS) {
    VlmGemvOut o = { pk->data, lin->n, lin->bias, act, residual, y };
    vlm_gemv_bf16 (&o, 1, pk->gemv_kpad, gemv_input (d, x, m, lin->k, pk->gemv_kpad), m);
    return;
  }
  linear_run (d, lin, x, FALSE, m, y, FALSE, act, residual);
}

void
vlm_dnnl_linear_multi (VlmOpsDnnl *d, const VlmLinearW *const *lins, const VlmAct *acts, int n,
                       const float *x, int m, float *const *ys)
{
  const Packed *p0 = lins[0]->packed;
  gboolean one_pass = p0 && p0->gemv_kpad && m <= VLM_GEMV_MAX_ROWS && n <= VLM_GEMV_MAX_OUTS;
  for (int i = 1; i < n && one_pass; i++) {
    const Packed *p = lins[i]->packed;
    one_pass = p && p->gemv_kpad == p0->gemv_kpad;
  }
  if (!one_pass) {
    /* bf16 matmuls (the tower, prefill): the input is converted once */
    gboolean bf16 = TRUE;
    for (int i = 0; i < n; i++)
      bf16 = bf16 && bf16_matmul (lins[i], m);
    const void *xb = bf16 ? to_bf16 (d, x, m, lins[0]->k) : NULL;
    for (int i = 0; i < n; i++)
      if (bf16)
        linear_run (d, lins[i], xb, TRUE, m, ys[i], FALSE, acts[i], NULL);
      else
        vlm_dnnl_linear (d, lins[i], x, m, ys[i], acts[i], NULL);
    return;
  }
  VlmGemvOut outs[VLM_GEMV_MAX_OUTS];
  for (int i = 0; i < n; i++) {
    const Packed *p = lins[i]->packed;
    outs[i] = (VlmGemvOut) { p->data, lins[i]->n, lins[i]->bias, acts[i], NULL, ys[i] };
  }
  vlm_gemv_bf16 (outs, n, p0->gemv_kpad, gemv_input (d, x, m, lins[0]->k, p0->gemv_kpad), m);
}

void
vlm_dnnl_mlp (VlmOpsDnnl *d, const VlmLinearW *fc1, VlmAct act, const VlmLinearW *fc2, const float *x,
              int m, float *hidden, float *y, const float *residual)
{
  if (bf16_matmul (fc1, m) && bf16_matmul (fc2, m)) {
    linear_run (d, fc1, x, FALSE, m, hidden, TRUE, act, NULL);
    linear_run (d, fc2, hidden, TRUE, m, y, FALSE, VLM_ACT_NONE, residual);
  } else {
    vlm_dnnl_linear (d, fc1, x, m, hidden, act, NULL);
    vlm_dnnl_linear (d, fc2, hidden, m, y, VLM_ACT_NONE, residual);
  }
}

/* ------------------------------------------------------------ norms, act, softmax */

void
vlm_dnnl_layer_norm (VlmOpsDnnl *d, const float *x, int m, int n, const float *gamma,
                     const float *beta, float eps, float *y)
{
  PrimKey key = { PRIM_LAYER_NORM, { m, n, fbits (eps), beta != NULL } };
  int ids[] = { DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_SCALE, DNNL_ARG_SHIFT };
  void *h[] = { (void *) x, y, (void *) gamma, (void *) beta };
  Prim *p = g_hash_table_lookup (d->cache, &key);
  if (!p) {
    dnnl_memory_desc_t md = md_strided (2, (dnnl_dims_t) { m, n }, (dnnl_dims_t) { n, 1 });
    dnnl_layer_normalization_desc_t desc;
    unsigned flags = dnnl_use_scale | (beta ? dnnl_use_shift : 0);
    DNNL_CHECK (dnnl_layer_normalization_forward_desc_init (&desc, dnnl_forward_inference, &md,
                                                            NULL, eps, flags));
    p = prim_new (d, &key, pd_create (d, &desc, NULL, NULL), ids, beta ? 4 : 3);
  }
  prim_run (d, p, h);
}

void
vlm_dnnl_act (VlmOpsDnnl *d, VlmAct act, float *x, size_t n)
{
  PrimKey key = { PRIM_ELTWISE, { act, (int64_t) n } };
  int ids[] = { DNNL_ARG_SRC, DNNL_ARG_DST };
  void *h[] = { x, x };
  Prim *p = g_hash_table_lookup (d->cache, &key);
  if (!p) {
    dnnl_memory_desc_t md = md_strided (1, (dnnl_dims_t) { (int64_t) n }, (dnnl_dims_t) { 1 });
    dnnl_eltwise_desc_t desc;
    dnnl_alg_kind_t alg;
    float alpha;
    act_alg (act, &alg, &alpha);
    DNNL_CHECK (dnnl_eltwise_forward_desc_init (&desc, dnnl_forward_inference, alg, &md, alpha,
                                                0.0f));
    p = prim_new (d, &key, pd_create (d, &desc, NULL, NULL), ids, 2);
  }
  prim_run (d, p, h);
}

void
vlm_dnnl_softmax (VlmOpsDnnl *d, const float *x, int m, int n, void *y, gboolean y_bf16)
{
  PrimKey key = { PRIM_SOFTMAX, { m, n, y_bf16 } };
  int ids[] = { DNNL_ARG_SRC, DNNL_ARG_DST };
  void *h[] = { (void *) x, y };
  Prim *p = g_hash_table_lookup (d->cache, &key);
  if (!p) {
    dnnl_memory_desc_t md = md_strided (2, (dnnl_dims_t) { m, n }, (dnnl_dims_t) { n, 1 });
    dnnl_memory_desc_t out = md_typed (2, (dnnl_dims_t) { m, n }, (dnnl_dims_t) { n, 1 },
                                       y_bf16 ? dnnl_bf16 : dnnl_f32);
    dnnl_softmax_v2_desc_t desc;
    DNNL_CHECK (dnnl_softmax_v2_forward_desc_init (&desc, dnnl_forward_inference,
                                                   dnnl_softmax_accurate, &md, &out, 1));
    p = prim_new (d, &key, pd_create (d, &desc, NULL, NULL), ids, 2);
  }
  prim_run (d, p, h);
}

/* ------------------------------------------------------------ attention */

/* Both attention products are one batched matmul over all heads, on strided
 * views of the caller's rows: heads are split as {n_kv_heads, group} and the
 * kv operand has batch dim 1 along `group`, so oneDNN broadcasts each kv
 * head to its query heads (GQA) without copying. Scores are dense
 * [n_heads, lq, lk]. */

void
vlm_dnnl_attn_scores (VlmOpsDnnl *d, const VlmAttnShape *s, const void *q, const void *k,
                      float *scores)
{
  int64_t kvh = s->n_kv_heads, g = s->n_heads / s->n_kv_heads, hd = s->head_dim;
  int64_t lq = s->lq, lk = s->lk;
  PrimKey key = { PRIM_ATTN_SCORES,
                  { kvh, g, lq, lk, hd, s->ldq, s->ldk, fbits (s->scale), s->k_t, s->bf16 } };
  int ids[] = { DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST };
  void *h[] = { (void *) q, (void *) k, scores };
  Prim *p = g_hash_table_lookup (d->cache, &key);
  if (!p) {
    dnnl_data_type_t dt = s->bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t src = md_typed (4, (dnnl_dims_t) { kvh, g, lq, hd },
                                       (dnnl_dims_t) { g * hd, hd, s->ldq, 1 }, dt);
    dnnl_memory_desc_t wei = md_typed (4, (dnnl_dims_t) { kvh, 1, hd, lk },   /* kᵀ */
                                       s->k_t ? (dnnl_dims_t) { hd * s->ldk, hd * s->ldk, s->ldk, 1 }
                                              : (dnnl_dims_t) { hd, hd, 1, s->ldk }, dt);
    dnnl_memory_desc_t dst = md_strided (4, (dnnl_dims_t) { kvh, g, lq, lk },
                                         (dnnl_dims_t) { g * lq * lk, lq * lk, lk, 1 });
    dnnl_post_ops_t po;
    DNNL_CHECK (dnnl_post_ops_create (&po));
    DNNL_CHECK (dnnl_post_ops_append_eltwise (po, 1.0f, dnnl_eltwise_linear, s->scale, 0.0f));
    dnnl_matmul_desc_t desc;
    DNNL_CHECK (dnnl_matmul_desc_init (&desc, &src, &wei, NULL, &dst));
    p = prim_new (d, &key, pd_create (d, &desc, po, NULL), ids, 3);
  }
  prim_run (d, p, h);
}

void
vlm_dnnl_attn_context (VlmOpsDnnl *d, const VlmAttnShape *s, const void *probs,
                       const void *v, float *out)
{
  int64_t kvh = s->n_kv_heads, g = s->n_heads / s->n_kv_heads, hd = s->head_dim;
  int64_t lq = s->lq, lk = s->lk;
  PrimKey key = { PRIM_ATTN_CONTEXT, { kvh, g, lq, lk, hd, s->ldv, s->ldo, s->bf16 } };
  int ids[] = { DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST };
  void *h[] = { (void *) probs, (void *) v, out };
  Prim *p = g_hash_table_lookup (d->cache, &key);
  if (!p) {
    dnnl_data_type_t dt = s->bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t src = md_typed (4, (dnnl_dims_t) { kvh, g, lq, lk },
                                       (dnnl_dims_t) { g * lq * lk, lq * lk, lk, 1 }, dt);
    dnnl_memory_desc_t wei = md_typed (4, (dnnl_dims_t) { kvh, 1, lk, hd },
                                       (dnnl_dims_t) { hd, hd, s->ldv, 1 }, dt);
    dnnl_memory_desc_t dst = md_strided (4, (dnnl_dims_t) { kvh, g, lq, hd },
                                         (dnnl_dims_t) { g * hd, hd, s->ldo, 1 });
    dnnl_matmul_desc_t desc;
    DNNL_CHECK (dnnl_matmul_desc_init (&desc, &src, &wei, NULL, &dst));
    p = prim_new (d, &key, pd_create (d, &desc, NULL, NULL), ids, 3);
  }
  prim_run (d, p, h);
}
