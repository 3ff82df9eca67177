/* llama.c — the Llama / Qwen2 decoder: embed → N × [pre-norm attention with
 * RoPE and GQA; pre-norm SiLU-gated MLP] → norm → lm_head, over a KV cache
 * per beam.
 * ref: transformers models/llama/modeling_llama.py (LlamaModel, LlamaForCausalLM),
 *      models/qwen2/modeling_qwen2.py */
#include "llama.h"

#include "kvcache.h"

#include <math.h>

struct VlmLlamaRun {
  const VlmLlama *lm;
  VlmOps *ops;
  VlmArena arena;
  int max_beams, max_seq;
  VlmKvCache cache;             /* max_beams × max_seq rows per layer */
  float *rope_cos, *rope_sin;   /* [max_seq][hd/2]: angle pos · inv_freq[j] */
  float *logits;                /* [max_beams][V] prefill logits */
  float *embeds;                /* [max_seq][D] a merged prompt's inputs_embeds */
  VlmDecoder decoder;
};

/* ---------------------------------------------------------------- config */

/* rope_theta: transformers 5 nests it in rope_parameters; 4 has it at top
 * level with an optional rope_scaling. Only the default (unscaled) RoPE. */
static gboolean
read_rope (VlmLlamaConfig *c, JsonObject *tc, const char *file, GError **error)
{
  JsonObject *rp = vlm_json_object (tc, "rope_parameters");
  JsonObject *scaling = rp ? rp : vlm_json_object (tc, "rope_scaling");
  const char *type = scaling ? vlm_json_string (scaling, "rope_type", vlm_json_string (scaling, "type", "default"))
                             : "default";
  if (strcmp (type, "default") != 0) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: text_config rope type \"%s\" is not supported", file, type);
    return FALSE;
  }
  c->rope_theta = (float) vlm_json_double (rp ? rp : tc, "rope_theta", vlm_json_double (tc, "rope_theta", 10000.0));
  return TRUE;
}

gboolean
vlm_llama_config_read (VlmLlamaConfig *c, JsonObject *tc, const char *file, GError **error)
{
  memset (c, 0, sizeof *c);
  if (!tc) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: \"text_config\" is missing", file);
    return FALSE;
  }
  if (!vlm_json_require_int (tc, "hidden_size", file, &c->hidden_size, error) ||
      !vlm_json_require_int (tc, "intermediate_size", file, &c->intermediate_size, error) ||
      !vlm_json_require_int (tc, "num_attention_heads", file, &c->num_heads, error) ||
      !vlm_json_require_int (tc, "num_hidden_layers", file, &c->num_layers, error) ||
      !vlm_json_require_int (tc, "vocab_size", file, &c->vocab_size, error) ||
      !read_rope (c, tc, file, error))
    return FALSE;
  c->num_kv_heads = vlm_json_int (tc, "num_key_value_heads", c->num_heads);
  c->head_dim = vlm_json_int (tc, "head_dim", c->hidden_size / c->num_heads);
  c->max_positions = vlm_json_int (tc, "max_position_embeddings", 2048);   /* LlamaConfig's default */
  c->eps = (float) vlm_json_double (tc, "rms_norm_eps", 1e-6);
  gboolean qwen2 = g_strcmp0 (vlm_json_string (tc, "model_type", ""), "qwen2") == 0;
  c->qkv_bias = qwen2 || vlm_json_bool (tc, "attention_bias", FALSE);
  c->o_bias = !qwen2 && vlm_json_bool (tc, "attention_bias", FALSE);
  c->mlp_bias = vlm_json_bool (tc, "mlp_bias", FALSE);
  const char *act = vlm_json_string (tc, "hidden_act", "silu");
  if (!vlm_act_from_name (act, &c->act) || c->num_kv_heads < 1 || c->num_heads % c->num_kv_heads ||
      c->head_dim < 2 || c->head_dim % 2) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG,
                 "%s: text_config hidden_act \"%s\", %d heads / %d key-value heads or head_dim %d not supported",
                 file, act, c->num_heads, c->num_kv_heads, c->head_dim);
    return FALSE;
  }
  return TRUE;
}

