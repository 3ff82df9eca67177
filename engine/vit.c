/* vit.c — ViT tower forward: patchify → embed → N pre-norm blocks → post-norm.
 * ref: transformers models/clip/modeling_clip.py, models/git/modeling_git.py,
 *      models/siglip/modeling_siglip.py */
#include "vit.h"

#include <math.h>

/* ---------------------------------------------------------------- config */

/* Hub configs leave out what equals the config class's default (git-base's
 * vision_config names little more than its patch size), so a missing size
 * takes the default of the class `model_type` names, as from_pretrained
 * does; an unknown model_type requires every size. */
typedef struct {
  const char *model_type;
  int hidden, intermediate, heads, layers, image, patch;
  const char *act;   /* hidden_act and layer_norm_eps where they differ from */
  float eps;         /* the caller's CLIP/SigLIP defaults (NULL, 0: the caller's) */
} HfDefaults;

static const HfDefaults hf_default_table[] = {
  {"git_vision_model", 768, 3072, 12, 12, 224, 16},      /* GitVisionConfig */
  {"clip_vision_model", 768, 3072, 12, 12, 224, 32},     /* CLIPVisionConfig */
  {"siglip_vision_model", 768, 3072, 12, 12, 224, 16},   /* SiglipVisionConfig */
  {"clip_text_model", 512, 2048, 8, 12, 0, 0},           /* CLIPTextConfig */
  {"blip_vision_model", 768, 3072, 12, 12, 384, 16, "gelu", 1e-5f},   /* BlipVisionConfig */
  {"vit", 768, 3072, 12, 12, 224, 16, "gelu", 1e-12f},                /* ViTConfig */
  {NULL, 0, 0, 0, 0, 0, 0},
};

static const HfDefaults *
hf_defaults (JsonObject *o)
{
  const char *type = vlm_json_string (o, "model_type", "");
  const HfDefaults *d = hf_default_table;
  while (d->model_type && strcmp (d->model_type, type) != 0)
    d++;
  return d;
}

gboolean
vlm_vit_encoder_config_read (VlmVitConfig *c, JsonObject *o, const char *file, const char *default_act,
                             float default_eps, GError **error)
{
  memset (c, 0, sizeof *c);
  const HfDefaults *d = hf_defaults (o);
  if (!vlm_json_positive_int (o, "hidden_size", d->hidden, file, &c->hidden_size, error) ||
      !vlm_json_positive_int (o, "intermediate_size", d->intermediate, file, &c->intermediate_size, error) ||
      !vlm_json_positive_int (o, "num_attention_heads", d->heads, file, &c->num_heads, error) ||
      !vlm_json_positive_int (o, "num_hidden_layers", d->layers, file, &c->num_layers, error))
    return FALSE;
  c->eps = (float) vlm_json_double (o, "layer_norm_eps", d->eps > 0 ? d->eps : default_eps);
  const char *act = vlm_json_string (o, "hidden_act", d->act ? d->act : default_act);
  if (!vlm_act_from_name (act, &c->act)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: hidden_act \"%s\" is not supported", file, act);
    return FALSE;
  }
  if (c->hidden_size % c->num_heads) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: hidden_size %d is not a multiple of %d heads",
                 file, c->hidden_size, c->num_heads);
    return FALSE;
  }
  return TRUE;
}

