/* ops_attention.c — attention for both backends (ops_attention.h). */
#include "ops_attention.h"

#include "cpu.h"
#include "ops_blas.h"
#include "ops_kernels.h"
#include "ops_scratch.h"

#include <math.h>

struct VlmAttention {
  VlmScratch scores;    /* [n_heads, rows, lk] of a block of query rows */
  gboolean bf16;        /* oneDNN full-length attention in bf16 */
  VlmScratch attn_in;   /* its bf16 q block, k, v and probabilities (halves of floats) */
  VlmScratch kv_f32;    /* bf16 keys and values widened, where the decode kernel does not take them */
};

VlmAttention *
vlm_attention_new (void)
{
  return g_new0 (VlmAttention, 1);
}

void
vlm_attention_free (VlmAttention *a)
{
  if (!a)
    return;
  vlm_scratch_clear (&a->scores);
  vlm_scratch_clear (&a->attn_in);
  vlm_scratch_clear (&a->kv_f32);
  g_free (a);
}

void
vlm_attention_set_bf16 (VlmAttention *a, gboolean bf16)
{
  a->bf16 = bf16;
}

/* Sets the scores of keys a query must not see to -inf (see VlmMask): for
 * query row i, keys from max(prefix, q_pos0 + i + 1) on. softmax turns
 * them into exact zeros, as HF's finfo.min additive mask does. */
static void
apply_mask (float *scores, int n_heads, int lq, int lk, const VlmMask *mask)
{
  if (!mask || !mask->causal)
    return;
  for (int h = 0; h < n_heads; h++)
    for (int i = 0; i < lq; i++) {
      float *row = scores + ((size_t) h * lq + i) * lk;
      for (int j = MAX (mask->prefix, mask->q_pos0 + i + 1); j < lk; j++) row[j] = -INFINITY;
    }
}

#define ATTN_BLOCK_BYTES (4u << 20)

/* Query row r of kv head g is (i = r / group, head g · group + r % group).
 * Work items are (kv head, block of rows), the blocks sized so that there
 * are items for every thread where the rows allow it; each item does its
 * rows from scores to context, so there is no barrier between stages. */
static void
decode_attention_kt (int n_threads, const VlmAttnShape *s, const float *q, const void *kt, const void *v,
                     const VlmMask *mask, float *scores, int lds, float *out)
{
  size_t es = s->kv_bf16 ? 2 : 4;
  int group = s->n_heads / s->n_kv_heads, hd = s->head_dim, nq = group * s->lq;
  n_threads = vlm_cpu_threads_now (n_threads);   /* the cores others leave */
  int per_head = (n_threads + s->n_kv_heads - 1) / s->n_kv_heads;
  int R = CLAMP ((nq + per_head - 1) / per_head, 1, VLM_DECODE_MAX_ROWS);
  int n_blocks = (nq + R - 1) / R;
  const VlmKernels *kernels = vlm_kernels ();
#pragma omp parallel for num_threads (n_threads) schedule (dynamic, 1)
  for (int item = 0; item < s->n_kv_heads * n_blocks; item++) {
    int g = item / n_blocks, r0 = (item % n_blocks) * R, n = MIN (R, nq - r0);
    const float *qr[VLM_DECODE_MAX_ROWS];
    float *sr[VLM_DECODE_MAX_ROWS], *or[VLM_DECODE_MAX_ROWS];
    int lim[VLM_DECODE_MAX_ROWS];
    for (int t = 0; t < n; t++) {
      int i = (r0 + t) / group, h = g * group + (r0 + t) % group;
      qr[t] = q + (size_t) i * s->ldq + (size_t) h * hd;
      sr[t] = scores + ((size_t) h * s->lq + i) * lds;
      or[t] = out + (size_t) i * s->ldo + (size_t) h * hd;
      lim[t] = mask && mask->causal ? MIN (s->lk, MAX (mask->prefix, mask->q_pos0 + i + 1)) : s->lk;
    }
    kernels->attend_rows (qr, n, lim, (const char *) kt + (size_t) g * hd * s->ldk * es, s->ldk,
                          (const char *) v + (size_t) g * hd * es, s->ldv, s->kv_bf16, hd, s->scale, sr, or);
  }
}