/* ---------------------------------------------------------------- weights */

const VlmLlamaNames vlm_llama_names = {
  .embed_tokens = "embed_tokens", .layers = "layers", .norm = "norm",
  .q_proj = "self_attn.q_proj", .k_proj = "self_attn.k_proj", .v_proj = "self_attn.v_proj",
  .o_proj = "self_attn.o_proj", .gate_proj = "mlp.gate_proj", .up_proj = "mlp.up_proj",
  .down_proj = "mlp.down_proj", .input_layernorm = "input_layernorm",
  .post_attention_layernorm = "post_attention_layernorm",
};

static gboolean
load_layer (VlmLlamaLayer *l, const VlmLlamaConfig *c, const VlmLlamaNames *n, VlmWeights *w, const char *p, int i,
            GError **error)
{
  int D = c->hidden_size, I = c->intermediate_size;
  int qd = c->num_heads * c->head_dim, kvd = c->num_kv_heads * c->head_dim;
  int64_t d[] = {D};
  const char *L = n->layers, *f = "%s%s.%d.%s";
  return vlm_weights_linear (w, &l->q_proj, c->qkv_bias, qd, D, error, f, p, L, i, n->q_proj) &&
         vlm_weights_linear (w, &l->k_proj, c->qkv_bias, kvd, D, error, f, p, L, i, n->k_proj) &&
         vlm_weights_linear (w, &l->v_proj, c->qkv_bias, kvd, D, error, f, p, L, i, n->v_proj) &&
         vlm_weights_linear (w, &l->o_proj, c->o_bias, D, qd, error, f, p, L, i, n->o_proj) &&
         vlm_weights_linear (w, &l->gate_proj, c->mlp_bias, I, D, error, f, p, L, i, n->gate_proj) &&
         vlm_weights_linear (w, &l->up_proj, c->mlp_bias, I, D, error, f, p, L, i, n->up_proj) &&
         vlm_weights_linear (w, &l->down_proj, c->mlp_bias, D, I, error, f, p, L, i, n->down_proj) &&
         (l->input_layernorm = vlm_weights_f32 (w, error, 1, d, "%s%s.%d.%s.weight", p, L, i, n->input_layernorm)) &&
         (l->post_attention_layernorm =
              vlm_weights_f32 (w, error, 1, d, "%s%s.%d.%s.weight", p, L, i, n->post_attention_layernorm));
}

gboolean
vlm_llama_load (VlmLlama *lm, VlmWeights *w, const VlmLlamaNames *n, const char *p, const char *lm_head,
                GError **error)
{
  const VlmLlamaConfig *c = &lm->cfg;
  int D = c->hidden_size, V = c->vocab_size;
  int64_t d[] = {D}, emb[] = {V, D};
  /* the head only ever sees a few rows (the beams' last positions); tied
   * or not, the lookup reads embed_tokens as stored, a row at a time */
  const char *head = vlm_weights_has (w, "%s.weight", lm_head) ? lm_head : NULL;
  g_autofree char *tied = head ? NULL : g_strdup_printf ("%s%s", p, n->embed_tokens);
  w->rows = 1;
  gboolean ok = vlm_weights_linear (w, &lm->lm_head, FALSE, V, D, error, "%s", head ? head : tied);
  w->rows = 0;
  if (!ok || !(lm->embed_tokens = vlm_weights_tensor (w, error, 2, emb, "%s%s.weight", p, n->embed_tokens)))
    return FALSE;
  if (!(lm->norm = vlm_weights_f32 (w, error, 1, d, "%s%s.weight", p, n->norm)))
    return FALSE;
  if (!vlm_weights_check_count (w, c->num_layers, "text num_hidden_layers", error))
    return FALSE;
  lm->layers = g_new0 (VlmLlamaLayer, c->num_layers);
  for (int i = 0; i < c->num_layers; i++)
    if (!load_layer (&lm->layers[i], c, n, w, p, i, error))
      return FALSE;
  return TRUE;
}

