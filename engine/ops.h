/* ops.h — the compute kernels every model composes. They know nothing of
 * models: only shapes, pointers and activations.
 *
 * Two backends behind one API: oneDNN (default; primitives created once per
 * shape and kept in a cache, user-mode scratchpad so a VlmOps can be used
 * from any thread, one thread at a time) and OpenBLAS + plain loops (the
 * reference path that tests cross-check against).
 *
 * All activations are f32, dense, row-major. Weights are prepared once at
 * load (VlmLinearW) and shared read-only between sessions.
 * Nothing here allocates in the steady state: caches and scratch grow only
 * the first time a shape is seen.
 *
 * The layer below, by file: ops_types.h (VlmLinearW, VlmMask), ops_act.c
 * (activations), ops_scratch.c, ops_attention.c (the attention pipeline and
 * decode's kernel dispatch), the backends ops_blas.c and ops_dnnl.c,
 * ops_gemv.c (decode's linears), ops_kernels.c (the engine's own kernels,
 * one table per CPU tier, picked by ops_tier.c). None calls back up here. */
#ifndef VLM_OPS_H
#define VLM_OPS_H

#include "ops_types.h"

/* ------------------------------------------------------------ weights */

/* From tensors (any of f32/bf16/f16; bias may be NULL). Shapes are checked:
 * error BAD_SHAPE naming `name` otherwise. */
gboolean vlm_linear_init (VlmLinearW *lin, const char *name, const VlmTensor *weight,
                          const VlmTensor *bias, GError **error);
void vlm_linear_clear (VlmLinearW *lin);

/* The dtype a precision keeps the big matmuls' weights in on `backend`:
 * F32, BF16 or I8, the same on every CPU tier. AUTO is BF16 where the tier
 * has native bf16 instructions (avx512_bf16 or AMX), F32 elsewhere and on
 * the BLAS backend, which computes in f32 only. BF16 on a tier without
 * them keeps bf16 weights (half the memory, half decode's bytes) and
 * multiplies in f32. INT8 is I8 on oneDNN: weights quantised per output
 * channel at load (symmetric s8), inputs per call (u8 with a zero point;
 * decode's few rows each on its own), accumulated in s32 and scaled back to f32. */
VlmDType vlm_precision_dtype (VlmBackend backend, VlmPrecision precision);

/* Prepares `lin` (after vlm_linear_init from `weight`) for the oneDNN
 * backend on this CPU tier, in `dtype` (F32, BF16 or I8; a BF16 checkpoint
 * is read as stored, without an f32 step): reordered once into the blocked
 * layout oneDNN's matmul reads fastest for about `rows` rows of input, or,
 * on tiers where the engine's own GEMV and oneDNN's gemm read HF's rows as
 * they are (f32 on AVX2, bf16 without bf16 instructions), kept as rows;
 * I8 on every tier as quantised rows, which both read too.
 * The f32 copy made by vlm_linear_init is freed unless it is still read; a
 * zero-copy `weight` stays. A packed linear runs on the oneDNN backend
 * only. FALSE, with an error naming what oneDNN lacks, if it cannot. */
gboolean vlm_linear_pack (VlmLinearW *lin, const VlmTensor *weight, VlmDType dtype, int rows,
                          GError **error);

/* The most rows of input a linear of weights in `dtype` takes with each
 * row's result independent of the other rows' values, 0 for any number:
 * int8 quantises each row of decode's GEMV on its own, up to
 * VLM_GEMV_MAX_ROWS, but a matmul's input with one scale for the call. The
 * batcher keeps int8 batches within it, so a stream's answer never
 * depends on what it is batched with. */
int vlm_ops_independent_rows (VlmDType dtype);

/* Which kernels linears and attention of weights in `dtype` run on
 * `backend` on this tier, for logs ("decode: the engine's avx2 GEMV over
 * bf16 rows; ..."). g_free. */
char *vlm_ops_describe (VlmBackend backend, VlmDType dtype);

/* ------------------------------------------------------------ context */

typedef struct VlmOps VlmOps;

VlmOps *vlm_ops_new (VlmBackend backend, int n_threads, GError **error);
void vlm_ops_free (VlmOps *ops);
VlmBackend vlm_ops_backend (const VlmOps *ops);
/* The dtype full-length attention (more than 8 query rows: the tower,
 * prefill) multiplies in on oneDNN: BF16 converts q, k, v and the softmax
 * probabilities to bf16 (scores and outputs stay f32); anything else, and
 * the BLAS backend, f32 (the default). Sessions set their model's matmul
 * dtype (vlm_precision_dtype); BF16 is f32 on tiers without bf16
 * instructions. Decode-sized attention is f32 throughout. */
void vlm_ops_set_attention_dtype (VlmOps *ops, VlmDType dtype);
/* Whether KV caches of this ops' model are bf16 (its weights are: as
 * transformers keeps them for a bf16 model; set by the above). */
gboolean vlm_ops_kv_bf16 (const VlmOps *ops);
/* A oneDNN failure (an op this CPU tier lacks, memory exhausted) is kept
 * in the context, and every op after it does nothing: FALSE with that
 * error (once), TRUE if every op since the last call ran. Sessions check
 * after each stage; the ops' outputs are undefined after a failure. */
gboolean vlm_ops_take_error (VlmOps *ops, GError **error);
/* Applies the thread count to the calling thread (OpenMP ICVs are per
 * thread) and to OpenBLAS. Call at the start of each batch of work. */
void vlm_ops_bind_thread (VlmOps *ops);
/* Primitives the oneDNN cache holds (0 for BLAS): tests use it to check that
 * a repeated shape creates nothing. */
