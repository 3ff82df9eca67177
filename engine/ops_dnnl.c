/* ops_dnnl.c — the oneDNN backend (oneDNN 2.6 C API, OpenMP runtime).
 *
 * Each op is a primitive created (JIT-compiled) the first time its exact
 * geometry is seen and then kept in a cache keyed by that geometry. A cached
 * primitive owns memory objects for its arguments, created without data;
 * each call only rebinds their handles, so a steady-state call allocates
 * nothing. Primitives use a user-mode scratchpad owned here, which makes
 * them independent of the thread that created them.
 *
 * What oneDNN runs depends on the CPU tier (vlm_cpu_tier): a primitive it
 * does not implement there (bf16 below AVX-512, say) or memory it cannot
 * get is never fatal. The first failure is kept in the context and every
 * op after it does nothing until the session takes the error
 * (vlm_ops_take_error) and reports it. Descriptor set-up that can only fail
 * on our own invalid arguments stays an assertion. */
#include "cpu.h"
#include "ops_dnnl.h"
#include "ops_gemv.h"
#include "ops_kernels.h"
#include "ops_scratch.h"

#include <dnnl.h>
#include <dnnl_debug.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>

/* descriptor initialisation: fails only on arguments the ops' contracts
 * have already checked */
#define DNNL_ASSERT(call)                                                         \
  G_STMT_START {                                                                  \
    dnnl_status_t st_ = (call);                                                   \
    if (st_ != dnnl_success)                                                      \
      g_error ("oneDNN: %s failed: %s", #call, dnnl_status2str (st_));            \
  } G_STMT_END

/* TRUE (and the first error kept in *error) when `st` is a failure of
 * `what`; the tier goes in the message since it decides what exists */
static gboolean
failed (GError **error, dnnl_status_t st, const char *what)
{
  if (st == dnnl_success)
    return FALSE;
  if (error && !*error)
    g_set_error (error, VLM_ERROR, VLM_ERROR_INFERENCE, "oneDNN: %s failed: %s (CPU tier %s)", what,
                 dnnl_status2str (st), vlm_cpu_describe ());
  return TRUE;
}

/* ------------------------------------------------------------ primitive cache */

enum {
  PRIM_LINEAR = 1, PRIM_LAYER_NORM, PRIM_ELTWISE, PRIM_SOFTMAX, PRIM_ATTN_SCORES,
  PRIM_ATTN_CONTEXT, PRIM_TO_BF16, PRIM_CONV,
};

/* Everything that makes two primitives different: the op kind, then its
 * dims, strides, flags and float parameters (as bit patterns). Unused words
 * are zero, so the key can be hashed and compared as bytes. */
typedef struct {
  int64_t kind;
  int64_t w[10];
  int64_t threads;   /* set by prim_lookup: the OpenMP threads it runs on */
} PrimKey;

#define PRIM_MAX_ARGS 7

typedef struct {
  PrimKey key;
  dnnl_primitive_t prim;
  int n_args;                               /* the caller's handles, in order */
  gboolean has_scratchpad;                  /* then args[n_args] is the scratchpad */
  dnnl_exec_arg_t args[PRIM_MAX_ARGS + 1];
  void *owned;                              /* a convolution's weights in its layout (free()) */
  int int8;                                 /* a linear's Int8Scales */
} Prim;

struct VlmOpsDnnl {
  dnnl_engine_t engine;
  dnnl_stream_t stream;
  GHashTable *cache;         /* PrimKey* -> Prim*, owns the Prims */
  void *scratchpad;          /* shared by all primitives: one runs at a time (free()) */
  size_t scratchpad_size;
  GError *error;             /* the first failure since vlm_dnnl_take_error */
  VlmScratch src_bf16;       /* a bf16 linear's input, converted (halves of floats) */
  VlmScratch src_u8;         /* an int8 linear's input, quantised (quarters of floats) */
  int32_t src_zero_point;    /* ... and its zero point (a matmul's: one for the call) */
  float row_scales[VLM_GEMV_MAX_ROWS];     /* decode's rows: a scale ... */
  int32_t row_zeros[VLM_GEMV_MAX_ROWS];    /* ... and zero point per row */
  VlmScratch out_scales;     /* an int8 linear's per-channel output scales */
  VlmScratch w_f32;          /* a chunk of a bf16-stored weight, widened (tiers without bf16) */
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
    if (p->args[i].memory)
      dnnl_memory_destroy (p->args[i].memory);
  if (p->prim)
    dnnl_primitive_destroy (p->prim);
  free (p->owned);
  g_free (p);
}

/* The memory descriptor of argument `id`: what the primitive reports, or
 * for runtime attributes (which it reports as empty) one f32 per output
 * channel (output scales) or one s32 (a common zero point). */
static dnnl_memory_desc_t
arg_md (const_dnnl_primitive_desc_t pd, int id)
{
  dnnl_memory_desc_t md = *dnnl_primitive_desc_query_md (pd, dnnl_query_exec_arg_md, id);
  if (id == DNNL_ARG_ATTR_OUTPUT_SCALES) {
    const dnnl_memory_desc_t *dst = dnnl_primitive_desc_query_md (pd, dnnl_query_dst_md, 0);
    DNNL_ASSERT (dnnl_memory_desc_init_by_tag (&md, 1, (dnnl_dims_t) { dst->dims[dst->ndims - 1] },
                                               dnnl_f32, dnnl_a));
  } else if (id == (DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC)) {
    DNNL_ASSERT (dnnl_memory_desc_init_by_tag (&md, 1, (dnnl_dims_t) { 1 }, dnnl_s32, dnnl_a));
  }
  return md;
}

/* Takes ownership of `pd` (NULL: its creation failed, the error is kept):
 * creates the primitive and one memory object per argument id (in the
 * order the caller will pass handles), grows the shared scratchpad if this
 * primitive needs more, and caches the result. NULL on failure. */
static Prim *
prim_new (VlmOpsDnnl *d, const PrimKey *key, dnnl_primitive_desc_t pd, const int *ids,
          int n_ids)
{
  if (!pd)
    return NULL;
  g_assert (n_ids <= PRIM_MAX_ARGS);
  Prim *p = g_new0 (Prim, 1);
  p->key = *key;
  p->n_args = n_ids;
  gboolean ok = !failed (&d->error, dnnl_primitive_create (&p->prim, pd), "creating a primitive");
  for (int i = 0; ok && i < n_ids; i++) {
    dnnl_memory_desc_t md = arg_md (pd, ids[i]);
    p->args[i].arg = ids[i];
    ok = !failed (&d->error, dnnl_memory_create (&p->args[i].memory, &md, d->engine, DNNL_MEMORY_NONE),
                  "creating a memory object");
  }
  const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md (pd, dnnl_query_scratchpad_md, 0);
  size_t need = smd ? dnnl_memory_desc_get_size (smd) : 0;
  if (ok && need > 0) {
    p->has_scratchpad = TRUE;
    p->args[n_ids].arg = DNNL_ARG_SCRATCHPAD;
    ok = !failed (&d->error, dnnl_memory_create (&p->args[n_ids].memory, smd, d->engine, DNNL_MEMORY_NONE),
                  "creating a memory object");
    void *buf = NULL;
    if (ok && need > d->scratchpad_size) {
      ok = posix_memalign (&buf, 64, need) == 0;
      if (ok) {
        free (d->scratchpad);
        d->scratchpad = buf;
        d->scratchpad_size = need;
      } else {
        failed (&d->error, dnnl_out_of_memory, "allocating a primitive's scratchpad");
      }
    }
  }
  dnnl_primitive_desc_destroy (pd);
  if (!ok) {
    prim_free (p);
    return NULL;
  }
  g_hash_table_insert (d->cache, &p->key, p);
  return p;
}

/* Binds `handles` (one per argument id given to prim_new) and runs; does
 * nothing without a primitive or after a failure. */
static void
prim_run (VlmOpsDnnl *d, Prim *p, void *const *handles)
{
  if (!p || d->error)
    return;
  int n = p->n_args;
  for (int i = 0; i < n; i++)
    DNNL_ASSERT (dnnl_memory_set_data_handle (p->args[i].memory, handles[i]));
  if (p->has_scratchpad)
    DNNL_ASSERT (dnnl_memory_set_data_handle (p->args[n++].memory, d->scratchpad));
  if (!failed (&d->error, dnnl_primitive_execute (p->prim, d->stream, n, p->args), "running a primitive"))
    failed (&d->error, dnnl_stream_wait (d->stream), "waiting for a primitive");
}

/* The cached primitive for `key` at the thread count ops.c set for this op
 * (the cores others leave): oneDNN sizes a primitive's parallel work when
 * it is made, and one made for two threads runs on two even when told one
 * (GIT's f32 tower capped to AVX2 beside a spinning process: 18 % slower
 * than with one thread configured). NULL if not made yet. */
static Prim *
prim_lookup (VlmOpsDnnl *d, PrimKey *key)
{
  key->threads = omp_get_max_threads ();
  return g_hash_table_lookup (d->cache, key);
}

/* The cached primitive for `key`, or one made now from the descriptor
 * `make` returns (NULL and the error kept if it cannot be). */
#define PRIM_GET(d, key, make, ids, n_ids)                                              \
  ({                                                                                    \
    Prim *p_ = (d)->error ? NULL : prim_lookup ((d), (key));                     \
    if (!p_ && !(d)->error)                                                             \
      p_ = prim_new ((d), (key), (make), (ids), (n_ids));                               \
    p_;                                                                                 \
  })

static const char *
impl_name (const_dnnl_primitive_desc_t pd)
{
  const char *name = "";
  dnnl_primitive_desc_query (pd, dnnl_query_impl_info_str, 0, &name);
  return name;
}

/* How an s8 matmul applies its per-call scales (src scale × weight scale
 * per output channel; the u8 input is quantised per call, its zero point a
 * runtime value in both):
 * - INT8_OSCALES: runtime output scales. oneDNN 2.6 runs these through
 *   gemm:jit only, which is its fastest int8 matmul up to AVX-512 VNNI
 *   (measured here, 1182×768×3072 with bias: 193 vs 192 GFLOP/s without
 *   scales under AVX2, 776 vs 803 under AVX-512 VNNI) but not on AMX
 *   (427 vs brgemm's 1408: gemm:jit has no AMX kernel);
 * - INT8_POST_OP: the scales as the first post-op, a binary multiply by a
 *   runtime [1, n] vector, which brgemm runs (1209 GFLOP/s on AMX with
 *   GELU after it); where oneDNN has no brgemm it falls to gemm:jit with
 *   binary post-ops (0.7–0.9 of its speed; with a residual sum, the
 *   reference loops), so it is only taken where brgemm runs it.
 * The s32 sums and the float formula (scale · (acc + bias / scale)) are
 * the same in both. */
typedef enum { INT8_NONE, INT8_OSCALES, INT8_POST_OP } Int8Scales;

static void
set_int8_attrs (dnnl_primitive_attr_t attr, Int8Scales mode)
{
  if (mode == INT8_OSCALES)
    DNNL_ASSERT (dnnl_primitive_attr_set_output_scales (attr, 1, 1 << 1, (float[]) { DNNL_RUNTIME_F32_VAL }));
  DNNL_ASSERT (dnnl_primitive_attr_set_zero_points (attr, DNNL_ARG_SRC, 1, 0, (int32_t[]) { DNNL_RUNTIME_S32_VAL }));
}

/* Primitive descriptor for `op_desc` with a user scratchpad and `post_ops`
 * (may be NULL; destroyed here): oneDNN's first choice, or the first
 * implementation whose name starts with `prefer` if there is one. NULL,
 * with the error kept in *error (may be NULL), when oneDNN has none (on
 * this CPU tier). */
static dnnl_primitive_desc_t
pd_create_scaled (VlmOpsDnnl *d, const_dnnl_op_desc_t op_desc, dnnl_post_ops_t post_ops,
                  const char *prefer, Int8Scales int8, GError **error)
{
  dnnl_primitive_attr_t attr;
  dnnl_primitive_desc_iterator_t it;
  DNNL_ASSERT (dnnl_primitive_attr_create (&attr));
  DNNL_ASSERT (dnnl_primitive_attr_set_scratchpad_mode (attr, dnnl_scratchpad_mode_user));
  if (int8 != INT8_NONE)
    set_int8_attrs (attr, int8);
  if (post_ops) {
    DNNL_ASSERT (dnnl_primitive_attr_set_post_ops (attr, post_ops));
    dnnl_post_ops_destroy (post_ops);
  }
  dnnl_status_t st = dnnl_primitive_desc_iterator_create (&it, op_desc, attr, d->engine, NULL);
  dnnl_primitive_attr_destroy (attr);
  if (failed (error, st, "finding an implementation"))
    return NULL;
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
  return pd;
}

static dnnl_primitive_desc_t
pd_create (VlmOpsDnnl *d, const_dnnl_op_desc_t op_desc, dnnl_post_ops_t post_ops, const char *prefer)
{
  return pd_create_scaled (d, op_desc, post_ops, prefer, INT8_NONE, &d->error);
}

/* A memory descriptor with explicit strides (all ours are plain). */
static dnnl_memory_desc_t
md_typed (int ndims, const dnnl_dims_t dims, const dnnl_dims_t strides, dnnl_data_type_t dt)
{
  dnnl_memory_desc_t md;
  DNNL_ASSERT (dnnl_memory_desc_init_by_strides (&md, ndims, dims, dt, strides));
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
  vlm_cpu_tier ();   /* VLM_MAX_CPU_ISA caps oneDNN before it JITs anything */
  dnnl_status_t st = dnnl_engine_create (&d->engine, dnnl_cpu, 0);
  if (st == dnnl_success)
    st = dnnl_stream_create (&d->stream, d->engine, dnnl_stream_default_flags);
  if (failed (error, st, "creating a CPU engine")) {
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
  free (d->scratchpad);
  g_clear_error (&d->error);
  vlm_scratch_clear (&d->src_bf16);
  vlm_scratch_clear (&d->src_u8);
  vlm_scratch_clear (&d->out_scales);
  vlm_scratch_clear (&d->w_f32);
  g_free (d);
}

gboolean
vlm_dnnl_take_error (VlmOpsDnnl *d, GError **error)
{
  if (!d->error)
    return TRUE;
  g_propagate_error (error, d->error);
  d->error = NULL;
  return FALSE;
}

int
vlm_dnnl_n_primitives (const VlmOpsDnnl *d)
{
  return g_hash_table_size (d->cache);
}

/* ------------------------------------------------------------ packed weights */

/* A weight prepared for the tier:
 * - PACK_DNNL: in the layout a matmul primitive asked for (format_tag_any),
 *   f32, bf16 (CPUs with bf16 instructions) or s8;
 * - PACK_ROWS_F32: HF's own [n][k] f32 rows, the linear's weight (AVX2 and
 *   below: oneDNN's gemm reads them as they are for the tower and prefill,
 *   the engine's GEMV streams them for decode);
 * - PACK_ROWS_BF16: the same rows in bf16 (bf16 weights on CPUs without
 *   bf16 instructions: half the memory and half decode's bytes; widened to
 *   f32 a chunk at a time for the matmuls of more rows);
 * - PACK_ROWS_S8: int8 on every tier, HF's rows quantised, each padded with
 *   zeros to a multiple of 64 bytes: md describes them ({k, n}, strides
 *   {1, ldw}) for oneDNN's u8·s8 matmul (tower, prefill: brgemm on AMX,
 *   gemm:jit below, Int8Scales; as fast on these rows as on its own
 *   blocked choice), and the engine's int8 GEMV reads them for decode. */
typedef enum { PACK_DNNL, PACK_ROWS_F32, PACK_ROWS_BF16, PACK_ROWS_S8 } PackLayout;

typedef struct {
  PackLayout layout;
  dnnl_memory_desc_t md;
  void *data;     /* PACK_DNNL, PACK_ROWS_S8: md's data; PACK_ROWS_BF16: [n][k] bf16 */
  int rows;       /* what the layout was chosen for: with n, k, dtype it fixes md */
  float *scales;  /* s8: per output channel, W[j, :] ≈ scales[j] · q[j, :] */
  int32_t *sums;  /* s8: Σ_t q[j, t], for the input's zero point in the GEMV */
  int ldw;        /* s8: the row stride, k rounded up to 64 */
  int gemv_kpad;  /* > 0: bf16 or f32 in a layout vlm_gemv's blocked kernels read, k padded to this */
} Packed;

/* Weights are packed at load, before any session (and its engine) exists,
 * by one engine kept for the process. */
static dnnl_engine_t
pack_engine (GError **error)
{
  static gsize once = 0;
  static dnnl_engine_t engine;
  static dnnl_status_t st;
  if (g_once_init_enter (&once)) {
    vlm_cpu_tier ();
    st = dnnl_engine_create (&engine, dnnl_cpu, 0);
    g_once_init_leave (&once, 1);
  }
  return failed (error, st, "creating a CPU engine") ? NULL : engine;
}

gboolean
vlm_dnnl_has_native_bf16 (void)
{
  return vlm_cpu_native_bf16 ();
}

static dnnl_data_type_t
dnnl_dt (VlmDType dtype)
{
  return dtype == VLM_DTYPE_BF16 ? dnnl_bf16 : dtype == VLM_DTYPE_I8 ? dnnl_s8 : dnnl_f32;
}

/* The input dtype a matmul over weights of dtype `wdt` takes: u8 with a
 * zero point for s8 weights (the u8·s8 kernels are the fast ones on every
 * tier: AVX2's vpmaddubsw, VNNI's vpdpbusd), else the weights' own. */
static dnnl_data_type_t
src_dt (dnnl_data_type_t wdt)
{
  return wdt == dnnl_s8 ? dnnl_u8 : wdt;
}

/* The weight layout oneDNN's matmul chooses for `rows` × k inputs against
 * weights of dtype dt: blocked so that its kernels stream it without
 * re-packing per call; or, given `want`, that oneDNN runs that layout.
 * FALSE (error set) if oneDNN has no such matmul. */
static gboolean
packed_md (int rows, int n, int k, dnnl_data_type_t dt, const dnnl_memory_desc_t *want, dnnl_memory_desc_t *md,
           GError **error)
{
  dnnl_engine_t engine = pack_engine (error);
  if (!engine)
    return FALSE;
  dnnl_memory_desc_t src, wei, dst;
  DNNL_ASSERT (dnnl_memory_desc_init_by_tag (&src, 2, (dnnl_dims_t) { rows, k }, src_dt (dt), dnnl_ab));
  if (want)
    wei = *want;
  else
    DNNL_ASSERT (dnnl_memory_desc_init_by_tag (&wei, 2, (dnnl_dims_t) { k, n }, dt, dnnl_format_tag_any));
  DNNL_ASSERT (dnnl_memory_desc_init_by_tag (&dst, 2, (dnnl_dims_t) { rows, n }, dnnl_f32, dnnl_ab));
  dnnl_matmul_desc_t desc;
  dnnl_primitive_desc_t pd;
  DNNL_ASSERT (dnnl_matmul_desc_init (&desc, &src, &wei, NULL, &dst));
  dnnl_primitive_attr_t attr;
  DNNL_ASSERT (dnnl_primitive_attr_create (&attr));
  if (dt == dnnl_s8)
    set_int8_attrs (attr, INT8_OSCALES);   /* exists on every tier */
  dnnl_status_t st = dnnl_primitive_desc_create (&pd, &desc, attr, engine, NULL);
  dnnl_primitive_attr_destroy (attr);
  if (failed (error, st, dt == dnnl_bf16 ? "a bf16 matmul" : dt == dnnl_s8 ? "an int8 matmul" : "an f32 matmul"))
    return FALSE;
  *md = *dnnl_primitive_desc_query_md (pd, dnnl_query_weights_md, 0);
  dnnl_primitive_desc_destroy (pd);
  return TRUE;
}

/* Whether md is {k, n} blocked in a layout vlm_gemv's blocked kernels
 * read, on a CPU that runs them: bf16 as BA16a64b2a ([n/64][k/2][64][2]:
 * k blocks of 32 inside each 64-column block), f32 as BA16a64b
 * ([n/64][k][64], k blocks of 16; what oneDNN 2.6's brgemm asks for on
 * AVX-512 for every row count). */
static gboolean
gemv_layout (const dnnl_memory_desc_t *md)
{
  const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
  if (md->format_kind != dnnl_blocked || md->ndims != 2 || md->offset0 != 0 || b->strides[1] != md->padded_dims[0] * 64 ||
      b->inner_blks[0] != 16 || b->inner_idxs[0] != 0 || b->inner_blks[1] != 64 || b->inner_idxs[1] != 1)
    return FALSE;
  if (md->data_type == dnnl_bf16)
    return b->inner_nblks == 3 && b->inner_blks[2] == 2 && b->inner_idxs[2] == 0 && b->strides[0] == 32 * 64 &&
           vlm_gemv_bf16_supported ();
  return md->data_type == dnnl_f32 && b->inner_nblks == 2 && b->strides[0] == 16 * 64 && vlm_gemv_f32_supported ();
}

/* The reorder of src_md at `from` into the packed layout at `to`. */
static gboolean
reorder (const dnnl_memory_desc_t *src_md, const void *from_data, const dnnl_memory_desc_t *to_md, void *to_data,
         GError **error)
{
  dnnl_engine_t engine = pack_engine (error);
  if (!engine)
    return FALSE;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_primitive_t prim = NULL;
  dnnl_memory_t from = NULL, to = NULL;
  dnnl_stream_t stream = NULL;
  gboolean ok =
      !failed (error, dnnl_reorder_primitive_desc_create (&pd, src_md, engine, to_md, engine, NULL), "a weight reorder") &&
      !failed (error, dnnl_primitive_create (&prim, pd), "a weight reorder") &&
      !failed (error, dnnl_memory_create (&from, src_md, engine, (void *) from_data), "a weight reorder") &&
      !failed (error, dnnl_memory_create (&to, to_md, engine, to_data), "a weight reorder") &&
      !failed (error, dnnl_stream_create (&stream, engine, dnnl_stream_default_flags), "a weight reorder");
  if (ok) {
    dnnl_exec_arg_t args[] = { { DNNL_ARG_FROM, from }, { DNNL_ARG_TO, to } };
    ok = !failed (error, dnnl_primitive_execute (prim, stream, 2, args), "a weight reorder") &&
         !failed (error, dnnl_stream_wait (stream), "a weight reorder");
  }
  if (stream)
    dnnl_stream_destroy (stream);
  if (from)
    dnnl_memory_destroy (from);
  if (to)
    dnnl_memory_destroy (to);
  if (prim)
    dnnl_primitive_destroy (prim);
  if (pd)
    dnnl_primitive_desc_destroy (pd);
  return ok;
}

/* p as PACK_ROWS_S8 from lin's f32 weight: quantised per output channel
 * (symmetric, scale = max |W[j, :]| / vlm_cpu_int8_weight_max, rounding
 * to nearest even), rows padded with zeros to ldw, their sums kept. */
static gboolean
pack_s8_rows (Packed *p, const VlmLinearW *lin, GError **error)
{
  int n = lin->n, k = lin->k;
  float qmax = (float) vlm_cpu_int8_weight_max ();
  p->layout = PACK_ROWS_S8;
  p->ldw = (k + 63) / 64 * 64;
  /* the matmul sums over all ldw (the padding is zero on both sides): a
   * dense {ldw, n} ba, which brgemm takes; a row stride past k sent it
   * to gemm:jit (SigLIP's fc2, k = 4304: 782 vs 953 GFLOP/s on AMX) */
  DNNL_ASSERT (dnnl_memory_desc_init_by_strides (&p->md, 2, (dnnl_dims_t) { p->ldw, n }, dnnl_s8,
                                                 (dnnl_dims_t) { 1, p->ldw }));
  if (!packed_md (p->rows, n, p->ldw, dnnl_s8, &p->md, &p->md, error))
    return FALSE;
  int8_t *q = g_aligned_alloc0 ((size_t) n * p->ldw, 1, 64);
  p->data = q;
  p->scales = g_new (float, n);
  p->sums = g_new (int32_t, n);
  for (int j = 0; j < n; j++) {
    const float *w = lin->weight + (size_t) j * k;
    int8_t *qj = q + (size_t) j * p->ldw;
    float amax = 0.0f;
    for (int t = 0; t < k; t++) amax = fabsf (w[t]) > amax ? fabsf (w[t]) : amax;
    p->scales[j] = amax > 0.0f ? amax / qmax : 1.0f;
    float inv = 1.0f / p->scales[j];
    int32_t sum = 0;
    /* rounded to nearest even as lrintf does, without its call per value */
    for (int t = 0; t < k; t++) sum += qj[t] = (int8_t) ((w[t] * inv + 12582912.0f) - 12582912.0f);
    p->sums[j] = sum;
  }
  return TRUE;
}

void *
vlm_dnnl_pack (const VlmLinearW *lin, const VlmTensor *weight, VlmDType dtype, int rows, GError **error)
{
  int n = lin->n, k = lin->k;
  Packed *p = g_new0 (Packed, 1);
  p->rows = MAX (rows, 1);
  if (dtype == VLM_DTYPE_BF16 && !vlm_cpu_native_bf16 ()) {
    /* bf16 kept as bf16, from the checkpoint as stored or rounded from f32 */
    p->layout = PACK_ROWS_BF16;
    uint16_t *w = g_aligned_alloc ((size_t) n * k, sizeof (uint16_t), 64);
    if (weight->dtype == VLM_DTYPE_BF16)
      memcpy (w, weight->data, (size_t) n * k * sizeof (uint16_t));
    else
      for (size_t i = 0; i < (size_t) n * k; i++) w[i] = vlm_f32_to_bf16 (lin->weight[i]);
    p->data = w;
    return p;
  }
  if (dtype == VLM_DTYPE_F32 && vlm_cpu_tier () <= VLM_CPU_AVX2) {
    p->layout = PACK_ROWS_F32;
    return p;
  }
  if (dtype == VLM_DTYPE_I8) {
    if (!pack_s8_rows (p, lin, error)) {
      vlm_dnnl_packed_free (p);
      return NULL;
    }
    return p;
  }
  /* the source: HF's [n, k] read as {k, n} (tag ba), bf16 as stored when
   * that is what we pack to, else the f32 vlm_linear_init made */
  gboolean as_stored = weight->dtype == VLM_DTYPE_BF16 && dtype == VLM_DTYPE_BF16;
  dnnl_memory_desc_t src_md;
  DNNL_ASSERT (dnnl_memory_desc_init_by_strides (&src_md, 2, (dnnl_dims_t) { k, n }, as_stored ? dnnl_bf16 : dnnl_f32,
                                                 (dnnl_dims_t) { 1, k }));
  if (!packed_md (p->rows, n, k, dnnl_dt (dtype), NULL, &p->md, error)) {
    g_free (p);
    return NULL;
  }
  p->data = g_aligned_alloc (dnnl_memory_desc_get_size (&p->md), 1, 64);
  p->gemv_kpad = gemv_layout (&p->md) ? (int) p->md.padded_dims[0] : 0;
  gboolean ok = reorder (&src_md, as_stored ? (void *) weight->data : (void *) lin->weight, &p->md, p->data, error);
  if (!ok) {
    vlm_dnnl_packed_free (p);
    return NULL;
  }
  return p;
}

gboolean
vlm_dnnl_packed_reads_f32 (const void *packed)
{
  return ((const Packed *) packed)->layout == PACK_ROWS_F32;
}

void
vlm_dnnl_packed_free (void *packed)
{
  Packed *p = packed;
  if (p) {
    g_aligned_free (p->data);
    g_free (p->scales);
    g_free (p->sums);
  }
  g_free (p);
}

static dnnl_primitive_desc_t
to_bf16_pd (VlmOpsDnnl *d, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to)
{
  dnnl_primitive_attr_t attr;
  dnnl_primitive_desc_t pd = NULL;
  DNNL_ASSERT (dnnl_primitive_attr_create (&attr));
  DNNL_ASSERT (dnnl_primitive_attr_set_scratchpad_mode (attr, dnnl_scratchpad_mode_user));
  dnnl_status_t st = dnnl_reorder_primitive_desc_create (&pd, from, d->engine, to, d->engine, attr);
  dnnl_primitive_attr_destroy (attr);
  return failed (&d->error, st, "a bf16 conversion") ? NULL : pd;
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
  dnnl_memory_desc_t from = md_strided (2, (dnnl_dims_t) { m, k }, (dnnl_dims_t) { ld, 1 }), to;
  DNNL_ASSERT (dnnl_memory_desc_init_by_tag (&to, 2, (dnnl_dims_t) { m, k }, dnnl_bf16, dnnl_ab));
  Prim *p = PRIM_GET (d, &key, to_bf16_pd (d, &from, &to), ((int[]) { DNNL_ARG_FROM, DNNL_ARG_TO }), 2);
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

/* Dynamic asymmetric quantisation to u8 over [min(x, 0), max(x, 0)]: all
 * 256 levels serve the values the input has, GELU's outputs included.
 * x ≈ scale · (q - zero). */
typedef struct {
  float scale;
  int32_t zero;
} U8Quant;

static inline U8Quant
u8_quant (float lo, float hi)
{
  float scale = hi > lo ? (hi - lo) / 255.0f : 1.0f;
  return (U8Quant) { scale, (int32_t) rintf (-lo * (1.0f / scale)) };
}

/* A matmul's input x [m, k] → u8 rows of stride ldq (zeros past k) into
 * d->src_u8, one scale and zero point for the call (oneDNN 2.6's int8
 * matmul takes one zero point for its source); returns the scale, the
 * zero point in d->src_zero_point. */
static float
to_u8 (VlmOpsDnnl *d, const float *x, int m, int k, int ldq, uint8_t **out)
{
  size_t n = (size_t) m * k;
  uint8_t *q = (uint8_t *) vlm_scratch_get (&d->src_u8, ((size_t) m * ldq + 3) / 4);
  int nt = n > 65536 ? MIN (omp_get_max_threads (), 64) : 1;
  size_t chunk = (n + nt - 1) / nt;
  float lo_t[64] = { 0 }, hi_t[64] = { 0 }, lo = 0.0f, hi = 0.0f;
  const VlmKernels *kernels = vlm_kernels ();
#pragma omp parallel for num_threads (nt) schedule (static) if (nt > 1)
  for (int t = 0; t < nt; t++) {
    size_t i0 = MIN (n, t * chunk);
    kernels->u8_range (x + i0, MIN (n, (t + 1) * chunk) - i0, &lo_t[t], &hi_t[t]);
  }
  for (int t = 0; t < nt; t++) {
    lo = fminf (lo, lo_t[t]);
    hi = fmaxf (hi, hi_t[t]);
  }
  U8Quant u = u8_quant (lo, hi);
  d->src_zero_point = u.zero;
#pragma omp parallel for num_threads (nt) schedule (static) if (nt > 1)
  for (int r = 0; r < m; r++) {
    kernels->u8_quantise (x + (size_t) r * k, k, 1.0f / u.scale, (float) u.zero, q + (size_t) r * ldq);
    memset (q + (size_t) r * ldq + k, 0, ldq - k);
  }
  *out = q;
  return u.scale;
}

/* Decode's rows x [m, k] → u8 rows of stride ldq (zeros past k) into
 * d->src_u8, each with its own scale and zero point (scales[r], zeros[r]):
 * a row's result does not depend on the rows it is batched with. */
static const uint8_t *
to_u8_rows (VlmOpsDnnl *d, const float *x, int m, int k, int ldq, float *scales, int32_t *zeros)
{
  uint8_t *q = (uint8_t *) vlm_scratch_get (&d->src_u8, ((size_t) m * ldq + 3) / 4);
  const VlmKernels *kernels = vlm_kernels ();
  for (int r = 0; r < m; r++) {
    const float *xr = x + (size_t) r * k;
    float lo = 0.0f, hi = 0.0f;
    kernels->u8_range (xr, k, &lo, &hi);
    U8Quant u = u8_quant (lo, hi);
    kernels->u8_quantise (xr, k, 1.0f / u.scale, (float) u.zero, q + (size_t) r * ldq);
    memset (q + (size_t) r * ldq + k, 0, ldq - k);
    scales[r] = u.scale;
    zeros[r] = u.zero;
  }
  return q;
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

/* What one matmul multiplies by: n outputs of k, the weight packed
 * (PACK_DNNL) or HF's f32 rows (pk NULL), bias [n] or NULL. */
typedef struct {
  int n, k;
  const Packed *pk;
  const void *w;
  const float *bias;
} MatW;

/* matmul {m,k}·{k,n} + bias into rows of stride ldy, then post-ops: the
 * activation, then the residual as a sum (y += ..., when it is y itself)
 * or a binary add. The weight is packed (its layout and dtype, the input
 * converted to that dtype), or HF's [n,k] row-major f32 read as {k,n} with
 * strides {1,k} (tag ba): no copy. An s8 matmul scales its s32 sums after
 * adding the bias (oneDNN 2.x int8 semantics: dst = scale · (acc + bias)),
 * so the caller passes the bias divided by the scales. (The bias as a
 * binary post-op instead ran gemm:jit at a third of its speed.) An s8
 * matmul's scales come first where they are a post-op (INT8_POST_OP). */
static dnnl_post_ops_t
linear_post_ops (int n, VlmAct act, int res, const dnnl_memory_desc_t *dst, Int8Scales int8)
{
  dnnl_post_ops_t po;
  DNNL_ASSERT (dnnl_post_ops_create (&po));
  if (int8 == INT8_POST_OP) {
    dnnl_memory_desc_t per_channel = md_strided (2, (dnnl_dims_t) { 1, n }, (dnnl_dims_t) { n, 1 });
    DNNL_ASSERT (dnnl_post_ops_append_binary (po, dnnl_binary_mul, &per_channel));
  }
  if (act != VLM_ACT_NONE) {
    dnnl_alg_kind_t alg;
    float alpha;
    act_alg (act, &alg, &alpha);
    DNNL_ASSERT (dnnl_post_ops_append_eltwise (po, 1.0f, alg, alpha, 0.0f));
  }
  if (res == RES_IN_PLACE)
    DNNL_ASSERT (dnnl_post_ops_append_sum (po, 1.0f));
  else if (res == RES_OTHER)
    DNNL_ASSERT (dnnl_post_ops_append_binary (po, dnnl_binary_add, dst));
  return po;
}

/* The matmul's descriptor; for an s8 weight *int8 says how its scales
 * are applied: as a post-op where brgemm runs that, else as runtime
 * output scales (Int8Scales). */
static dnnl_primitive_desc_t
linear_pd (VlmOpsDnnl *d, int m, const MatW *mw, int ldy, VlmAct act, int res, gboolean dst_bf16, Int8Scales *int8)
{
  int n = mw->n, k = mw->k;
  dnnl_memory_desc_t src, wei;
  if (mw->pk) {
    wei = mw->pk->md;
    /* k, or an s8 weight's ldw (its input padded to it) */
    DNNL_ASSERT (dnnl_memory_desc_init_by_tag (&src, 2, (dnnl_dims_t) { m, wei.dims[0] }, src_dt (wei.data_type),
                                               dnnl_ab));
  } else {
    src = md_strided (2, (dnnl_dims_t) { m, k }, (dnnl_dims_t) { k, 1 });
    wei = md_strided (2, (dnnl_dims_t) { k, n }, (dnnl_dims_t) { 1, k });
  }
  dnnl_memory_desc_t bia = md_strided (2, (dnnl_dims_t) { 1, n }, (dnnl_dims_t) { n, 1 });
  dnnl_memory_desc_t dst = md_typed (2, (dnnl_dims_t) { m, n }, (dnnl_dims_t) { ldy, 1 },
                                     dst_bf16 ? dnnl_bf16 : dnnl_f32);
  dnnl_matmul_desc_t desc;
  DNNL_ASSERT (dnnl_matmul_desc_init (&desc, &src, &wei, mw->bias ? &bia : NULL, &dst));
  *int8 = INT8_NONE;
  if (wei.data_type == dnnl_s8) {
    dnnl_primitive_desc_t pd = pd_create_scaled (d, &desc, linear_post_ops (n, act, res, &dst, INT8_POST_OP), "brg",
                                                 INT8_POST_OP, NULL);
    if (pd && g_str_has_prefix (impl_name (pd), "brg")) {
      *int8 = INT8_POST_OP;
      return pd;
    }
    if (pd)
      dnnl_primitive_desc_destroy (pd);
    *int8 = INT8_OSCALES;
  }
  /* For m <= 2 (decode) brgemm re-packs the whole `ba` weight on every call
   * and runs at half the speed of the gemm-based matmul (measured here:
   * 0.19 vs 0.09 ms for 1x768x3072); from m = 4 on brgemm wins. Packed
   * weights need no re-packing. */
  return pd_create_scaled (d, &desc, linear_post_ops (n, act, res, &dst, *int8), m <= 2 && !mw->pk ? "gemm" : NULL,
                           *int8, &d->error);
}

/* A matmul's arguments: ids for prim_new and the handles of one call, in
 * one order. */
typedef struct {
  int n;
  int ids[PRIM_MAX_ARGS];
  void *h[PRIM_MAX_ARGS];
} Args;

static void
arg_add (Args *a, int id, const void *handle)
{
  g_assert (a->n < PRIM_MAX_ARGS);
  a->ids[a->n] = id;
  a->h[a->n++] = (void *) handle;
}

/* One matmul through a cached primitive. x is f32, or already bf16
 * (x_bf16: for a bf16 weight only); y is f32, or bf16 (y_bf16, without a
 * residual), rows of stride ldy. An s8 weight's input is quantised per
 * call (to_u8): scales[j] = sx · sw[j], applied after the bias, which is
 * given divided by them. */
static void
matmul_run (VlmOpsDnnl *d, const MatW *mw, const void *x, gboolean x_bf16, int m, void *y, int ldy,
            gboolean y_bf16, VlmAct act, const float *residual)
{
  int res = !residual ? RES_NONE : residual == y ? RES_IN_PLACE : RES_OTHER;
  const Packed *pk = mw->pk;
  int wdt = pk ? pk->md.data_type : dnnl_f32;
  g_assert ((!x_bf16 || wdt == dnnl_bf16) && (!y_bf16 || res == RES_NONE));
  PrimKey key = { PRIM_LINEAR, { m, mw->n, mw->k, mw->bias != NULL, act, res, wdt, pk ? pk->rows : 0,
                                 y_bf16, ldy } };
  Prim *p = d->error ? NULL : prim_lookup (d, &key);
  dnnl_primitive_desc_t pd = NULL;
  Int8Scales int8 = p ? (Int8Scales) p->int8 : INT8_NONE;
  if (!p && !d->error)
    pd = linear_pd (d, m, mw, ldy, act, res, y_bf16, &int8);
  const void *src = x;
  const float *bias = mw->bias, *scales = NULL;
  if (wdt == dnnl_bf16 && !x_bf16) {
    src = to_bf16 (d, x, m, mw->k);
  } else if (wdt == dnnl_s8) {
    uint8_t *q;
    float sx = to_u8 (d, x, m, mw->k, pk->ldw, &q);
    float *s = vlm_scratch_get (&d->out_scales, 2 * (size_t) mw->n);
    for (int j = 0; j < mw->n; j++) s[j] = sx * pk->scales[j];
    if (mw->bias) {
      float *b = s + mw->n;
      for (int j = 0; j < mw->n; j++) b[j] = mw->bias[j] / s[j];
      bias = b;
    }
    src = q;
    scales = s;
  }
  Args a = { 0 };
  arg_add (&a, DNNL_ARG_SRC, src);
  arg_add (&a, DNNL_ARG_WEIGHTS, mw->w);
  arg_add (&a, DNNL_ARG_DST, y);
  if (int8 == INT8_OSCALES)
    arg_add (&a, DNNL_ARG_ATTR_OUTPUT_SCALES, scales);
  if (int8 != INT8_NONE)
    arg_add (&a, DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, &d->src_zero_point);
  if (mw->bias)
    arg_add (&a, DNNL_ARG_BIAS, bias);
  int po_index = 0;   /* the post-ops: scales (INT8_POST_OP), activation, residual */
  if (int8 == INT8_POST_OP)
    arg_add (&a, DNNL_ARG_ATTR_MULTIPLE_POST_OP (po_index++) | DNNL_ARG_SRC_1, scales);
  if (act != VLM_ACT_NONE)
    po_index++;
  if (res == RES_OTHER)
    arg_add (&a, DNNL_ARG_ATTR_MULTIPLE_POST_OP (po_index) | DNNL_ARG_SRC_1, residual);
  if (pd && (p = prim_new (d, &key, pd, a.ids, a.n)))
    p->int8 = int8;
  prim_run (d, p, a.h);
}

static const Packed *
packed_of (const VlmLinearW *lin)
{
  return lin->packed;
}

/* The linear as one matmul: its oneDNN-packed weight, or its f32 rows. */
static MatW
mat_of (const VlmLinearW *lin)
{
  const Packed *pk = packed_of (lin);
  gboolean dnnl = pk && (pk->layout == PACK_DNNL || pk->layout == PACK_ROWS_S8);
  return (MatW) { lin->n, lin->k, dnnl ? pk : NULL, dnnl ? pk->data : (const void *) lin->weight, lin->bias };
}

static void
linear_run (VlmOpsDnnl *d, const VlmLinearW *lin, const void *x, gboolean x_bf16, int m, void *y,
            gboolean y_bf16, VlmAct act, const float *residual)
{
  MatW mw = mat_of (lin);
  matmul_run (d, &mw, x, x_bf16, m, y, lin->n, y_bf16, act, residual);
}

/* A bf16-stored weight (PACK_ROWS_BF16) against more rows than decode: a
 * chunk of outputs at a time, its rows widened to f32 and multiplied in
 * f32 into the chunk's columns of y. Widening costs one pass over the
 * weight per call, against m multiply-adds per weight for the matmul. For
 * a few rows (a step batched over more captions than the GEMV takes) the
 * matmul is bound by reading the widened chunk, which is kept to about
 * 2 MiB so that it is still in the cache; for many rows (towers, prefill)
 * it is bound by arithmetic, and narrow chunks cost it: each re-reads the
 * whole input and gives oneDNN's gemm fewer columns to block. Measured on
 * a Sapphire Rapids VM capped to AVX2, alternated: Qwen2-0.5B prefill
 * (1582 rows) 178–181 GFLOP/s with 2 MiB chunks, 186 with 8, 188–189 with
 * 16 (f32 weights: 189), 190–191 with the whole weight; git-base-vatex's
 * vision_ms (1182 rows) 1576–1593 → 1486–1488 ms with 16 MiB; ViT-GPT2's
 * batched step of 7 rows 38.5–39.2 ms with 2 MiB, 41.8–42.4 with 16. */
#define WIDEN_CHUNK_BYTES_FEW (2u << 20)
#define WIDEN_CHUNK_BYTES_MANY (16u << 20)
#define WIDEN_MANY_ROWS 128

static void
rows_bf16_matmul (VlmOpsDnnl *d, const VlmLinearW *lin, const float *x, int m, float *y, VlmAct act,
                  const float *residual)
{
  const Packed *pk = packed_of (lin);
  int n = lin->n, k = lin->k;
  size_t bytes = m >= WIDEN_MANY_ROWS ? WIDEN_CHUNK_BYTES_MANY : WIDEN_CHUNK_BYTES_FEW;
  int nc = MIN (n, MAX (64, (int) (bytes / ((size_t) k * sizeof (float))) / 64 * 64));
  float *wf = vlm_scratch_get (&d->w_f32, (size_t) nc * k);
  const VlmKernels *kernels = vlm_kernels ();
  for (int j0 = 0; j0 < n && !d->error; j0 += nc) {
    int c = MIN (nc, n - j0);
    const uint16_t *src = (const uint16_t *) pk->data + (size_t) j0 * k;
#pragma omp parallel for schedule (static)
    for (int j = 0; j < c; j++) kernels->bf16_to_f32 (src + (size_t) j * k, k, wf + (size_t) j * k);
    MatW mw = { c, k, NULL, wf, lin->bias ? lin->bias + j0 : NULL };
    matmul_run (d, &mw, x, FALSE, m, y + j0, n, FALSE, act, residual ? residual + j0 : NULL);
  }
}

/* decode's rows of bf16 input for the blocked GEMV, padded to kpad with zeros */
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

/* The most rows the engine's GEMV takes for a weight packed as `pk`;
 * oneDNN's matmul above. Every blocked kernel takes VLM_GEMV_MAX_ROWS: for
 * so few rows oneDNN's matmul streams the weight from DRAM slower than the
 * engine's kernels (Sapphire Rapids VM, 3-4 rows of 768 × 3072 and
 * 3072 × 768, alternated: f32 weights 29.9–31.6 GB/s on the engine's f32
 * kernel vs 24.8–26.2 through oneDNN's brgemm; bf16 26.4–28.6 on AMX tiles
 * vs 22.4–23.7 through oneDNN's AMX matmul; Zen 5, `avx512-bf16`:
 * ViT-GPT2's batched step of 3.7 captions 12.5–12.9 ms with the vdpbf16ps
 * kernel vs 14.3–15.1 through brgemm). The one exception: bf16 on AMX
 * where the OS grants no tile state, whose 3-4 rows the vdpbf16ps kernel
 * runs no faster than oneDNN's AMX matmul (one vdpbf16ps per 64 bytes of
 * weight and row: 0.16 vs 0.10 ms for 4 rows of 3072 × 768 in cache).
 * With tiles bf16 takes up to VLM_GEMV_TILE_ROWS (a tile's rows): 5-16
 * rows of 768 × 3072 and 3072 × 768 from DRAM 24.6–30.9 GB/s on tiles vs
 * 21.1–24.9 through oneDNN's AMX matmul (8 streams' steps, beam search). */
static int
gemv_max_rows (const Packed *pk)
{
  if (pk->layout != PACK_DNNL || pk->md.data_type != dnnl_bf16)
    return VLM_GEMV_MAX_ROWS;
  return vlm_cpu_tier () >= VLM_CPU_AMX && !vlm_cpu_amx_tiles () ? 2 : vlm_gemv_bf16_max_rows ();
}

/* Whether `lin` on m rows goes to the engine's GEMV: the blocked bf16
 * kernel, s8 rows, or HF's rows (f32 or bf16) on tiers without bf16
 * instructions. */
static gboolean
gemv_of (const VlmLinearW *lin, int m)
{
  const Packed *pk = packed_of (lin);
  return pk && m <= gemv_max_rows (pk) && (pk->gemv_kpad || pk->layout != PACK_DNNL);
}

static VlmGemvOut
gemv_out (const VlmLinearW *lin, VlmAct act, const float *residual, float *y)
{
  const Packed *pk = packed_of (lin);
  gboolean f32 = pk->layout == PACK_ROWS_F32, s8 = pk->layout == PACK_ROWS_S8;
  return (VlmGemvOut) { f32 ? (const void *) lin->weight : pk->data, s8 ? pk->ldw : lin->k,
                        pk->layout == PACK_ROWS_BF16, lin->n, lin->bias, act, residual, y,
                        s8 ? pk->scales : NULL, s8 ? pk->sums : NULL };
}

/* n <= VLM_GEMV_MAX_OUTS linears of one input through one vlm_gemv */
static void
gemv_run (VlmOpsDnnl *d, const VlmLinearW *const *lins, const VlmAct *acts, const float *residual, int n,
          const float *x, int m, float *const *ys)
{
  VlmGemvOut outs[VLM_GEMV_MAX_OUTS];
  for (int i = 0; i < n; i++) outs[i] = gemv_out (lins[i], acts[i], residual, ys[i]);
  const Packed *p0 = packed_of (lins[0]);
  int kpad = p0->gemv_kpad, k = lins[0]->k;
  gboolean bf16 = kpad && p0->md.data_type == dnnl_bf16;
  VlmGemvIn in = { m, k, kpad, bf16 ? gemv_input (d, x, m, k, kpad) : NULL, x };
  if (p0->layout == PACK_ROWS_S8) {
    /* the input quantised once for every output, each row on its own */
    in.kpad = p0->ldw;
    in.xq = to_u8_rows (d, x, m, k, in.kpad, d->row_scales, d->row_zeros);
    in.xq_scales = d->row_scales;
    in.xq_zeros = d->row_zeros;
  }
  vlm_gemv (outs, n, &in);
}

/* Whether `lin` on m rows runs as a bf16 oneDNN matmul (not decode's GEMV):
 * then its input may be given, and its output taken, in bf16. */
static gboolean
bf16_matmul (const VlmLinearW *lin, int m)
{
  const Packed *p = packed_of (lin);
  return p && p->layout == PACK_DNNL && p->md.data_type == dnnl_bf16 && m > (p->gemv_kpad ? gemv_max_rows (p) : VLM_GEMV_MAX_ROWS);
}

void
vlm_dnnl_linear (VlmOpsDnnl *d, const VlmLinearW *lin, const float *x, int m, float *y,
                 VlmAct act, const float *residual)
{
  const Packed *pk = packed_of (lin);
  if (d->error)
    return;
  if (gemv_of (lin, m))
    gemv_run (d, &lin, &act, residual, 1, x, m, &y);
  else if (pk && pk->layout == PACK_ROWS_BF16)
    rows_bf16_matmul (d, lin, x, m, y, act, residual);
  else
    linear_run (d, lin, x, FALSE, m, y, FALSE, act, residual);
}

void
vlm_dnnl_linear_multi (VlmOpsDnnl *d, const VlmLinearW *const *lins, const VlmAct *acts, int n,
                       const float *x, int m, float *const *ys)
{
  gboolean one_pass = n <= VLM_GEMV_MAX_OUTS && gemv_of (lins[0], m);
  for (int i = 1; i < n && one_pass; i++) {
    const Packed *p = packed_of (lins[i]), *p0 = packed_of (lins[0]);
    one_pass = gemv_of (lins[i], m) && p->gemv_kpad == p0->gemv_kpad && p->md.data_type == p0->md.data_type &&
               (p->layout == PACK_ROWS_S8) == (p0->layout == PACK_ROWS_S8);
  }
  if (one_pass) {
    gemv_run (d, lins, acts, NULL, n, x, m, ys);
    return;
  }
  /* bf16 matmuls (the tower, prefill): the input is converted once */
  gboolean bf16 = TRUE;
  for (int i = 0; i < n; i++)
    bf16 = bf16 && bf16_matmul (lins[i], m);
  const void *xb = bf16 && !d->error ? to_bf16 (d, x, m, lins[0]->k) : NULL;
  for (int i = 0; i < n; i++)
    if (bf16)
      linear_run (d, lins[i], xb, TRUE, m, ys[i], FALSE, acts[i], NULL);
    else
      vlm_dnnl_linear (d, lins[i], x, m, ys[i], acts[i], NULL);
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

/* ------------------------------------------------------------ convolution */

/* x [h, w, in] → y [ho, wo, out] (nhwc, batch 1), weights in the layout
 * oneDNN picks ("any"), then the residual as a binary add. */
static dnnl_primitive_desc_t
conv_pd (VlmOpsDnnl *d, const VlmConvW *c, int h, int w, gboolean residual)
{
  int64_t I = c->in_channels, O = c->out_channels, K = c->kernel, G = c->groups;
  int64_t ho = vlm_conv_out_size (c, h), wo = vlm_conv_out_size (c, w), p = c->padding;
  dnnl_memory_desc_t src, wei, bia, dst;
  DNNL_ASSERT (dnnl_memory_desc_init_by_tag (&src, 4, (dnnl_dims_t) { 1, I, h, w }, dnnl_f32, dnnl_nhwc));
  DNNL_ASSERT (dnnl_memory_desc_init_by_tag (&dst, 4, (dnnl_dims_t) { 1, O, ho, wo }, dnnl_f32, dnnl_nhwc));
  if (G == 1)
    DNNL_ASSERT (dnnl_memory_desc_init_by_tag (&wei, 4, (dnnl_dims_t) { O, I, K, K }, dnnl_f32, dnnl_format_tag_any));
  else
    DNNL_ASSERT (dnnl_memory_desc_init_by_tag (&wei, 5, (dnnl_dims_t) { G, O / G, I / G, K, K }, dnnl_f32,
                                               dnnl_format_tag_any));
  DNNL_ASSERT (dnnl_memory_desc_init_by_tag (&bia, 1, (dnnl_dims_t) { O }, dnnl_f32, dnnl_a));
  dnnl_post_ops_t po = NULL;
  if (residual) {
    DNNL_ASSERT (dnnl_post_ops_create (&po));
    DNNL_ASSERT (dnnl_post_ops_append_binary (po, dnnl_binary_add, &dst));
  }
  dnnl_convolution_desc_t desc;
  DNNL_ASSERT (dnnl_convolution_forward_desc_init (&desc, dnnl_forward_inference, dnnl_convolution_direct, &src, &wei,
                                                   c->bias ? &bia : NULL, &dst, (dnnl_dims_t) { c->stride, c->stride },
                                                   (dnnl_dims_t) { p, p }, (dnnl_dims_t) { p, p }));
  return pd_create (d, &desc, po, NULL);
}

/* The primitive keeps HF's weights reordered into the layout it chose
 * (made the first time this weight is seen at this size). */
void
vlm_dnnl_conv2d (VlmOpsDnnl *d, const VlmConvW *c, const float *x, int h, int w, float *y, const float *residual)
{
  PrimKey key = { PRIM_CONV, { (int64_t) (uintptr_t) c->weight, h, w, c->in_channels, c->out_channels, c->kernel,
                               c->stride, c->padding, c->groups, residual != NULL } };
  int ids[PRIM_MAX_ARGS] = { DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST };
  int n = 3;
  if (c->bias)
    ids[n++] = DNNL_ARG_BIAS;
  if (residual)
    ids[n++] = DNNL_ARG_ATTR_MULTIPLE_POST_OP (0) | DNNL_ARG_SRC_1;
  Prim *p = d->error ? NULL : prim_lookup (d, &key);
  if (!p && !d->error) {
    dnnl_primitive_desc_t pd = conv_pd (d, c, h, w, residual != NULL);
    const dnnl_memory_desc_t *wmd = pd ? dnnl_primitive_desc_query_md (pd, dnnl_query_weights_md, 0) : NULL;
    void *packed = NULL;
    if (wmd && posix_memalign (&packed, 64, MAX (dnnl_memory_desc_get_size (wmd), 64)) != 0) {
      packed = NULL;
      failed (&d->error, dnnl_out_of_memory, "allocating a convolution's weights");
    }
    int64_t K = c->kernel, G = c->groups, O = c->out_channels, I = c->in_channels;
    dnnl_memory_desc_t hf;   /* [O, I/G, K, K] as stored, viewed with oneDNN's grouped dims */
    if (G == 1)
      DNNL_ASSERT (dnnl_memory_desc_init_by_tag (&hf, 4, (dnnl_dims_t) { O, I, K, K }, dnnl_f32, dnnl_oihw));
    else
      DNNL_ASSERT (dnnl_memory_desc_init_by_tag (&hf, 5, (dnnl_dims_t) { G, O / G, I / G, K, K }, dnnl_f32,
                                                 dnnl_goihw));
    if (packed && !reorder (&hf, c->weight, wmd, packed, &d->error)) {
      free (packed);
      packed = NULL;
    }
    if (!packed && pd) {
      dnnl_primitive_desc_destroy (pd);
      pd = NULL;
    }
    if ((p = prim_new (d, &key, pd, ids, n)))
      p->owned = packed;
    else
      free (packed);
  }
  void *h_args[PRIM_MAX_ARGS] = { (void *) x, p ? p->owned : NULL, y };
  n = 3;
  if (c->bias)
    h_args[n++] = (void *) c->bias;
  if (residual)
    h_args[n++] = (void *) residual;
  prim_run (d, p, h_args);
}

/* ------------------------------------------------------------ norms, act, softmax */

void
vlm_dnnl_layer_norm (VlmOpsDnnl *d, const float *x, int m, int n, const float *gamma,
                     const float *beta, float eps, float *y)
{
  PrimKey key = { PRIM_LAYER_NORM, { m, n, fbits (eps), beta != NULL } };
  int ids[] = { DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_SCALE, DNNL_ARG_SHIFT };
  void *h[] = { (void *) x, y, (void *) gamma, (void *) beta };
  Prim *p = prim_lookup (d, &key);
  if (!p) {
    dnnl_memory_desc_t md = md_strided (2, (dnnl_dims_t) { m, n }, (dnnl_dims_t) { n, 1 });
    dnnl_layer_normalization_desc_t desc;
    unsigned flags = dnnl_use_scale | (beta ? dnnl_use_shift : 0);
    DNNL_ASSERT (dnnl_layer_normalization_forward_desc_init (&desc, dnnl_forward_inference, &md,
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
  Prim *p = prim_lookup (d, &key);
  if (!p) {
    dnnl_memory_desc_t md = md_strided (1, (dnnl_dims_t) { (int64_t) n }, (dnnl_dims_t) { 1 });
    dnnl_eltwise_desc_t desc;
    dnnl_alg_kind_t alg;
    float alpha;
    act_alg (act, &alg, &alpha);
    DNNL_ASSERT (dnnl_eltwise_forward_desc_init (&desc, dnnl_forward_inference, alg, &md, alpha,
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
  Prim *p = prim_lookup (d, &key);
  if (!p) {
    dnnl_memory_desc_t md = md_strided (2, (dnnl_dims_t) { m, n }, (dnnl_dims_t) { n, 1 });
    dnnl_memory_desc_t out = md_typed (2, (dnnl_dims_t) { m, n }, (dnnl_dims_t) { n, 1 },
                                       y_bf16 ? dnnl_bf16 : dnnl_f32);
    dnnl_softmax_v2_desc_t desc;
    DNNL_ASSERT (dnnl_softmax_v2_forward_desc_init (&desc, dnnl_forward_inference,
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
  Prim *p = prim_lookup (d, &key);
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
    DNNL_ASSERT (dnnl_post_ops_create (&po));
    DNNL_ASSERT (dnnl_post_ops_append_eltwise (po, 1.0f, dnnl_eltwise_linear, s->scale, 0.0f));
    dnnl_matmul_desc_t desc;
    DNNL_ASSERT (dnnl_matmul_desc_init (&desc, &src, &wei, NULL, &dst));
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
  Prim *p = prim_lookup (d, &key);
  if (!p) {
    dnnl_data_type_t dt = s->bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t src = md_typed (4, (dnnl_dims_t) { kvh, g, lq, lk },
                                       (dnnl_dims_t) { g * lq * lk, lq * lk, lk, 1 }, dt);
    dnnl_memory_desc_t wei = md_typed (4, (dnnl_dims_t) { kvh, 1, lk, hd },
                                       (dnnl_dims_t) { hd, hd, s->ldv, 1 }, dt);
    dnnl_memory_desc_t dst = md_strided (4, (dnnl_dims_t) { kvh, g, lq, hd },
                                         (dnnl_dims_t) { g * hd, hd, s->ldo, 1 });
    dnnl_matmul_desc_t desc;
    DNNL_ASSERT (dnnl_matmul_desc_init (&desc, &src, &wei, NULL, &dst));
    p = prim_new (d, &key, pd_create (d, &desc, NULL, NULL), ids, 3);
  }
  prim_run (d, p, h);
}