void
vlm_llama_clear (VlmLlama *lm)
{
  vlm_linear_clear (&lm->lm_head);
  for (int i = 0; lm->layers && i < lm->cfg.num_layers; i++) {
    VlmLlamaLayer *l = &lm->layers[i];
    VlmLinearW *all[] = {&l->q_proj, &l->k_proj, &l->v_proj, &l->o_proj, &l->gate_proj, &l->up_proj, &l->down_proj};
    for (guint j = 0; j < G_N_ELEMENTS (all); j++)
      vlm_linear_clear (all[j]);
  }
  g_clear_pointer (&lm->layers, g_free);
}

/* ---------------------------------------------------------------- forward */

/* One sequence of a forward pass: a beam of a run's cache (of any run of
 * this model: a batched step holds several) and the rows it holds. */
typedef struct {
  VlmLlamaRun *run;
  int beam, pos;
} Seq;

/* Runs x [n_seq · rows, D] (sequence s: `rows` new rows at positions
 * [pos_s, pos_s + rows) of its run's cache and beam) through every layer,
 * in place, appending their keys and values to each sequence's cache:
 *   h = x + o_proj(attn(rope(q_proj(y)), rope(k_proj(y)), v_proj(y))), y = input_layernorm(x)
 *   x = h + down_proj(act(gate_proj(z)) * up_proj(z)),  z = post_attention_layernorm(h)
 * With one sequence, the last layer runs past its keys and values only for
 * the last `keep` rows: the others' outputs are never read (the head takes
 * the last rows), so those rows of x are left as that layer's input. */
static void
layers_forward (const VlmLlama *lm, VlmOps *ops, VlmArena *arena, const Seq *seqs, int n_seq, float *x, int rows,
                int keep)
{
  const VlmLlamaConfig *c = &lm->cfg;
  int D = c->hidden_size, I = c->intermediate_size, M = n_seq * rows, hd = c->head_dim;
  int qd = c->num_heads * hd, kvd = c->num_kv_heads * hd;
  for (int li = 0; li < c->num_layers; li++) {
    const VlmLlamaLayer *l = &lm->layers[li];
    /* rows [skip, rows) of each sequence go on past the cache */
    int skip = li == c->num_layers - 1 && n_seq == 1 ? rows - keep : 0, rq = rows - skip, Mq = n_seq * rq;
    float *xq = x + (size_t) skip * D;
    size_t mark = vlm_arena_mark (arena);
    float *h = vlm_arena_new (arena, float, (size_t) M * D);
    float *q = vlm_arena_new (arena, float, (size_t) Mq * qd);
    float *k = vlm_arena_new (arena, float, (size_t) M * kvd);
    float *v = vlm_arena_new (arena, float, (size_t) M * kvd);
    float *a = vlm_arena_new (arena, float, (size_t) Mq * qd);
    vlm_rms_norm (ops, x, M, D, l->input_layernorm, c->eps, h);
    if (skip == 0) {
      vlm_linear_multi (ops, (const VlmLinearW *[]) { &l->q_proj, &l->k_proj, &l->v_proj }, NULL, 3, h, M,
                        (float *[]) { q, k, v });
    } else {
      vlm_linear (ops, &l->q_proj, h + (size_t) skip * D, Mq, q, VLM_ACT_NONE, NULL);
      vlm_linear_multi (ops, (const VlmLinearW *[]) { &l->k_proj, &l->v_proj }, NULL, 2, h, M,
                        (float *[]) { k, v });
    }
    for (int s = 0; s < n_seq; s++) {
      const Seq *sq = &seqs[s];
      size_t o = (size_t) s * rows, oq = (size_t) s * rq;
      const float *cos = sq->run->rope_cos + (size_t) sq->pos * hd / 2, *sin = sq->run->rope_sin + (size_t) sq->pos * hd / 2;
      const VlmMask causal = {TRUE, 0, sq->pos + skip};
      vlm_rope (ops, q + oq * qd, qd, rq, c->num_heads, hd, cos + (size_t) skip * hd / 2, sin + (size_t) skip * hd / 2);
      vlm_rope (ops, k + o * kvd, kvd, rows, c->num_kv_heads, hd, cos, sin);
      vlm_kv_cache_store (&sq->run->cache, li, sq->beam, sq->pos, rows, k + o * kvd, kvd, v + o * kvd, kvd);
      vlm_kv_cache_attend (&sq->run->cache, ops, li, sq->beam, q + oq * qd, qd, rq, sq->pos + rows, c->num_heads,
                           1.0f / sqrtf ((float) hd), &causal, a + oq * qd, qd);
    }
    vlm_linear (ops, &l->o_proj, a, Mq, xq, VLM_ACT_NONE, xq);
    vlm_arena_rewind (arena, mark);

    h = vlm_arena_new (arena, float, (size_t) Mq * D);
    float *gate = vlm_arena_new (arena, float, (size_t) Mq * I);
    float *up = vlm_arena_new (arena, float, (size_t) Mq * I);
    vlm_rms_norm (ops, xq, Mq, D, l->post_attention_layernorm, c->eps, h);
    vlm_linear_multi (ops, (const VlmLinearW *[]) { &l->gate_proj, &l->up_proj }, (VlmAct[]) { c->act, VLM_ACT_NONE },
                      2, h, Mq, (float *[]) { gate, up });
    for (size_t i = 0; i < (size_t) Mq * I; i++)
      gate[i] *= up[i];
    vlm_linear (ops, &l->down_proj, gate, Mq, xq, VLM_ACT_NONE, xq);
    vlm_arena_rewind (arena, mark);
  }
}