/* softmax(q kᵀ · scale + mask) v over all heads, through a scores buffer
 * [n_heads, lq, lk] owned by `a` (grown on the first larger shape). */
/* bf16 keys and values of `s` widened into a's scratch: k [rows][ldk] as
 * given (transposed or not: kt rows are dims), v [lk][ldv]; *f the shape
 * over them */
static void
widen_kv (VlmAttention *a, const VlmAttnShape *s, const void *k, const void *v, VlmAttnShape *f, float **kf,
          float **vf)
{
  int kvw = s->n_kv_heads * s->head_dim, krows = s->k_t ? kvw : s->lk, kcols = s->k_t ? s->lk : kvw;
  float *buf = vlm_scratch_get (&a->kv_f32, (size_t) krows * kcols + (size_t) s->lk * kvw);
  const VlmKernels *kernels = vlm_kernels ();
  for (int r = 0; r < krows; r++)
    kernels->bf16_to_f32 ((const uint16_t *) k + (size_t) r * s->ldk, kcols, buf + (size_t) r * kcols);
  for (int r = 0; r < s->lk; r++)
    kernels->bf16_to_f32 ((const uint16_t *) v + (size_t) r * s->ldv, kvw, buf + (size_t) krows * kcols + (size_t) r * kvw);
  *f = *s;
  f->kv_bf16 = FALSE;
  f->ldk = kcols;
  f->ldv = kvw;
  *kf = buf;
  *vf = buf + (size_t) krows * kcols;
}

