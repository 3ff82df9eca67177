/* vit.c — ViT tower forward: patchify → embed → N pre-norm blocks → post-norm.
 * ref: transformers models/clip/modeling_clip.py, models/git/modeling_git.py,
 *      models/siglip/modeling_siglip.py */
#include "vit.h"

#include <math.h>

/* ---------------------------------------------------------------- config */

gboolean
vlm_vit_config_read (VlmVitConfig *c, JsonObject *vc, const char *file, gboolean clip_style,
                     GError **error)
{
  memset (c, 0, sizeof *c);
  if (!vc) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: \"vision_config\" is missing", file);
    return FALSE;
  }
  if (!vlm_json_require_int (vc, "hidden_size", file, &c->hidden_size, error) ||
      !vlm_json_require_int (vc, "intermediate_size", file, &c->intermediate_size, error) ||
      !vlm_json_require_int (vc, "num_attention_heads", file, &c->num_heads, error) ||
      !vlm_json_require_int (vc, "num_hidden_layers", file, &c->num_layers, error) ||
      !vlm_json_require_int (vc, "patch_size", file, &c->patch_size, error) ||
      !vlm_json_require_int (vc, "image_size", file, &c->image_size, error))
    return FALSE;
  c->num_channels = vlm_json_int (vc, "num_channels", 3);
  c->eps = (float) vlm_json_double (vc, "layer_norm_eps", clip_style ? 1e-5 : 1e-6);
  const char *act = vlm_json_string (vc, "hidden_act", clip_style ? "quick_gelu" : "gelu_pytorch_tanh");
  if (!vlm_act_from_name (act, &c->act)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: vision hidden_act \"%s\" is not supported", file, act);
    return FALSE;
  }
  if (c->hidden_size % c->num_heads || c->image_size % c->patch_size || c->num_channels != 3) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG,
                 "%s: vision_config sizes are inconsistent (hidden %d / heads %d, image %d / patch %d, channels %d)",
                 file, c->hidden_size, c->num_heads, c->image_size, c->patch_size, c->num_channels);
    return FALSE;
  }
  c->class_token = c->pre_norm = clip_style;
  c->patch_bias = !clip_style;
  c->grid = c->image_size / c->patch_size;
  c->n_tokens = c->grid * c->grid + (c->class_token ? 1 : 0);
  return TRUE;
}

/* ---------------------------------------------------------------- weights */