/* logits [n_seq · keep, V] = lm_head(norm(x)) over the last `keep` rows of
 * each sequence: only the rows whose next token is wanted pay for the head. */
static void
head_forward (const VlmLlama *lm, VlmOps *ops, VlmArena *arena, const float *x, int n_seq, int rows, int keep,
              float *logits)
{
  int D = lm->cfg.hidden_size;
  size_t mark = vlm_arena_mark (arena);
  float *h = vlm_arena_new (arena, float, (size_t) n_seq * keep * D);
  for (int s = 0; s < n_seq; s++)
    vlm_rms_norm (ops, x + ((size_t) s * rows + rows - keep) * D, keep, D, lm->norm, lm->cfg.eps,
                  h + (size_t) s * keep * D);
  vlm_linear (ops, &lm->lm_head, h, n_seq * keep, logits, VLM_ACT_NONE, NULL);
  vlm_arena_rewind (arena, mark);
}

static gboolean
check_ids (const VlmLlama *lm, const int *ids, int n, GError **error)
{
  for (int i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= lm->cfg.vocab_size) {
      g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT, "token id %d outside the vocabulary of %d", ids[i],
                   lm->cfg.vocab_size);
      return FALSE;
    }
  return TRUE;
}

gboolean
vlm_llama_embed (const VlmLlama *lm, const int *ids, int n, float *x, GError **error)
{
  if (!check_ids (lm, ids, n, error))
    return FALSE;
  for (int i = 0; i < n; i++)
    vlm_tensor_rows_to_f32 (lm->embed_tokens, ids[i], 1, x + (size_t) i * lm->cfg.hidden_size);
  return TRUE;
}

static gboolean
check_length (const VlmLlamaRun *r, int len, GError **error)
{
  if (len <= r->max_seq)
    return TRUE;
  g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT, "sequence of %d tokens exceeds the %d this session holds",
               len, r->max_seq);
  return FALSE;
}