int vlm_ops_n_primitives (const VlmOps *ops);

/* ------------------------------------------------------------ kernels */

/* y[m, n] = act(x[m, k] · Wᵀ + b) + residual[m, n]
 * residual may be NULL or alias y (in-place residual add); x must not alias y. */
void vlm_linear (VlmOps *ops, const VlmLinearW *lin, const float *x, int m, float *y,
                 VlmAct act, const float *residual);

/* ys[i][m, lins[i]->n] = acts[i](x · W_iᵀ + b_i) for n linears that read the
 * same input (query/key/value, gate/up): decode's bf16 rows on oneDNN go
 * through all their weights in one parallel pass (fewer, fuller thread
 * teams than one call each); otherwise one vlm_linear each. acts may be
 * NULL (none). The ys must not alias x or each other. */
void vlm_linear_multi (VlmOps *ops, const VlmLinearW *const *lins, const VlmAct *acts, int n,
                       const float *x, int m, float *const *ys);

/* y = fc2(act(fc1(x))) + residual: a transformer's MLP, or a two-layer
 * projector (residual NULL). The hidden activation [m, fc1->n] lives in
 * `ops`; with bf16 weights on oneDNN it stays bf16 between the two matmuls
 * (the first writes it, the second reads it, no f32 copy or conversion).
 * y may alias x or residual. */
void vlm_mlp (VlmOps *ops, const VlmLinearW *fc1, VlmAct act, const VlmLinearW *fc2, const float *x,
              int m, float *y, const float *residual);

/* y[m, n] = (x - mean) / sqrt(var + eps) * gamma + beta, per row. y may alias x.
 * beta may be NULL. */
void vlm_layer_norm (VlmOps *ops, const float *x, int m, int n, const float *gamma,
                     const float *beta, float eps, float *y);

/* y = x * rsqrt(mean(x²) + eps) * weight, per row (Llama). y may alias x. */
void vlm_rms_norm (VlmOps *ops, const float *x, int m, int n, const float *weight, float eps,
                   float *y);

/* In-place activation over n values. */
void vlm_act (VlmOps *ops, VlmAct act, float *x, size_t n);

/* In-place softmax over each of m rows of n values. */
void vlm_softmax (VlmOps *ops, float *x, int m, int n);

/* Scaled dot-product attention, all heads.
 * q [lq rows, stride ldq] holding n_heads × head_dim; k, v [lk rows, stride
 * ldk/ldv] holding n_kv_heads × head_dim (grouped-query: head h reads kv head
 * h / (n_heads / n_kv_heads)); out [lq rows, stride ldo] n_heads × head_dim.
 * out = softmax(q kᵀ · scale + mask) v. */
void vlm_attention (VlmOps *ops, const float *q, int ldq, const float *k, int ldk,
                    const float *v, int ldv, int lq, int lk, int n_heads, int n_kv_heads,
                    int head_dim, float scale, const VlmMask *mask, float *out, int ldo);

/* The same with the keys stored transposed, as VlmKvCache keeps them: dim d
 * of key j of kv head g at kt[(g · head_dim + d) · ldkt + j], ldkt ≥ lk.
 * Decode-sized queries (lq ≤ 8) with head_dim % 16 == 0 then run a kernel
 * that reads each kv head's keys and values once for all the query heads
 * that share them (grouped-query attention's group). */
void vlm_attention_kt (VlmOps *ops, const float *q, int ldq, const float *kt, int ldkt,
                       const float *v, int ldv, int lq, int lk, int n_heads, int n_kv_heads,
                       int head_dim, float scale, const VlmMask *mask, float *out, int ldo);
/* The same over bf16 keys and values (a bf16 VlmKvCache's), widened to f32
 * exactly as they are read: the result is vlm_attention_kt's over those
 * values in f32. */
void vlm_attention_kt_bf16 (VlmOps *ops, const float *q, int ldq, const uint16_t *kt, int ldkt,
                            const uint16_t *v, int ldv, int lq, int lk, int n_heads, int n_kv_heads,
                            int head_dim, float scale, const VlmMask *mask, float *out, int ldo);

/* ------------------------------------------------------------ convolution */

/* y = conv(x) + b (+ residual) channels-last: x [h, w, in_channels],
 * y [ho, wo, out_channels] (ops_types.h's vlm_conv_out_size), residual
 * NULL or of y's shape (it may be x for a shape-keeping conv); y aliases
 * neither x nor residual. oneDNN: a convolution primitive, cached by
 * weight and shape, holding the weights reordered into its own layout (a
 * copy per context: 25 MB of f32 for Florence-2-base's DaViT); BLAS: sgemm
 * over one output row's patches at a time (dense), plain loops
 * (depthwise). f32 in every precision. */
void vlm_conv2d (VlmOps *ops, const VlmConvW *conv, const float *x, int h, int w, float *y,
                 const float *residual);

/* dst [cols, rows] = srcᵀ of src [rows, cols] (dense), in 32 × 32 tiles
 * over the cores: both backends. */
void vlm_transpose (VlmOps *ops, const float *src, int rows, int cols, float *dst);

/* ------------------------------------------------------------ rotary embedding */

/* RoPE as HF Llama's apply_rotary_pos_emb ("rotate half": dims j and
 * j + head_dim/2 form a pair), in place on `rows` rows of n_heads × head_dim
 * values (row stride ld). cos/sin [rows, head_dim/2]: row i's angles, i.e.
 * the tables' rows for that row's position. */
void vlm_rope (VlmOps *ops, float *x, int ld, int rows, int n_heads, int head_dim,
               const float *cos, const float *sin);

#endif
