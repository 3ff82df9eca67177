/* kvcache.h — the keys and values a decoder keeps for each layer and beam,
 * shared by every decoder (Llama/Qwen2, GIT). Keys are stored transposed,
 * as vlm_attention_kt reads them: a decode step's query group then streams
 * each key once, vectorised over keys. Carved from the run's arena, so
 * nothing is allocated after the session is made.
 *
 * Beams: a prefill fills beam 0 only; the generation loop's first reorder
 * (every beam from beam 0) broadcasts it, after which rows before `shared`
 * are the same in every beam and later reorders move generated rows only.
 *
 * A model whose weights are bf16 keeps its keys and values in bf16, as
 * transformers does for a bf16 model (the projections' f32 outputs rounded
 * to nearest even): half the cache's memory and of what each decode step
 * reads from it. */
#ifndef VLM_KVCACHE_H
#define VLM_KVCACHE_H

#include "ops.h"
#include "tensor.h"

typedef struct {
  int n_layers, n_beams, max_rows;
  int n_kv_heads, head_dim, width;   /* width = n_kv_heads · head_dim */
  gboolean bf16;   /* elements are bf16 (uint16_t), else f32 */
  void *k;         /* [layer][beam][width][max_rows]: dim c of row j at c · max_rows + j */
  void *v;         /* [layer][beam][max_rows][width] */
  void *staging;   /* [n_beams][MAX (max_rows, width)] for reorders */
  int shared;      /* rows [0, shared) are equal in every beam */
} VlmKvCache;

/* Bytes vlm_kv_cache_init takes from an arena (alignment included). */
size_t vlm_kv_cache_bytes (int n_layers, int n_beams, int max_rows, int n_kv_heads, int head_dim, gboolean bf16);
void vlm_kv_cache_init (VlmKvCache *c, VlmArena *arena, int n_layers, int n_beams, int max_rows,
                        int n_kv_heads, int head_dim, gboolean bf16);

/* Only beam 0 holds valid rows (before a prefill). */
static inline void vlm_kv_cache_reset (VlmKvCache *c) { c->shared = 0; }

/* Rows [row0, row0 + rows) of `beam` in `layer` from k, v [rows, width]
 * (row strides ldk, ldv). */
void vlm_kv_cache_store (VlmKvCache *c, int layer, int beam, int row0, int rows, const float *k,
                         int ldk, const float *v, int ldv);

/* vlm_attention of q [lq rows, stride ldq; n_heads × head_dim] over rows
 * [0, lk) of `beam` in `layer`, into out [lq rows, stride ldo]. */
void vlm_kv_cache_attend (const VlmKvCache *c, VlmOps *ops, int layer, int beam, const float *q,
                          int ldq, int lq, int lk, int n_heads, float scale, const VlmMask *mask,
                          float *out, int ldo);

/* Beam b's rows [shared, len) become old beam src[b]'s, in every layer; if
 * every beam comes from one, rows [0, len) are shared from then on. */
void vlm_kv_cache_reorder (VlmKvCache *c, const int *src, int n_beams, int len);

#endif