const float *
vlm_llama_prefill (VlmLlamaRun *r, float *x, int n, int logits_to_keep, GError **error)
{
  g_assert (logits_to_keep >= 1 && logits_to_keep <= MIN (n, r->max_beams));
  if (!check_length (r, n, error))
    return NULL;
  vlm_kv_cache_reset (&r->cache);   /* beam 0 only, until the generation loop's first reorder */
  const Seq seq = {r, 0, 0};
  layers_forward (r->lm, r->ops, &r->arena, &seq, 1, x, n, logits_to_keep);
  head_forward (r->lm, r->ops, &r->arena, x, 1, n, logits_to_keep, r->logits);
  return r->logits;
}

const float *
vlm_llama_prefill_merged (VlmLlamaRun *r, const int *ids, int n, int placeholder, const float *features,
                          int n_features, int logits_to_keep, GError **error)
{
  int D = r->lm->cfg.hidden_size, n_placeholders = 0;
  if (n < 1 || n > r->max_seq) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT, "a prompt of %d tokens (this session holds 1 to %d)", n,
                 r->max_seq);
    return NULL;
  }
  for (int i = 0; i < n; i++)
    n_placeholders += ids[i] == placeholder;
  if (n_placeholders != n_features) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT,
                 "%d placeholders (id %d) in the prompt, the clip gives %d tokens", n_placeholders, placeholder,
                 n_features);
    return NULL;
  }
  if (!vlm_llama_embed (r->lm, ids, n, r->embeds, error))
    return NULL;
  for (int i = 0, k = 0; i < n; i++)
    if (ids[i] == placeholder)
      memcpy (r->embeds + (size_t) i * D, features + (size_t) k++ * D, D * sizeof (float));
  return vlm_llama_prefill (r, r->embeds, n, logits_to_keep, error);
}

/* Every group's beams, one row each, through the layers and the head
 * together (a group is one run: one session's step, or a single step()). */
static gboolean
llama_step_batch (VlmStepGroup *groups, int n, VlmArena *arena, GError **error)
{
  const VlmLlamaRun *r0 = groups[0].self;
  const VlmLlama *lm = r0->lm;
  int D = lm->cfg.hidden_size, V = lm->cfg.vocab_size;
  for (int g = 0; g < n; g++) {
    VlmLlamaRun *r = groups[g].self;
    g_assert (r->lm == lm && groups[g].n_beams <= r->max_beams);
    if (check_length (r, groups[g].pos + 1, &groups[g].error))
      check_ids (lm, groups[g].tokens, groups[g].n_beams, &groups[g].error);
  }
  int rows = vlm_step_rows (groups, n);
  if (rows == 0)
    return TRUE;
  size_t mark = vlm_arena_mark (arena);
  float *x = vlm_arena_new (arena, float, (size_t) rows * D);
  Seq *seqs = vlm_arena_new (arena, Seq, rows);
  for (int g = 0, i = 0; g < n; g++)
    for (int b = 0; !groups[g].error && b < groups[g].n_beams; b++, i++) {
      seqs[i] = (Seq) {groups[g].self, b, groups[g].pos};
      vlm_tensor_rows_to_f32 (lm->embed_tokens, groups[g].tokens[b], 1, x + (size_t) i * D);
    }
  float *logits = vlm_step_logits (groups, n, rows, arena, V);
  layers_forward (lm, r0->ops, arena, seqs, rows, x, 1, 1);
  head_forward (lm, r0->ops, arena, x, rows, 1, 1, logits);
  vlm_step_logits_scatter (groups, n, logits, V);
  vlm_arena_rewind (arena, mark);
  (void) error;
  return TRUE;
}

static size_t
llama_step_bytes (const void *self, int rows)
{
  const VlmLlamaConfig *c = &((const VlmLlamaRun *) self)->lm->cfg;
  size_t qd = c->num_heads * c->head_dim, kvd = c->num_kv_heads * c->head_dim;
  return (size_t) rows * (c->vocab_size + 3 * c->hidden_size + 2 * qd + 2 * kvd + 2 * c->intermediate_size) *
             sizeof (float) + rows * sizeof (Seq) + 16 * 64;
}

