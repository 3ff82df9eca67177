/* postnorm.c — the BERT/BART/GPT-2 layer (postnorm.h). */
#include "postnorm.h"

#include <math.h>

const VlmPostNormNames vlm_postnorm_bert = {
  .attn = {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
           "attention.output.LayerNorm"},
  .fc1 = "intermediate.dense",
  .fc2 = "output.dense",
  .out_norm = "output.LayerNorm",
};

const VlmPostNormNames vlm_postnorm_blip = {
  .attn = {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
           "attention.output.LayerNorm"},
  .cross = {"crossattention.self.query", "crossattention.self.key", "crossattention.self.value",
            "crossattention.output.dense", "crossattention.output.LayerNorm"},
  .fc1 = "intermediate.dense",
  .fc2 = "output.dense",
  .out_norm = "output.LayerNorm",
};

const VlmPostNormNames vlm_postnorm_gpt2 = {
  .attn = {"attn.c_attn", "attn.c_attn", "attn.c_attn", "attn.c_proj", "ln_1"},
  .cross = {"crossattention.q_attn", "crossattention.c_attn", "crossattention.c_attn", "crossattention.c_proj",
            "ln_cross_attn"},
  .fc1 = "mlp.c_fc",
  .fc2 = "mlp.c_proj",
  .out_norm = "ln_2",
  .conv1d = TRUE,
};

const VlmPostNormNames vlm_postnorm_bart_encoder = {
  .attn = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "self_attn_layer_norm"},
  .fc1 = "fc1",
  .fc2 = "fc2",
  .out_norm = "final_layer_norm",
};

const VlmPostNormNames vlm_postnorm_bart_decoder = {
  .attn = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "self_attn_layer_norm"},
  .cross = {"encoder_attn.q_proj", "encoder_attn.k_proj", "encoder_attn.v_proj", "encoder_attn.out_proj",
            "encoder_attn_layer_norm"},
  .fc1 = "fc1",
  .fc2 = "fc2",
  .out_norm = "final_layer_norm",
};