static gboolean
load_layer (VlmVitLayer *l, const VlmVitConfig *c, VlmWeights *w, const char *p, int i, GError **error)
{
  int D = c->hidden_size, I = c->intermediate_size;
  int64_t d[] = {D};
#define LN(field, name)                                                                        \
  (l->field##_w = vlm_weights_f32 (w, error, 1, d, "%sencoder.layers.%d.%s.weight", p, i, name)) && \
  (l->field##_b = vlm_weights_f32 (w, error, 1, d, "%sencoder.layers.%d.%s.bias", p, i, name))
  return vlm_weights_linear (w, &l->q_proj, TRUE, D, D, error, "%sencoder.layers.%d.self_attn.q_proj", p, i) &&
         vlm_weights_linear (w, &l->k_proj, TRUE, D, D, error, "%sencoder.layers.%d.self_attn.k_proj", p, i) &&
         vlm_weights_linear (w, &l->v_proj, TRUE, D, D, error, "%sencoder.layers.%d.self_attn.v_proj", p, i) &&
         vlm_weights_linear (w, &l->out_proj, TRUE, D, D, error, "%sencoder.layers.%d.self_attn.out_proj", p, i) &&
         vlm_weights_linear (w, &l->fc1, TRUE, I, D, error, "%sencoder.layers.%d.mlp.fc1", p, i) &&
         vlm_weights_linear (w, &l->fc2, TRUE, D, I, error, "%sencoder.layers.%d.mlp.fc2", p, i) &&
         LN (layer_norm1, "layer_norm1") && LN (layer_norm2, "layer_norm2");
#undef LN
}

gboolean
vlm_vit_load (VlmVit *vit, VlmWeights *w, const char *p, GError **error)
{
  const VlmVitConfig *c = &vit->cfg;
  int D = c->hidden_size, P = c->patch_size;
  int64_t d[] = {D}, conv[] = {D, c->num_channels, P, P}, pos[] = {c->n_tokens, D};

  /* A stride-P conv over P×P patches is a Linear over flattened (c, ky, kx). */
  g_autofree char *conv_name = g_strdup_printf ("%sembeddings.patch_embedding.weight", p);
  const VlmTensor *cw = vlm_safetensors_get (w->st, conv_name, 4, conv, error);
  if (!cw)
    return FALSE;
  VlmTensor flat = *cw;
  flat.ndim = 2;
  flat.shape[1] = (int64_t) c->num_channels * P * P;
  g_autofree char *bias_name = g_strdup_printf ("%sembeddings.patch_embedding.bias", p);
  const VlmTensor *cb = c->patch_bias ? vlm_safetensors_get (w->st, bias_name, 1, d, error) : NULL;
  if ((c->patch_bias && !cb) || !vlm_linear_init (&vit->patch_embedding, conv_name, &flat, cb, error))
    return FALSE;

  if (c->class_token &&
      !(vit->class_embedding = vlm_weights_f32 (w, error, 1, d, "%sembeddings.class_embedding", p)))
    return FALSE;
  if (!(vit->position_embedding = vlm_weights_f32 (w, error, 2, pos, "%sembeddings.position_embedding.weight", p)))
    return FALSE;
  if (c->pre_norm &&
      !((vit->pre_layrnorm_w = vlm_weights_f32 (w, error, 1, d, "%spre_layrnorm.weight", p)) &&
        (vit->pre_layrnorm_b = vlm_weights_f32 (w, error, 1, d, "%spre_layrnorm.bias", p))))
    return FALSE;
  if (!((vit->post_layernorm_w = vlm_weights_f32 (w, error, 1, d, "%spost_layernorm.weight", p)) &&
        (vit->post_layernorm_b = vlm_weights_f32 (w, error, 1, d, "%spost_layernorm.bias", p))))
    return FALSE;
  vit->layers = g_new0 (VlmVitLayer, c->num_layers);
  for (int i = 0; i < c->num_layers; i++)
    if (!load_layer (&vit->layers[i], c, w, p, i, error))
      return FALSE;
  return TRUE;
}

void
vlm_vit_clear (VlmVit *vit)
{
  vlm_linear_clear (&vit->patch_embedding);
  for (int i = 0; vit->layers && i < vit->cfg.num_layers; i++) {
    VlmVitLayer *l = &vit->layers[i];
    VlmLinearW *all[] = {&l->q_proj, &l->k_proj, &l->v_proj, &l->out_proj, &l->fc1, &l->fc2};
    for (guint j = 0; j < G_N_ELEMENTS (all); j++)
      vlm_linear_clear (all[j]);
  }
  g_clear_pointer (&vit->layers, g_free);
}

/* ---------------------------------------------------------------- forward */

size_t
vlm_vit_arena_size (const VlmVit *vit, int n_frames)
{
  const VlmVitConfig *c = &vit->cfg;
  size_t rows = (size_t) n_frames * c->n_tokens, P = c->patch_size;
  size_t embed = (size_t) n_frames * c->grid * c->grid * (c->num_channels * P * P + c->hidden_size);
  size_t layer = rows * (4 * (size_t) c->hidden_size + c->intermediate_size);
  return MAX (embed, layer) * sizeof (float) + 8 * 64;   /* + alignment of each block */
}

/* Unfolds frame pixels [C, S, S] into rows [grid², C·P·P] ordered (c, ky, kx). */
static void
patchify (const VlmVitConfig *c, const float *px, float *rows)
{
  int P = c->patch_size, S = c->image_size, G = c->grid;
  for (int gy = 0; gy < G; gy++)
    for (int gx = 0; gx < G; gx++)
      for (int ch = 0; ch < c->num_channels; ch++)
        for (int ky = 0; ky < P; ky++) {
          memcpy (rows, px + ((size_t) ch * S + gy * P + ky) * S + gx * P, P * sizeof (float));
          rows += P;
        }
}

/* x [F·T, D] = [CLS;] patch_embedding(patches) + position_embedding, then pre-norm. */
static void
embed (const VlmVit *vit, VlmOps *ops, VlmArena *arena, const float *pixels, int F, float *x)
{
  const VlmVitConfig *c = &vit->cfg;
  int D = c->hidden_size, np = c->grid * c->grid, K = c->num_channels * c->patch_size * c->patch_size;
  size_t mark = vlm_arena_mark (arena);
  float *rows = vlm_arena_new (arena, float, (size_t) F * np * K);
  float *pe = vlm_arena_new (arena, float, (size_t) F * np * D);
  for (int f = 0; f < F; f++)
    patchify (c, pixels + (size_t) f * c->num_channels * c->image_size * c->image_size, rows + (size_t) f * np * K);
  vlm_linear (ops, &vit->patch_embedding, rows, F * np, pe, VLM_ACT_NONE, NULL);
  int cls = c->class_token ? 1 : 0;
  for (int f = 0; f < F; f++) {
    float *xf = x + (size_t) f * c->n_tokens * D;
    if (cls)
      memcpy (xf, vit->class_embedding, D * sizeof (float));
    memcpy (xf + (size_t) cls * D, pe + (size_t) f * np * D, (size_t) np * D * sizeof (float));
    for (size_t i = 0; i < (size_t) c->n_tokens * D; i++)
      xf[i] += vit->position_embedding[i];
  }
  vlm_arena_rewind (arena, mark);
  if (c->pre_norm)
    vlm_layer_norm (ops, x, F * c->n_tokens, D, vit->pre_layrnorm_w, vit->pre_layrnorm_b, c->eps, x);
}

/* One encoder layer, in place on x [F·T, D]:
 *   x = x + out_proj(attn(layer_norm1(x)));  x = x + fc2(act(fc1(layer_norm2(x)))) */
static void
layer_forward (const VlmVit *vit, const VlmVitLayer *l, VlmOps *ops, VlmArena *arena, int F, float *x)
{
  const VlmVitConfig *c = &vit->cfg;
  int D = c->hidden_size, T = c->n_tokens, M = F * T, hd = D / c->num_heads;
  size_t mark = vlm_arena_mark (arena);
  float *h = vlm_arena_new (arena, float, (size_t) M * D);
  float *q = vlm_arena_new (arena, float, (size_t) M * D);
  float *k = vlm_arena_new (arena, float, (size_t) M * D);
  float *v = vlm_arena_new (arena, float, (size_t) M * D);
  vlm_layer_norm (ops, x, M, D, l->layer_norm1_w, l->layer_norm1_b, c->eps, h);
  vlm_linear (ops, &l->q_proj, h, M, q, VLM_ACT_NONE, NULL);
  vlm_linear (ops, &l->k_proj, h, M, k, VLM_ACT_NONE, NULL);
  vlm_linear (ops, &l->v_proj, h, M, v, VLM_ACT_NONE, NULL);
  const VlmMask full = {FALSE, 0, 0};
  for (int f = 0; f < F; f++) {   /* frames attend within themselves */
    size_t o = (size_t) f * T * D;
    vlm_attention (ops, q + o, D, k + o, D, v + o, D, T, T, c->num_heads, c->num_heads, hd,
                   1.0f / sqrtf ((float) hd), &full, h + o, D);
  }
  vlm_linear (ops, &l->out_proj, h, M, x, VLM_ACT_NONE, x);
  vlm_arena_rewind (arena, mark);

  h = vlm_arena_new (arena, float, (size_t) M * D);
  float *mid = vlm_arena_new (arena, float, (size_t) M * c->intermediate_size);
  vlm_layer_norm (ops, x, M, D, l->layer_norm2_w, l->layer_norm2_b, c->eps, h);
  vlm_linear (ops, &l->fc1, h, M, mid, c->act, NULL);
  vlm_linear (ops, &l->fc2, mid, M, x, VLM_ACT_NONE, x);
  vlm_arena_rewind (arena, mark);
}

void
vlm_vit_forward (const VlmVit *vit, VlmOps *ops, VlmArena *arena, const float *pixels, int F,
                 int n_layers, gboolean post_norm, float *out)
{
  const VlmVitConfig *c = &vit->cfg;
  g_assert (n_layers >= 0 && n_layers <= c->num_layers);
  embed (vit, ops, arena, pixels, F, out);
  for (int i = 0; i < n_layers; i++)
    layer_forward (vit, &vit->layers[i], ops, arena, F, out);
  if (post_norm)
    vlm_layer_norm (ops, out, F * c->n_tokens, c->hidden_size, vit->post_layernorm_w,
                    vit->post_layernorm_b, c->eps, out);
}