static gboolean
llama_step (void *self, const int *tokens, int n_beams, int pos, float *logits, GError **error)
{
  VlmLlamaRun *r = self;
  return vlm_step_one (llama_step_batch, r, &r->arena, tokens, n_beams, pos, logits, error);
}

static void
llama_reorder (void *self, const int *src, int n_beams, int len)
{
  VlmLlamaRun *r = self;
  vlm_kv_cache_reorder (&r->cache, src, n_beams, len);
}

const VlmDecoder *
vlm_llama_decoder (VlmLlamaRun *r)
{
  return &r->decoder;
}

/* ---------------------------------------------------------------- run */

/* As LlamaRotaryEmbedding in f32: inv_freq[j] = 1 / theta^(2j / hd),
 * angle = pos · inv_freq[j]; the table's cos/sin serve both halves. */
static void
rope_tables (const VlmLlamaConfig *c, int max_seq, float *cos_t, float *sin_t)
{
  int half = c->head_dim / 2;
  for (int j = 0; j < half; j++) {
    float inv_freq = (float) (1.0 / pow (c->rope_theta, (double) ((float) (2 * j) / (float) c->head_dim)));
    if (c->rope_bf16)
      inv_freq = vlm_bf16_to_f32 (vlm_f32_to_bf16 (inv_freq));
    for (int p = 0; p < max_seq; p++) {
      float angle = (float) p * inv_freq;
      cos_t[(size_t) p * half + j] = (float) cos (angle);
      sin_t[(size_t) p * half + j] = (float) sin (angle);
    }
  }
}

VlmLlamaRun *
vlm_llama_run_new (const VlmLlama *lm, VlmOps *ops, int max_beams, int max_seq, GError **error)
{
  const VlmLlamaConfig *c = &lm->cfg;
  VlmLlamaRun *r = g_new0 (VlmLlamaRun, 1);
  size_t B = max_beams, S = max_seq, D = c->hidden_size, hd = c->head_dim;
  size_t qd = c->num_heads * hd, kvd = c->num_kv_heads * hd, rows = MAX (S, B);
  r->lm = lm;
  r->ops = ops;
  r->max_beams = max_beams;
  r->max_seq = max_seq;
  size_t floats = S * hd                                      /* rope tables */
                  + B * c->vocab_size                         /* logits */
                  + B * D + B * sizeof (Seq) / sizeof (float) + 64  /* step input and its sequences */
                  + S * D                                     /* merged prompt embeddings */
                  + rows * (D + 2 * qd + 2 * kvd + 2 * (size_t) c->intermediate_size);  /* one layer */
  size_t bytes = floats * sizeof (float) + 32 * 64 +
                 vlm_kv_cache_bytes (c->num_layers, max_beams, max_seq, c->num_kv_heads, c->head_dim, vlm_ops_kv_bf16 (ops));
  if (!vlm_arena_init (&r->arena, bytes)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_INFERENCE, "cannot allocate %zu MiB of decoder state", bytes >> 20);
    g_free (r);
    return NULL;
  }
  vlm_kv_cache_init (&r->cache, &r->arena, c->num_layers, max_beams, max_seq, c->num_kv_heads, c->head_dim,
                     vlm_ops_kv_bf16 (ops));
  r->rope_cos = vlm_arena_new (&r->arena, float, S * hd / 2);
  r->rope_sin = vlm_arena_new (&r->arena, float, S * hd / 2);
  r->logits = vlm_arena_new (&r->arena, float, B * c->vocab_size);
  r->embeds = vlm_arena_new (&r->arena, float, S * D);
  rope_tables (c, max_seq, r->rope_cos, r->rope_sin);
  r->decoder = (VlmDecoder) {r, c->vocab_size, llama_step, llama_reorder, llama_step_batch, llama_step_bytes};
  return r;
}

void
vlm_llama_run_free (VlmLlamaRun *r)
{
  if (!r)
    return;
  vlm_arena_clear (&r->arena);
  g_free (r);
}