void
vlm_attention_run (VlmAttention *a, VlmOpsDnnl *d, int n_threads, const VlmAttnShape *s, const float *q,
                   const void *kx0, const void *vx0, const VlmMask *mask, float *out)
{
  g_assert (s->n_kv_heads > 0 && s->n_heads % s->n_kv_heads == 0);
  /* bf16 keys and values: the decode kernel reads them as they are; every
   * other path takes them widened (exactly) to f32 */
  if (s->kv_bf16 && !(d && s->lq <= VLM_DECODE_MAX_ROWS && s->k_t && s->head_dim % 16 == 0)) {
    VlmAttnShape f;
    float *kf, *vf;
    widen_kv (a, s, kx0, vx0, &f, &kf, &vf);
    vlm_attention_run (a, d, n_threads, &f, q, kf, vf, mask, out);
    return;
  }
  const float *k = kx0, *v = vx0;
  int lq = s->lq, lk = s->lk, n_heads = s->n_heads;
  /* Decode-sized queries do not go to oneDNN: their key length grows by
   * one each token, so oneDNN would JIT new primitives every step
   * (measured: ~1 s of the first caption), and the work is memory-bound.
   * Transposed keys with head_dim % 16 == 0 take the kernel above; others
   * spread the heads over the cores, one single-threaded sgemm each (under
   * oneDNN, OpenBLAS runs one thread: see vlm_ops_bind_thread). */
  if (d && lq <= VLM_DECODE_MAX_ROWS && s->k_t && s->head_dim % 16 == 0) {
    /* each row of scores in cache lines of its own: the threads write
     * neighbouring rows at once (measured, 12 heads × 197 keys: 2 threads
     * took 1.4× one thread's time with rows sharing lines) */
    int lds = (lk + 15) & ~15;
    decode_attention_kt (n_threads, s, q, kx0, vx0, mask, vlm_scratch_get (&a->scores, (size_t) n_heads * lq * lds),
                         lds, out);
    return;
  }
  /* oneDNN's full-length queries go in blocks of `rows` (below) */
  int rows = lq;
  if (d && lq > VLM_DECODE_MAX_ROWS)
    rows = MIN (lq, MAX (16, (int) (ATTN_BLOCK_BYTES / ((size_t) n_heads * lk * sizeof (float))) / 16 * 16));
  float *scores = vlm_scratch_get (&a->scores, (size_t) n_heads * rows * lk);

  if (d && lq <= VLM_DECODE_MAX_ROWS) {
#pragma omp parallel for num_threads (n_threads) schedule (static)
    for (int h = 0; h < n_heads; h++) {
      float *sh = scores + (size_t) h * lq * lk;
      vlm_blas_attn_scores (s, h, h + 1, q, k, scores);
      apply_mask (sh, 1, lq, lk, mask);
      vlm_blas_softmax (sh, lq, lk);
      vlm_blas_attn_context (s, h, h + 1, scores, v, out);
    }
    return;
  }
  if (!d) {
    vlm_blas_attn_scores (s, 0, n_heads, q, k, scores);
    apply_mask (scores, n_heads, lq, lk, mask);
    vlm_blas_softmax (scores, n_heads * lq, lk);
    vlm_blas_attn_context (s, 0, n_heads, scores, v, out);
    return;
  }
  /* oneDNN: blocks of query rows whose scores (all heads) fit in about
   * ATTN_BLOCK_BYTES, so that scores, mask, softmax and context pass over
   * data in cache; one block of all the scores streamed them through DRAM
   * four times (GIT's 1182 visual rows: 67 MB a layer, the attention at
   * 190 GFLOP/s). In bf16, q, k and v are converted once (k and v for all
   * blocks) and the softmax writes bf16 probabilities: both matmuls then
   * run at 1.4–1.9 times their f32 speed (GIT's and ViT's shapes). */
  VlmAttnShape b = *s;
  const void *kx = k, *vx = v;
  uint16_t *q16 = NULL;
  void *probs = scores;   /* the softmax's output, in place unless bf16 */
  if (a->bf16) {
    int kvw = s->n_kv_heads * s->head_dim, qw = n_heads * s->head_dim;
    /* each part rounded up to 32 halves (64 bytes) */
    size_t nk = ((size_t) lk * kvw + 31) & ~(size_t) 31, nq = ((size_t) rows * qw + 31) & ~(size_t) 31;
    uint16_t *k16 = (uint16_t *) vlm_scratch_get (&a->attn_in, (2 * nk + nq + (size_t) n_heads * rows * lk + 1) / 2);
    uint16_t *v16 = k16 + nk;
    q16 = v16 + nk;
    probs = q16 + nq;
    if (s->k_t)   /* [kv_heads·head_dim rows][lk], dense */
      vlm_dnnl_to_bf16 (d, k, kvw, lk, s->ldk, k16);
    else
      vlm_dnnl_to_bf16 (d, k, lk, kvw, s->ldk, k16);
    vlm_dnnl_to_bf16 (d, v, lk, kvw, s->ldv, v16);
    kx = k16;
    vx = v16;
    b.bf16 = TRUE;
    b.ldk = s->k_t ? lk : kvw;
    b.ldv = kvw;
    b.ldq = qw;
  }
  for (int i0 = 0; i0 < lq; i0 += rows) {
    b.lq = MIN (rows, lq - i0);
    VlmMask bm = mask ? *mask : (VlmMask) { FALSE, 0, 0 };
    bm.q_pos0 += i0;
    const void *qx = q + (size_t) i0 * s->ldq;
    if (b.bf16) {
      vlm_dnnl_to_bf16 (d, qx, b.lq, b.ldq, s->ldq, q16);
      qx = q16;
    }
    vlm_dnnl_attn_scores (d, &b, qx, kx, scores);
    apply_mask (scores, n_heads, b.lq, lk, &bm);
    vlm_dnnl_softmax (d, scores, n_heads * b.lq, lk, probs, b.bf16);
    vlm_dnnl_attn_context (d, &b, probs, vx, out + (size_t) i0 * s->ldo);
  }
}