static gboolean
load_attn (VlmPostNormAttn *a, const VlmPostNormNames *n, const char *const names[5], int D, int Dkv, VlmWeights *w,
           const char *p, int i, GError **error)
{
  int64_t d[] = {D};
  VlmLinearW *qkv[] = {&a->query, &a->key, &a->value};
  for (int j = 0; j < 3; j++) {
    int part, n_parts;
    vlm_weights_fused_part (names, 3, j, &part, &n_parts);
    if (!vlm_weights_linear_part (w, qkv[j], n->conv1d, TRUE, part, n_parts, D, j ? Dkv : D, error, "%s.%d.%s", p,
                                  i, names[j]))
      return FALSE;
  }
  return vlm_weights_linear_part (w, &a->out, n->conv1d, TRUE, 0, 1, D, D, error, "%s.%d.%s", p, i, names[3]) &&
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
  return load_attn (&l->self_attn, n, n->attn, D, D, w, p, i, error) &&
         (!l->has_cross || load_attn (&l->cross_attn, n, n->cross, D, memory_dim, w, p, i, error)) &&
         vlm_weights_linear_part (w, &l->fc1, n->conv1d, TRUE, 0, 1, I, D, error, "%s.%d.%s", p, i, n->fc1) &&
         vlm_weights_linear_part (w, &l->fc2, n->conv1d, TRUE, 0, 1, D, I, error, "%s.%d.%s", p, i, n->fc2) &&
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

/* ---------------------------------------------------------------- cross-attention memory */

size_t
vlm_postnorm_cross_bytes (const VlmPostNormConfig *c, int n_layers, int max_memory, gboolean bf16)
{
  return vlm_kv_cache_bytes (n_layers, 1, max_memory, c->num_heads, c->hidden_size / c->num_heads, bf16);
}

void
vlm_postnorm_cross_init (VlmPostNormCross *cross, VlmArena *arena, const VlmPostNormConfig *c, int n_layers,
                         int max_memory, gboolean bf16)
{
  vlm_kv_cache_init (&cross->kv, arena, n_layers, 1, max_memory, c->num_heads, c->hidden_size / c->num_heads, bf16);
  cross->n_memory = 0;
}

void
vlm_postnorm_cross_set (VlmPostNormCross *cross, const VlmPostNormConfig *c, const VlmPostNormLayer *layers,
                        int n_layers, VlmOps *ops, VlmArena *arena, const float *memory, int n_memory)
{
  int D = c->hidden_size;
  g_assert (n_memory <= cross->kv.max_rows && n_layers <= cross->kv.n_layers);
  size_t mark = vlm_arena_mark (arena);
  float *k = vlm_arena_new (arena, float, (size_t) n_memory * D), *v = vlm_arena_new (arena, float, (size_t) n_memory * D);
  for (int li = 0; li < n_layers; li++) {
    const VlmPostNormAttn *a = &layers[li].cross_attn;
    if (!layers[li].has_cross)
      continue;
    vlm_linear_multi (ops, (const VlmLinearW *[]) { &a->key, &a->value }, NULL, 2, memory, n_memory,
                      (float *[]) { k, v });
    vlm_kv_cache_store (&cross->kv, li, 0, 0, n_memory, k, D, v, D);
  }
  cross->n_memory = n_memory;
  vlm_arena_rewind (arena, mark);
}

/* ---------------------------------------------------------------- forward */

size_t
vlm_postnorm_layer_bytes (const VlmPostNormConfig *c, int m)
{
  return (size_t) m * 8 * c->hidden_size * sizeof (float) + 8 * 64;   /* h, q, k, v, a; cross: h, q, o */
}

/* What a block's projections read: x itself (post-norm), or LN(x) in h (pre-norm). */
static const float *
block_input (const VlmPostNormConfig *c, const VlmPostNormAttn *a, VlmOps *ops, const float *x, int m, float *h)
{
  if (!c->pre_norm)
    return x;
  vlm_layer_norm (ops, x, m, c->hidden_size, a->ln_w, a->ln_b, c->eps, h);
  return h;
}

/* After x += block(...): post-norm's LN of the sum. */
static void
block_output (const VlmPostNormConfig *c, const float *ln_w, const float *ln_b, VlmOps *ops, float *x, int m)
{
  if (!c->pre_norm)
    vlm_layer_norm (ops, x, m, c->hidden_size, ln_w, ln_b, c->eps, x);
}

/* x += out(attention of x's queries over each sequence's memory in layer
 * li), then the block's norm. Consecutive sequences that read the same
 * memory (the beams of one run) go in one call, unmasked. */
static void
cross_attention (const VlmPostNormConfig *c, const VlmPostNormAttn *a, VlmOps *ops, VlmArena *arena, int li,
                 float *x, const VlmPostNormSeq *seqs, int n_seq, int rows)
{
  int D = c->hidden_size, hd = D / c->num_heads, m = n_seq * rows;
  size_t mark = vlm_arena_mark (arena);
  float *h = vlm_arena_new (arena, float, (size_t) m * D);
  float *q = vlm_arena_new (arena, float, (size_t) m * D), *o = vlm_arena_new (arena, float, (size_t) m * D);
  vlm_linear (ops, &a->query, block_input (c, a, ops, x, m, h), m, q, VLM_ACT_NONE, NULL);
  for (int s = 0, e; s < n_seq; s = e) {
    const VlmPostNormCross *cross = seqs[s].cross;
    for (e = s + 1; e < n_seq && seqs[e].cross == cross; e++)
      ;
    size_t r0 = (size_t) s * rows * D;
    vlm_kv_cache_attend (&cross->kv, ops, li, 0, q + r0, D, (e - s) * rows, cross->n_memory, c->num_heads,
                         1.0f / sqrtf ((float) hd), NULL, o + r0, D);
  }
  vlm_linear (ops, &a->out, o, m, x, VLM_ACT_NONE, x);
  block_output (c, a->ln_w, a->ln_b, ops, x, m);
  vlm_arena_rewind (arena, mark);
}

void
vlm_postnorm_layer_forward (const VlmPostNormConfig *c, const VlmPostNormLayer *l, VlmOps *ops, VlmArena *arena,
                            int li, float *x, const VlmPostNormSeq *seqs, int n_seq, int rows, const VlmMask *mask,
                            gboolean kv_only)
{
  int D = c->hidden_size, M = n_seq * rows, hd = D / c->num_heads;
  float scale = 1.0f / sqrtf ((float) hd);
  const VlmPostNormAttn *sa = &l->self_attn;
  size_t mark = vlm_arena_mark (arena);
  float *h = vlm_arena_new (arena, float, (size_t) M * D);
  float *q = vlm_arena_new (arena, float, (size_t) M * D);
  float *k = vlm_arena_new (arena, float, (size_t) M * D);
  float *v = vlm_arena_new (arena, float, (size_t) M * D);
  float *a = vlm_arena_new (arena, float, (size_t) M * D);
  vlm_linear_multi (ops, (const VlmLinearW *[]) { &sa->key, &sa->value, &sa->query }, NULL, kv_only ? 2 : 3,
                    block_input (c, sa, ops, x, M, h), M, (float *[]) { k, v, q });
  gboolean cross = FALSE;
  for (int s = 0; s < n_seq; s++) {
    size_t o = (size_t) s * rows * D;
    if (!seqs) {
      vlm_attention (ops, q + o, D, k + o, D, v + o, D, rows, rows, c->num_heads, c->num_heads, hd, scale, mask,
                     a + o, D);
      continue;
    }
    const VlmPostNormSeq *sq = &seqs[s];
    VlmMask m = mask ? *mask : (VlmMask) {0};
    m.q_pos0 = sq->pos;
    cross |= sq->cross != NULL;
    vlm_kv_cache_store (sq->cache, li, sq->beam, sq->pos, rows, k + o, D, v + o, D);
    if (!kv_only)
      vlm_kv_cache_attend (sq->cache, ops, li, sq->beam, q + o, D, rows, sq->pos + rows, c->num_heads, scale,
                           mask ? &m : NULL, a + o, D);
  }
  if (kv_only) {
    vlm_arena_rewind (arena, mark);
    return;
  }
  vlm_linear (ops, &sa->out, a, M, x, VLM_ACT_NONE, x);
  block_output (c, sa->ln_w, sa->ln_b, ops, x, M);

  if (cross && l->has_cross)
    cross_attention (c, &l->cross_attn, ops, arena, li, x, seqs, n_seq, rows);
  if (c->pre_norm)
    vlm_layer_norm (ops, x, M, D, l->out_ln_w, l->out_ln_b, c->eps, h);
  vlm_mlp (ops, &l->fc1, c->act, &l->fc2, c->pre_norm ? h : x, M, x, x);
  block_output (c, l->out_ln_w, l->out_ln_b, ops, x, M);
  vlm_arena_rewind (arena, mark);
}

int
vlm_postnorm_step_rows (const VlmStepGroup *groups, int n, VlmArena *arena,
                        VlmPostNormSeq (*seq_of) (void *self, int beam, int pos), int **ids, int **positions,
                        VlmPostNormSeq **seqs)
{
  int rows = vlm_step_rows (groups, n);
  *ids = vlm_arena_new (arena, int, rows);
  *positions = vlm_arena_new (arena, int, rows);
  *seqs = vlm_arena_new (arena, VlmPostNormSeq, rows);
  for (int g = 0, i = 0; g < n; g++)
    for (int b = 0; !groups[g].error && b < groups[g].n_beams; b++, i++) {
      (*ids)[i] = groups[g].tokens[b];
      (*positions)[i] = groups[g].pos;
      (*seqs)[i] = seq_of (groups[g].self, b, groups[g].pos);
    }
  return rows;
}
