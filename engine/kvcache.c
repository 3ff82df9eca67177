/* kvcache.c — see kvcache.h. */
#include "kvcache.h"

static size_t
staging_elems (int n_beams, int max_rows, int width)
{
  return (size_t) n_beams * MAX (max_rows, width);
}

static size_t
elem_size (const VlmKvCache *c)
{
  return c->bf16 ? sizeof (uint16_t) : sizeof (float);
}

size_t
vlm_kv_cache_bytes (int n_layers, int n_beams, int max_rows, int n_kv_heads, int head_dim, gboolean bf16)
{
  size_t width = (size_t) n_kv_heads * head_dim, cache = (size_t) n_layers * n_beams * max_rows * width;
  return (2 * cache + staging_elems (n_beams, max_rows, width)) * (bf16 ? 2 : 4) + 3 * 64;
}

void
vlm_kv_cache_init (VlmKvCache *c, VlmArena *arena, int n_layers, int n_beams, int max_rows,
                   int n_kv_heads, int head_dim, gboolean bf16)
{
  *c = (VlmKvCache) { n_layers, n_beams, max_rows, n_kv_heads, head_dim, n_kv_heads * head_dim, bf16 };
  size_t cache = (size_t) n_layers * n_beams * max_rows * c->width, es = elem_size (c);
  c->k = vlm_arena_alloc (arena, cache * es);
  c->v = vlm_arena_alloc (arena, cache * es);
  c->staging = vlm_arena_alloc (arena, staging_elems (n_beams, max_rows, c->width) * es);
}

/* The [width][max_rows] keys and [max_rows][width] values of one layer and
 * beam; element i of them at byte i · elem_size. */
static char *
keys (const VlmKvCache *c, int layer, int beam)
{
  return (char *) c->k + ((size_t) layer * c->n_beams + beam) * c->max_rows * c->width * elem_size (c);
}

static char *
values (const VlmKvCache *c, int layer, int beam)
{
  return (char *) c->v + ((size_t) layer * c->n_beams + beam) * c->max_rows * c->width * elem_size (c);
}

void
vlm_kv_cache_store (VlmKvCache *c, int layer, int beam, int row0, int rows, const float *k, int ldk,
                    const float *v, int ldv)
{
  g_assert (layer < c->n_layers && beam < c->n_beams && row0 + rows <= c->max_rows);
  if (c->bf16) {
    uint16_t *kt = (uint16_t *) keys (c, layer, beam) + row0;
    uint16_t *vr = (uint16_t *) values (c, layer, beam) + (size_t) row0 * c->width;
    for (int d = 0; d < c->width; d++)
      for (int t = 0; t < rows; t++) kt[(size_t) d * c->max_rows + t] = vlm_f32_to_bf16 (k[(size_t) t * ldk + d]);
    for (int t = 0; t < rows; t++)
      for (int d = 0; d < c->width; d++) vr[(size_t) t * c->width + d] = vlm_f32_to_bf16 (v[(size_t) t * ldv + d]);
    return;
  }
  float *kt = (float *) keys (c, layer, beam) + row0, *vr = (float *) values (c, layer, beam) + (size_t) row0 * c->width;
  for (int d = 0; d < c->width; d++)
    for (int t = 0; t < rows; t++) kt[(size_t) d * c->max_rows + t] = k[(size_t) t * ldk + d];
  for (int t = 0; t < rows; t++)
    memcpy (vr + (size_t) t * c->width, v + (size_t) t * ldv, c->width * sizeof (float));
}

void
vlm_kv_cache_attend (const VlmKvCache *c, VlmOps *ops, int layer, int beam, const float *q, int ldq,
                     int lq, int lk, int n_heads, float scale, const VlmMask *mask, float *out, int ldo)
{
  g_assert (lk <= c->max_rows);
  if (c->bf16)
    vlm_attention_kt_bf16 (ops, q, ldq, (const uint16_t *) keys (c, layer, beam), c->max_rows,
                           (const uint16_t *) values (c, layer, beam), c->width, lq, lk, n_heads, c->n_kv_heads,
                           c->head_dim, scale, mask, out, ldo);
  else
    vlm_attention_kt (ops, q, ldq, (const float *) keys (c, layer, beam), c->max_rows,
                      (const float *) values (c, layer, beam), c->width, lq, lk, n_heads, c->n_kv_heads,
                      c->head_dim, scale, mask, out, ldo);
}

void
vlm_kv_cache_reorder (VlmKvCache *c, const int *src, int n_beams, int len)
{
  g_assert (n_beams <= c->n_beams && len <= c->max_rows);
  gboolean identity = TRUE, one_source = TRUE;
  for (int b = 0; b < n_beams; b++) {
    identity = identity && src[b] == b;
    one_source = one_source && src[b] == src[0];
  }
  int row0 = c->shared, n = len - row0;
  size_t es = elem_size (c), stride = MAX (c->max_rows, c->width) * es;
  char *staging = c->staging;
  for (int li = 0; li < c->n_layers && !identity && n > 0; li++) {
    /* keys: a segment of each of the width rows; values: a row at a time */
    for (int d = 0; d < c->width; d++) {
      for (int b = 0; b < n_beams; b++)
        memcpy (staging + b * stride, keys (c, li, src[b]) + ((size_t) d * c->max_rows + row0) * es, n * es);
      for (int b = 0; b < n_beams; b++)
        memcpy (keys (c, li, b) + ((size_t) d * c->max_rows + row0) * es, staging + b * stride, n * es);
    }
    for (int t = row0; t < len; t++) {
      for (int b = 0; b < n_beams; b++)
        memcpy (staging + b * stride, values (c, li, src[b]) + (size_t) t * c->width * es, c->width * es);
      for (int b = 0; b < n_beams; b++)
        memcpy (values (c, li, b) + (size_t) t * c->width * es, staging + b * stride, c->width * es);
    }
  }
  if (one_source)
    c->shared = MAX (c->shared, len);
}
