/* postnorm.c — BERT/BART's post-norm layer (postnorm.h). */
#include "postnorm.h"

#include <math.h>

const VlmPostNormNames vlm_postnorm_bert = {
  .attn = {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
           "attention.output.LayerNorm"},
  .fc1 = "intermediate.dense",
  .fc2 = "output.dense",
  .out_norm = "output.LayerNorm",
};

static gboolean
load_attn (VlmPostNormAttn *a, const char *const names[5], int D, int Dkv, VlmWeights *w, const char *p, int i,
           GError **error)
{
  int64_t d[] = {D};
  return vlm_weights_linear (w, &a->query, TRUE, D, D, error, "%s.%d.%s", p, i, names[0]) &&
         vlm_weights_linear (w, &a->key, TRUE, D, Dkv, error, "%s.%d.%s", p, i, names[1]) &&
         vlm_weights_linear (w, &a->value, TRUE, D, Dkv, error, "%s.%d.%s", p, i, names[2]) &&
         vlm_weights_linear (w, &a->out, TRUE, D, D, error, "%s.%d.%s", p, i, names[3]) &&
         (a->ln_w = vlm_weights_f32 (w, error, 1, d, "%s.%d.%s.weight", p, i, names[4])) &&
         (a->ln_b = vlm_weights_f32 (w, error, 1, d, "%s.%d.%s.bias", p, i, names[4]));
}

static gboolean
load_layer (VlmPostNormLayer *l, const VlmPostNormConfig *c, const VlmPostNormNames *n, int memory_dim,
            VlmWeights *w, const char *p, int i, GError **error)
{
  int D = c->hidden_size, I = c->intermediate_size;
  int64_t d[] = {D};
  l->has_cross = n->cross[0] != NULL;
  return load_attn (&l->self_attn, n->attn, D, D, w, p, i, error) &&
         (!l->has_cross || load_attn (&l->cross_attn, n->cross, D, memory_dim, w, p, i, error)) &&
         vlm_weights_linear (w, &l->fc1, TRUE, I, D, error, "%s.%d.%s", p, i, n->fc1) &&
         vlm_weights_linear (w, &l->fc2, TRUE, D, I, error, "%s.%d.%s", p, i, n->fc2) &&
         (l->out_ln_w = vlm_weights_f32 (w, error, 1, d, "%s.%d.%s.weight", p, i, n->out_norm)) &&
         (l->out_ln_b = vlm_weights_f32 (w, error, 1, d, "%s.%d.%s.bias", p, i, n->out_norm));
}

VlmPostNormLayer *
vlm_postnorm_layers_load (const VlmPostNormConfig *c, const VlmPostNormNames *names, int memory_dim, VlmWeights *w,
                          const char *prefix, int n_layers, GError **error)
{
  VlmPostNormLayer *layers = g_new0 (VlmPostNormLayer, n_layers);
  for (int i = 0; i < n_layers; i++)
    if (!load_layer (&layers[i], c, names, memory_dim, w, prefix, i, error)) {
      vlm_postnorm_layers_free (layers, n_layers);
      return NULL;
    }
  return layers;
}

static void
attn_clear (VlmPostNormAttn *a)
{
  VlmLinearW *all[] = {&a->query, &a->key, &a->value, &a->out};
  for (guint j = 0; j < G_N_ELEMENTS (all); j++)
    vlm_linear_clear (all[j]);
}

void
vlm_postnorm_layers_free (VlmPostNormLayer *layers, int n_layers)
{
  for (int i = 0; layers && i < n_layers; i++) {
    attn_clear (&layers[i].self_attn);
    attn_clear (&layers[i].cross_attn);
    vlm_linear_clear (&layers[i].fc1);
    vlm_linear_clear (&layers[i].fc2);
  }
  g_free (layers);
}

/* x = LN(x + out(attention of x's queries over memory [n_memory, Dm])), for
 * each sequence of `rows` rows: no mask, no cache. */
static void
cross_attention (const VlmPostNormConfig *c, const VlmPostNormAttn *a, VlmOps *ops, VlmArena *arena, float *x,
                 int n_seq, int rows, const VlmPostNormCross *cross)
{
  int D = c->hidden_size, M = n_seq * rows, hd = D / c->num_heads, L = cross->n_memory;
  size_t mark = vlm_arena_mark (arena);
  float *q = vlm_arena_new (arena, float, (size_t) M * D), *o = vlm_arena_new (arena, float, (size_t) M * D);
  float *k = vlm_arena_new (arena, float, (size_t) L * D), *v = vlm_arena_new (arena, float, (size_t) L * D);
  vlm_linear (ops, &a->query, x, M, q, VLM_ACT_NONE, NULL);
  vlm_linear_multi (ops, (const VlmLinearW *[]) { &a->key, &a->value }, NULL, 2, cross->memory, L,
                    (float *[]) { k, v });
  for (int s = 0; s < n_seq; s++)
    vlm_attention (ops, q + (size_t) s * rows * D, D, k, D, v, D, rows, L, c->num_heads, c->num_heads, hd,
                   1.0f / sqrtf ((float) hd), NULL, o + (size_t) s * rows * D, D);
  vlm_linear (ops, &a->out, o, M, x, VLM_ACT_NONE, x);
  vlm_layer_norm (ops, x, M, D, a->ln_w, a->ln_b, c->eps, x);
  vlm_arena_rewind (arena, mark);
}

void
vlm_postnorm_layer_forward (const VlmPostNormConfig *c, const VlmPostNormLayer *l, VlmOps *ops, VlmArena *arena,
                            VlmKvCache *cache, int li, float *x, int n_seq, int rows, int pos, const VlmMask *mask,
                            const VlmPostNormCross *cross, gboolean kv_only)
{
  int D = c->hidden_size, M = n_seq * rows, hd = D / c->num_heads;
  const VlmPostNormAttn *sa = &l->self_attn;
  size_t mark = vlm_arena_mark (arena);
  float *q = vlm_arena_new (arena, float, (size_t) M * D);
  float *k = vlm_arena_new (arena, float, (size_t) M * D);
  float *v = vlm_arena_new (arena, float, (size_t) M * D);
  float *a = vlm_arena_new (arena, float, (size_t) M * D);
  vlm_linear_multi (ops, (const VlmLinearW *[]) { &sa->key, &sa->value, &sa->query }, NULL, kv_only ? 2 : 3, x, M,
                    (float *[]) { k, v, q });
  for (int s = 0; s < n_seq; s++) {
    size_t o = (size_t) s * rows * D;
    vlm_kv_cache_store (cache, li, s, pos, rows, k + o, D, v + o, D);
    if (!kv_only)
      vlm_kv_cache_attend (cache, ops, li, s, q + o, D, rows, pos + rows, c->num_heads, 1.0f / sqrtf ((float) hd),
                           mask, a + o, D);
  }
  if (kv_only) {
    vlm_arena_rewind (arena, mark);
    return;
  }
  vlm_linear (ops, &sa->out, a, M, x, VLM_ACT_NONE, x);
  vlm_layer_norm (ops, x, M, D, sa->ln_w, sa->ln_b, c->eps, x);
  vlm_arena_rewind (arena, mark);

  if (cross && l->has_cross)
    cross_attention (c, &l->cross_attn, ops, arena, x, n_seq, rows, cross);
  vlm_mlp (ops, &l->fc1, c->act, &l->fc2, x, M, x, x);
  vlm_layer_norm (ops, x, M, D, l->out_ln_w, l->out_ln_b, c->eps, x);
}