gboolean
vlm_vit_config_read (VlmVitConfig *c, JsonObject *vc, const char *file, gboolean clip_style,
                     GError **error)
{
  memset (c, 0, sizeof *c);
  if (!vc) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: \"vision_config\" is missing", file);
    return FALSE;
  }
  if (!vlm_vit_encoder_config_read (c, vc, file, clip_style ? "quick_gelu" : "gelu_pytorch_tanh",
                                    clip_style ? 1e-5f : 1e-6f, error) ||
      !vlm_json_positive_int (vc, "patch_size", hf_defaults (vc)->patch, file, &c->patch_size, error) ||
      !vlm_json_positive_int (vc, "image_size", hf_defaults (vc)->image, file, &c->image_size, error) ||
      (vlm_json_bool (vc, "add_time_attn", FALSE) &&
       !vlm_json_require_int (vc, "num_frames", file, &c->num_frames, error)))
    return FALSE;
  c->num_channels = vlm_json_int (vc, "num_channels", 3);
  if (c->patch_size > c->image_size || c->num_channels != 3) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG,
                 "%s: vision_config sizes are inconsistent (image %d / patch %d, channels %d)",
                 file, c->image_size, c->patch_size, c->num_channels);
    return FALSE;
  }
  c->class_token = c->pre_norm = clip_style;
  c->patch_bias = !clip_style;
  /* image_size // patch_size, as HF: the stride-P convolution leaves the
   * last image_size % patch_size rows and columns unread (SmolVLM2-2.2B:
   * 384 / 14 → 27). */
  c->grid = c->image_size / c->patch_size;
  c->n_tokens = c->grid * c->grid + (c->class_token ? 1 : 0);
  return TRUE;
}

/* ---------------------------------------------------------------- weights */

const VlmVitNames vlm_vit_clip_names = {
  .class_embedding = "embeddings.class_embedding",
  .patch_embedding = "embeddings.patch_embedding",
  .position_embedding = "embeddings.position_embedding.weight",
  .pre_layrnorm = "pre_layrnorm",
  .post_layernorm = "post_layernorm",
  .layers = "encoder.layers",
  .proj = {"q_proj", "k_proj", "v_proj", "out_proj"},
  .self_attn = "self_attn", .layer_norm1 = "layer_norm1", .fc1 = "mlp.fc1", .fc2 = "mlp.fc2",
  .layer_norm2 = "layer_norm2",
  .temporal_embedding = "temporal_embedding", .temporal_attn = "temporal_attn",
  .temporal_layer_norm1 = "temporal_layer_norm1",
};

const VlmVitNames vlm_vit_blip_names = {
  .class_embedding = "embeddings.class_embedding",
  .patch_embedding = "embeddings.patch_embedding",
  .position_embedding = "embeddings.position_embedding",
  .post_layernorm = "post_layernorm",
  .layers = "encoder.layers",
  .proj = {"qkv", "qkv", "qkv", "projection"},
  .self_attn = "self_attn", .layer_norm1 = "layer_norm1", .fc1 = "mlp.fc1", .fc2 = "mlp.fc2",
  .layer_norm2 = "layer_norm2",
};

const VlmVitNames vlm_vit_hf_names = {
  .class_embedding = "embeddings.cls_token",
  .patch_embedding = "embeddings.patch_embeddings.projection",
  .position_embedding = "embeddings.position_embeddings",
  .post_layernorm = "layernorm",
  .layers = "encoder.layer",
  .proj = {"attention.query", "attention.key", "attention.value", "output.dense"},
  .self_attn = "attention", .layer_norm1 = "layernorm_before", .fc1 = "intermediate.dense", .fc2 = "output.dense",
  .layer_norm2 = "layernorm_after",
};

static gboolean
load_attn (VlmVitAttn *a, int D, const VlmVitNames *n, VlmWeights *w, const char *p, int i, const char *name,
           GError **error)
{
  const char *fmt = "%s%s.%d.%s.%s";
  VlmLinearW *lins[] = {&a->q_proj, &a->k_proj, &a->v_proj, &a->out_proj};
  for (int j = 0; j < 4; j++) {
    int part, n_parts;   /* BLIP's q, k, v are one "qkv" */
    vlm_weights_fused_part (n->proj, 4, j, &part, &n_parts);
    if (!vlm_weights_linear_part (w, lins[j], FALSE, TRUE, part, n_parts, D, D, error, fmt, p, n->layers, i, name,
                                  n->proj[j]))
      return FALSE;
  }
  return TRUE;
}

static gboolean
load_layer (VlmVitLayer *l, const VlmVitConfig *c, const VlmVitNames *n, VlmWeights *w, const char *p, int i,
            GError **error)
{
  int D = c->hidden_size, I = c->intermediate_size;
  int64_t d[] = {D}, temporal[] = {1, c->num_frames, D};
  const char *L = n->layers;
#define LN(field, name)                                                                  \
  (l->field##_w = vlm_weights_f32 (w, error, 1, d, "%s%s.%d.%s.weight", p, L, i, name)) && \
  (l->field##_b = vlm_weights_f32 (w, error, 1, d, "%s%s.%d.%s.bias", p, L, i, name))
  if (!(load_attn (&l->self_attn, D, n, w, p, i, n->self_attn, error) &&
        vlm_weights_linear (w, &l->fc1, TRUE, I, D, error, "%s%s.%d.%s", p, L, i, n->fc1) &&
        vlm_weights_linear (w, &l->fc2, TRUE, D, I, error, "%s%s.%d.%s", p, L, i, n->fc2) &&
        LN (layer_norm1, n->layer_norm1) && LN (layer_norm2, n->layer_norm2)))
    return FALSE;
  return !c->num_frames ||
         ((l->temporal_embedding =
               vlm_weights_f32 (w, error, 3, temporal, "%s%s.%d.%s", p, L, i, n->temporal_embedding)) &&
          load_attn (&l->temporal_attn, D, n, w, p, i, n->temporal_attn, error) &&
          LN (temporal_layer_norm1, n->temporal_layer_norm1));
#undef LN
}

VlmVitLayer *
vlm_vit_layers_load (const VlmVitConfig *c, const VlmVitNames *n, VlmWeights *w, const char *p, GError **error)
{
  if (!vlm_weights_check_count (w, c->num_layers, "vision num_hidden_layers", error))
    return NULL;
  VlmVitLayer *layers = g_new0 (VlmVitLayer, c->num_layers);
  for (int i = 0; i < c->num_layers; i++)
    if (!load_layer (&layers[i], c, n, w, p, i, error)) {
      vlm_vit_layers_free (c, layers);
      return NULL;
    }
  return layers;
}

void
vlm_vit_layers_free (const VlmVitConfig *c, VlmVitLayer *layers)
{
  for (int i = 0; layers && i < c->num_layers; i++) {
    VlmVitLayer *l = &layers[i];
    VlmVitAttn *attn[] = {&l->self_attn, &l->temporal_attn};
    for (guint j = 0; j < G_N_ELEMENTS (attn); j++) {
      vlm_linear_clear (&attn[j]->q_proj);
      vlm_linear_clear (&attn[j]->k_proj);
      vlm_linear_clear (&attn[j]->v_proj);
      vlm_linear_clear (&attn[j]->out_proj);
    }
    vlm_linear_clear (&l->fc1);
    vlm_linear_clear (&l->fc2);
  }
  g_free (layers);
}

gboolean
vlm_vit_load (VlmVit *vit, const VlmVitNames *n, VlmWeights *w, const char *p, GError **error)
{
  const VlmVitConfig *c = &vit->cfg;
  int D = c->hidden_size, P = c->patch_size;
  int64_t d[] = {D}, conv[] = {D, c->num_channels, P, P}, pos[] = {c->n_tokens, D};

  /* A stride-P conv over P×P patches is a Linear over flattened (c, ky, kx). */
  g_autofree char *conv_name = g_strdup_printf ("%s%s.weight", p, n->patch_embedding);
  const VlmTensor *cw = vlm_safetensors_get (w->st, conv_name, 4, conv, error);
  if (!cw)
    return FALSE;
  VlmTensor flat = *cw;
  flat.ndim = 2;
  flat.shape[1] = (int64_t) c->num_channels * P * P;
  g_autofree char *bias_name = g_strdup_printf ("%s%s.bias", p, n->patch_embedding);
  const VlmTensor *cb = c->patch_bias ? vlm_safetensors_get (w->st, bias_name, 1, d, error) : NULL;
  if ((c->patch_bias && !cb) || !vlm_linear_init (&vit->patch_embedding, conv_name, &flat, cb, error))
    return FALSE;

  if (c->class_token &&
      !(vit->class_embedding = vlm_weights_f32_squeezed (w, error, 1, d, "%s%s", p, n->class_embedding)))
    return FALSE;
  if (!(vit->position_embedding = vlm_weights_f32_squeezed (w, error, 2, pos, "%s%s", p, n->position_embedding)))
    return FALSE;
  if (c->pre_norm &&
      !((vit->pre_layrnorm_w = vlm_weights_f32 (w, error, 1, d, "%s%s.weight", p, n->pre_layrnorm)) &&
        (vit->pre_layrnorm_b = vlm_weights_f32 (w, error, 1, d, "%s%s.bias", p, n->pre_layrnorm))))
    return FALSE;
  if (!((vit->post_layernorm_w = vlm_weights_f32 (w, error, 1, d, "%s%s.weight", p, n->post_layernorm)) &&
        (vit->post_layernorm_b = vlm_weights_f32 (w, error, 1, d, "%s%s.bias", p, n->post_layernorm))))
    return FALSE;
  return (vit->layers = vlm_vit_layers_load (c, n, w, p, error)) != NULL;
}

void
vlm_vit_clear (VlmVit *vit)
{
  vlm_linear_clear (&vit->patch_embedding);
  vlm_vit_layers_free (&vit->cfg, vit->layers);
  vit->layers = NULL;
}

/* ---------------------------------------------------------------- forward */

size_t
vlm_vit_arena_size (const VlmVit *vit, int n_frames)
{
  const VlmVitConfig *c = &vit->cfg;
  size_t rows = (size_t) n_frames * c->n_tokens, P = c->patch_size;
  size_t embed = (size_t) n_frames * c->grid * c->grid * (c->num_channels * P * P + c->hidden_size);
  size_t layer = rows * 4 * (size_t) c->hidden_size;   /* h, q, k, v (vlm_mlp's hidden is the ops') */
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

/* x += out_proj(attn(norm(x))) for x [M, D] holding n_seq sequences of `len`
 * rows. Sequence s = g·inner + i (i < inner) is rows (g·len + t)·inner + i,
 * t < len: inner = 1 gives runs of contiguous rows (the tokens of a frame),
 * inner = tokens per frame gives one token across a clip's frames. The row
 * stride covers both, so nothing is transposed. */
static void
attention_block (const VlmVitConfig *c, const VlmVitAttn *a, const float *norm_w, const float *norm_b,
                 VlmOps *ops, VlmArena *arena, float *x, int n_seq, int len, int inner, gboolean causal)
{
  int D = c->hidden_size, M = n_seq * len, hd = D / c->num_heads, ld = inner * D;
  size_t mark = vlm_arena_mark (arena);
  float *h = vlm_arena_new (arena, float, (size_t) M * D);
  float *q = vlm_arena_new (arena, float, (size_t) M * D);
  float *k = vlm_arena_new (arena, float, (size_t) M * D);
  float *v = vlm_arena_new (arena, float, (size_t) M * D);
  vlm_layer_norm (ops, x, M, D, norm_w, norm_b, c->eps, h);
  vlm_linear_multi (ops, (const VlmLinearW *[]) { &a->q_proj, &a->k_proj, &a->v_proj }, NULL, 3, h, M,
                    (float *[]) { q, k, v });
  const VlmMask mask = {causal, 0, 0};
  for (int s = 0; s < n_seq; s++) {
    size_t o = ((size_t) (s / inner) * len * inner + s % inner) * D;
    vlm_attention (ops, q + o, ld, k + o, ld, v + o, ld, len, len, c->num_heads, c->num_heads, hd,
                   1.0f / sqrtf ((float) hd), &mask, h + o, ld);
  }
  vlm_linear (ops, &a->out_proj, h, M, x, VLM_ACT_NONE, x);
  vlm_arena_rewind (arena, mark);
}

/* ref: LanguageBind CLIPEncoderLayer.forward with add_time_attn, on x
 * [clips · T · N, D] (T = num_frames, N tokens per frame):
 *   x[b, t, n] += temporal_embedding[t]          (stays in the residual stream)
 *   x += temporal_attn(temporal_layer_norm1(x))   over t, for each (b, n) */
static void
temporal_block (const VlmVitConfig *c, const VlmVitLayer *l, VlmOps *ops, VlmArena *arena, float *x,
                int n_frames, int n_tokens)
{
  int D = c->hidden_size, T = c->num_frames, clips = n_frames / T;
  g_assert (n_frames % T == 0);
  for (int f = 0; f < n_frames; f++) {
    const float *te = l->temporal_embedding + (size_t) (f % T) * D;
    for (int n = 0; n < n_tokens; n++) {
      float *xr = x + ((size_t) f * n_tokens + n) * D;
      for (int j = 0; j < D; j++)
        xr[j] += te[j];
    }
  }
  attention_block (c, &l->temporal_attn, l->temporal_layer_norm1_w, l->temporal_layer_norm1_b, ops, arena, x,
                   clips * n_tokens, T, n_tokens, FALSE);
}

/* ref: CLIPEncoderLayer.forward, in place on x [n_seq · len, D]:
 *   [temporal block;]  x = x + self_attn(layer_norm1(x));  x = x + fc2(act(fc1(layer_norm2(x)))) */
void
vlm_vit_layer_forward (const VlmVitConfig *c, const VlmVitLayer *l, VlmOps *ops, VlmArena *arena, float *x,
                       int n_seq, int len, gboolean causal)
{
  int D = c->hidden_size, M = n_seq * len;
  if (l->temporal_embedding)
    temporal_block (c, l, ops, arena, x, n_seq, len);
  attention_block (c, &l->self_attn, l->layer_norm1_w, l->layer_norm1_b, ops, arena, x, n_seq, len, 1, causal);

  size_t mark = vlm_arena_mark (arena);
  float *h = vlm_arena_new (arena, float, (size_t) M * D);
  vlm_layer_norm (ops, x, M, D, l->layer_norm2_w, l->layer_norm2_b, c->eps, h);
  vlm_mlp (ops, &l->fc1, c->act, &l->fc2, h, M, x, x);
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
    vlm_vit_layer_forward (c, &vit->layers[i], ops, arena, out, F, c->n_tokens, FALSE);
  if (post_norm)
    vlm_layer_norm (ops, out, F * c->n_tokens, c->hidden_size, vit->post_layernorm_w,
                    vit->post_layernorm_b, c->eps, out);
}

size_t
vlm_vit_clips_bytes (const VlmVit *vit, int F, int n)
{
  const VlmVitConfig *c = &vit->cfg;
  size_t frames = (size_t) n * F;
  return frames * ((size_t) c->num_channels * c->image_size * c->image_size + (size_t) c->n_tokens * c->hidden_size) *
             sizeof (float) + 4 * 64 + vlm_vit_arena_size (vit, (int) frames);
}

void
vlm_vit_forward_clips (const VlmVit *vit, VlmOps *ops, VlmArena *arena, const float *const *pixels, int n, int F,
                       int n_layers, gboolean post_norm, float *const *outs)
{
  const VlmVitConfig *c = &vit->cfg;
  size_t in = (size_t) F * c->num_channels * c->image_size * c->image_size, out = (size_t) F * c->n_tokens * c->hidden_size;
  size_t mark = vlm_arena_mark (arena);
  float *px = vlm_arena_new (arena, float, n * in), *y = vlm_arena_new (arena, float, n * out);
  for (int i = 0; i < n; i++)
    memcpy (px + i * in, pixels[i], in * sizeof (float));
  vlm_vit_forward (vit, ops, arena, px, n * F, n_layers, post_norm, y);
  for (int i = 0; i < n; i++)
    memcpy (outs[i], y + i * out, out * sizeof (float));
  vlm_arena_rewind (arena, mark);
}
