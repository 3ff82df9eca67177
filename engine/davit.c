/* davit.c — the DaViT backbone (davit.h).
 * ref: transformers models/florence2/modeling_florence2.py */
#include "davit.h"

#include <math.h>

#define DAVIT_EPS 1e-5f   /* nn.LayerNorm's default: the backbone sets none */

/* ---------------------------------------------------------------- config */

/* The per-stage list `key`: exactly n_stages entries (ints, or booleans
 * into `flags`). */
static gboolean
read_list (JsonObject *vc, const char *key, int n, int *ints, gboolean *flags, const char *file, GError **error)
{
  JsonNode *node = vlm_json_member (vc, key);
  JsonArray *a = node && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
  gboolean ok = a && (int) json_array_get_length (a) == n;
  for (int i = 0; ok && i < n; i++) {
    JsonNode *e = json_array_get_element (a, i);
    GType t = JSON_NODE_HOLDS_VALUE (e) ? json_node_get_value_type (e) : G_TYPE_INVALID;
    if (flags && (ok = t == G_TYPE_BOOLEAN))
      flags[i] = json_node_get_boolean (e);
    else if (!flags && (ok = t == G_TYPE_INT64 && json_node_get_int (e) > 0 && json_node_get_int (e) <= 65536))
      ints[i] = (int) json_node_get_int (e);
  }
  if (!ok)
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: vision_config.%s must be a list of %d %s", file, key,
                 n, flags ? "booleans" : "positive integers");
  return ok;
}

gboolean
vlm_davit_config_read (VlmDavitConfig *c, JsonObject *vc, const char *file, GError **error)
{
  memset (c, 0, sizeof *c);
  JsonNode *dims = vc ? vlm_json_member (vc, "embed_dim") : NULL;
  c->n_stages = dims && JSON_NODE_HOLDS_ARRAY (dims) ? (int) json_array_get_length (json_node_get_array (dims)) : 0;
  if (c->n_stages < 1 || c->n_stages > VLM_DAVIT_MAX_STAGES) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: vision_config.embed_dim must list 1 to %d stages",
                 file, VLM_DAVIT_MAX_STAGES);
    return FALSE;
  }
  int n = c->n_stages;
  if (!read_list (vc, "embed_dim", n, c->embed_dim, NULL, file, error) ||
      !read_list (vc, "depths", n, c->depths, NULL, file, error) ||
      !read_list (vc, "num_heads", n, c->num_heads, NULL, file, error) ||
      !read_list (vc, "num_groups", n, c->num_groups, NULL, file, error) ||
      !read_list (vc, "patch_size", n, c->patch_size, NULL, file, error) ||
      !read_list (vc, "patch_stride", n, c->patch_stride, NULL, file, error) ||
      !read_list (vc, "patch_prenorm", n, NULL, c->patch_prenorm, file, error) ||
      !vlm_json_positive_int (vc, "in_channels", 3, file, &c->in_channels, error) ||
      !vlm_json_positive_int (vc, "window_size", 12, file, &c->window_size, error))
    return FALSE;
  /* padding may be 0: read it as a plain list */
  if (vlm_json_int_list (vc, "patch_padding", c->patch_padding, n) != n) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: vision_config.patch_padding must list %d integers",
                 file, n);
    return FALSE;
  }
  double ratio = vlm_json_double (vc, "mlp_ratio", 4.0);
  const char *act = vlm_json_string (vc, "activation_function", "gelu");
  c->qkv_bias = vlm_json_bool (vc, "qkv_bias", TRUE);
  for (int s = 0; s < n; s++) {
    c->mlp_hidden[s] = (int) (c->embed_dim[s] * ratio);
    if (c->embed_dim[s] % c->num_heads[s] || c->embed_dim[s] % c->num_groups[s] || c->mlp_hidden[s] < 1 ||
        c->patch_padding[s] < 0 || c->patch_padding[s] >= c->patch_size[s]) {
      g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG,
                   "%s: vision_config stage %d: embed_dim %d, %d heads, %d groups, mlp_ratio %g, patch %d padding %d "
                   "do not fit", file, s, c->embed_dim[s], c->num_heads[s], c->num_groups[s], ratio,
                   c->patch_size[s], c->patch_padding[s]);
      return FALSE;
    }
  }
  if (!vlm_act_from_name (act, &c->act)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: vision_config.activation_function \"%s\" not supported",
                 file, act);
    return FALSE;
  }
  return TRUE;
}

/* ---------------------------------------------------------------- load */

/* A Conv2d's weight [out, in / groups, k, k] and bias [out]. */
static gboolean
load_conv (VlmConvW *c, VlmWeights *w, int out, int in, int k, int stride, int pad, int groups, GError **error,
           const char *prefix)
{
  int64_t ws[] = {out, in / groups, k, k}, bs[] = {out};
  *c = (VlmConvW) {out, in, k, stride, pad, groups, NULL, NULL};
  return (c->weight = vlm_weights_f32 (w, error, 4, ws, "%s.weight", prefix)) &&
         (c->bias = vlm_weights_f32 (w, error, 1, bs, "%s.bias", prefix));
}

static gboolean
load_norm (const float **wt, const float **b, VlmWeights *w, int dim, GError **error, const char *prefix)
{
  int64_t d[] = {dim};
  return (*wt = vlm_weights_f32 (w, error, 1, d, "%s.weight", prefix)) &&
         (*b = vlm_weights_f32 (w, error, 1, d, "%s.bias", prefix));
}

static gboolean
load_half (VlmDavitHalf *h, const VlmDavitConfig *c, int s, VlmWeights *w, const char *p, const char *attn,
           GError **error)
{
  int C = c->embed_dim[s], I = c->mlp_hidden[s];
  g_autofree char *conv1 = g_strconcat (p, ".conv1", NULL), *conv2 = g_strconcat (p, ".conv2", NULL);
  g_autofree char *norm1 = g_strconcat (p, ".norm1", NULL), *norm2 = g_strconcat (p, ".norm2", NULL);
  return load_conv (&h->conv1, w, C, C, 3, 1, 1, C, error, conv1) &&
         load_conv (&h->conv2, w, C, C, 3, 1, 1, C, error, conv2) &&
         load_norm (&h->norm1_w, &h->norm1_b, w, C, error, norm1) &&
         load_norm (&h->norm2_w, &h->norm2_b, w, C, error, norm2) &&
         vlm_weights_linear (w, &h->qkv, c->qkv_bias, 3 * C, C, error, "%s.%s.qkv", p, attn) &&
         vlm_weights_linear (w, &h->proj, TRUE, C, C, error, "%s.%s.proj", p, attn) &&
         vlm_weights_linear (w, &h->fc1, TRUE, I, C, error, "%s.ffn.fc1", p) &&
         vlm_weights_linear (w, &h->fc2, TRUE, C, I, error, "%s.ffn.fc2", p);
}

gboolean
vlm_davit_load (VlmDavit *v, VlmWeights *w, const char *prefix, GError **error)
{
  const VlmDavitConfig *c = &v->cfg;
  for (int s = 0; s < c->n_stages; s++) {
    int in = s ? c->embed_dim[s - 1] : c->in_channels;
    g_autofree char *conv = g_strdup_printf ("%sconvs.%d.conv", prefix, s);
    g_autofree char *norm = g_strdup_printf ("%sconvs.%d.norm", prefix, s);
    VlmDavitConvEmbed *e = &v->convs[s];
    if (!vlm_weights_check_count (w, c->depths[s], "vision_config.depths", error) ||
        !load_conv (&e->conv, w, c->embed_dim[s], in, c->patch_size[s], c->patch_stride[s], c->patch_padding[s], 1,
                    error, conv) ||
        !load_norm (&e->norm_w, &e->norm_b, w, c->patch_prenorm[s] ? in : c->embed_dim[s], error, norm))
      return FALSE;
    v->blocks[s] = g_new0 (VlmDavitBlock, c->depths[s]);
    for (int b = 0; b < c->depths[s]; b++) {
      g_autofree char *sp = g_strdup_printf ("%sblocks.%d.%d.spatial_block", prefix, s, b);
      g_autofree char *ch = g_strdup_printf ("%sblocks.%d.%d.channel_block", prefix, s, b);
      if (!load_half (&v->blocks[s][b].spatial, c, s, w, sp, "window_attn", error) ||
          !load_half (&v->blocks[s][b].channel, c, s, w, ch, "channel_attn", error))
        return FALSE;
    }
  }
  return TRUE;
}

static void
half_clear (VlmDavitHalf *h)
{
  VlmLinearW *all[] = {&h->qkv, &h->proj, &h->fc1, &h->fc2};
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    vlm_linear_clear (all[i]);
}

void
vlm_davit_clear (VlmDavit *v)
{
  for (int s = 0; s < v->cfg.n_stages; s++) {
    for (int b = 0; v->blocks[s] && b < v->cfg.depths[s]; b++) {
      half_clear (&v->blocks[s][b].spatial);
      half_clear (&v->blocks[s][b].channel);
    }
    g_free (v->blocks[s]);
    v->blocks[s] = NULL;
  }
}

/* ---------------------------------------------------------------- sizes */

/* The grid side after stage s's patch embedding, for input side `side`. */
static int
stage_side (const VlmDavit *v, int s, int side)
{
  return vlm_conv_out_size (&v->convs[s].conv, side);
}

int
vlm_davit_out_side (const VlmDavit *v, int size)
{
  int side = size;
  for (int s = 0; s < v->cfg.n_stages && side > 0; s++)
    side = stage_side (v, s, side);
  return MAX (side, 0);
}

/* Floats a half of stage s needs beside x on a side² grid: t and u, then
 * the larger of the two attentions' temporaries (window: the padded
 * windows, their qkv, context and projection; channel: qkv, its
 * transpose, the context and its transpose). */
static size_t
block_floats (const VlmDavit *v, int s, int side)
{
  size_t C = v->cfg.embed_dim[s], N = (size_t) side * side, ws = v->cfg.window_size;
  size_t padded = (side + ws - 1) / ws * ws;
  return 2 * N * C + MAX (6 * padded * padded * C, 8 * N * C);
}

size_t
vlm_davit_arena_size (const VlmDavit *v, int size)
{
  size_t big = (size_t) v->cfg.in_channels * size * size, work = 0;
  int side = size;
  for (int s = 0; s < v->cfg.n_stages; s++) {
    size_t in = (size_t) side * side * (s ? v->cfg.embed_dim[s - 1] : v->cfg.in_channels);
    side = stage_side (v, s, side);
    size_t out = (size_t) side * side * v->cfg.embed_dim[s];
    big = MAX (big, MAX (in, out));
    work = MAX (work, block_floats (v, s, side));
  }
  return (3 * big + work) * sizeof (float) + 16 * 64;
}

/* ---------------------------------------------------------------- attention */

/* x [H, W, C] += proj(window attention of u [H, W, C]): the grid padded
 * with zero rows to whole windows (the padding's keys are qkv's bias, as
 * HF's F.pad makes them), each window of ws² tokens attending within
 * itself, scale head_dim^-0.5, no mask. */
static void
window_attention (const VlmDavitHalf *h, const VlmDavitConfig *c, int s, VlmOps *ops, VlmArena *arena, const float *u,
                  int side, float *x)
{
  int C = c->embed_dim[s], ws = c->window_size, nw = (side + ws - 1) / ws, T = ws * ws;
  int heads = c->num_heads[s], hd = C / heads;
  size_t rows = (size_t) nw * nw * T, mark = vlm_arena_mark (arena);
  float *win = vlm_arena_new (arena, float, rows * C), *qkv = vlm_arena_new (arena, float, rows * 3 * C);
  float *o = vlm_arena_new (arena, float, rows * C), *y = vlm_arena_new (arena, float, rows * C);
  /* window (wy, wx), token (ty, tx) ↔ grid (wy·ws + ty, wx·ws + tx) */
  for (int wy = 0; wy < nw; wy++)
    for (int wx = 0; wx < nw; wx++)
      for (int t = 0; t < T; t++) {
        int gy = wy * ws + t / ws, gx = wx * ws + t % ws;
        float *dst = win + (((size_t) wy * nw + wx) * T + t) * C;
        if (gy < side && gx < side)
          memcpy (dst, u + ((size_t) gy * side + gx) * C, C * sizeof (float));
        else
          memset (dst, 0, C * sizeof (float));
      }
  vlm_linear (ops, &h->qkv, win, (int) rows, qkv, VLM_ACT_NONE, NULL);
  for (int wi = 0; wi < nw * nw; wi++) {
    const float *q = qkv + (size_t) wi * T * 3 * C;
    vlm_attention (ops, q, 3 * C, q + C, 3 * C, q + 2 * C, 3 * C, T, T, heads, heads, hd, 1.0f / sqrtf ((float) hd),
                   NULL, o + (size_t) wi * T * C, C);
  }
  vlm_linear (ops, &h->proj, o, (int) rows, y, VLM_ACT_NONE, NULL);
  for (int gy = 0; gy < side; gy++)
    for (int gx = 0; gx < side; gx++) {
      const float *src = y + ((((size_t) (gy / ws) * nw + gx / ws) * T) + (gy % ws) * ws + gx % ws) * C;
      float *dst = x + ((size_t) gy * side + gx) * C;
      for (int j = 0; j < C; j++) dst[j] += src[j];
    }
  vlm_arena_rewind (arena, mark);
}

/* x [N, C] += proj(channel attention of u [N, C]): within each of G
 * groups of C/G channels, channel i attends to channel j by the dot
 * product of their N values, scale N^-0.5. Transposed, the channels are
 * the rows the attention op takes: one head of head_dim N per group. */
static void
channel_attention (const VlmDavitHalf *h, const VlmDavitConfig *c, int s, VlmOps *ops, VlmArena *arena,
                   const float *u, int N, float *x)
{
  int C = c->embed_dim[s], G = c->num_groups[s], Cg = C / G;
  size_t mark = vlm_arena_mark (arena);
  float *qkv = vlm_arena_new (arena, float, (size_t) N * 3 * C), *qkvt = vlm_arena_new (arena, float, (size_t) N * 3 * C);
  float *ot = vlm_arena_new (arena, float, (size_t) N * C), *o = vlm_arena_new (arena, float, (size_t) N * C);
  vlm_linear (ops, &h->qkv, u, N, qkv, VLM_ACT_NONE, NULL);
  vlm_transpose (ops, qkv, N, 3 * C, qkvt);
  for (int g = 0; g < G; g++) {
    const float *q = qkvt + (size_t) g * Cg * N;
    vlm_attention (ops, q, N, q + (size_t) C * N, N, q + (size_t) 2 * C * N, N, Cg, Cg, 1, 1, N,
                   1.0f / sqrtf ((float) N), NULL, ot + (size_t) g * Cg * N, N);
  }
  vlm_transpose (ops, ot, C, N, o);
  vlm_linear (ops, &h->proj, o, N, x, VLM_ACT_NONE, x);
  vlm_arena_rewind (arena, mark);
}

/* ---------------------------------------------------------------- forward */

/* One half in place on x [side², C]:
 *   t = x + conv1(x);  x = t + attn(norm1(t))
 *   t = x + conv2(x);  x = t + ffn(norm2(t)) */
static void
half_forward (const VlmDavitHalf *h, const VlmDavitConfig *c, int s, gboolean spatial, VlmOps *ops, VlmArena *arena,
              float *x, int side)
{
  int C = c->embed_dim[s], N = side * side;
  size_t mark = vlm_arena_mark (arena);
  float *t = vlm_arena_new (arena, float, (size_t) N * C), *u = vlm_arena_new (arena, float, (size_t) N * C);
  vlm_conv2d (ops, &h->conv1, x, side, side, t, x);
  vlm_layer_norm (ops, t, N, C, h->norm1_w, h->norm1_b, DAVIT_EPS, u);
  memcpy (x, t, (size_t) N * C * sizeof (float));
  if (spatial)
    window_attention (h, c, s, ops, arena, u, side, x);
  else
    channel_attention (h, c, s, ops, arena, u, N, x);
  vlm_conv2d (ops, &h->conv2, x, side, side, t, x);
  vlm_layer_norm (ops, t, N, C, h->norm2_w, h->norm2_b, DAVIT_EPS, u);
  vlm_mlp (ops, &h->fc1, c->act, &h->fc2, u, N, x, t);
  vlm_arena_rewind (arena, mark);
}

void
vlm_davit_forward (const VlmDavit *v, VlmOps *ops, VlmArena *arena, const float *pixels, int size, float *out)
{
  const VlmDavitConfig *c = &v->cfg;
  size_t mark = vlm_arena_mark (arena), cap = 0;
  int side = size;
  for (int s = 0; s < c->n_stages; s++) {
    int in = s ? c->embed_dim[s - 1] : c->in_channels;
    cap = MAX (cap, (size_t) side * side * in);
    side = stage_side (v, s, side);
    cap = MAX (cap, (size_t) side * side * c->embed_dim[s]);
  }
  float *a = vlm_arena_new (arena, float, cap), *b = vlm_arena_new (arena, float, cap);
  float *n = vlm_arena_new (arena, float, cap);
  vlm_transpose (ops, pixels, c->in_channels, size * size, a);   /* CHW → HWC */
  side = size;
  for (int s = 0; s < c->n_stages; s++) {
    const VlmDavitConvEmbed *e = &v->convs[s];
    int in = s ? c->embed_dim[s - 1] : c->in_channels, C = c->embed_dim[s];
    const float *src = a;
    if (c->patch_prenorm[s]) {
      vlm_layer_norm (ops, a, side * side, in, e->norm_w, e->norm_b, DAVIT_EPS, n);
      src = n;
    }
    vlm_conv2d (ops, &e->conv, src, side, side, b, NULL);
    side = stage_side (v, s, side);
    if (!c->patch_prenorm[s])
      vlm_layer_norm (ops, b, side * side, C, e->norm_w, e->norm_b, DAVIT_EPS, b);
    for (int k = 0; k < c->depths[s]; k++) {
      half_forward (&v->blocks[s][k].spatial, c, s, TRUE, ops, arena, b, side);
      half_forward (&v->blocks[s][k].channel, c, s, FALSE, ops, arena, b, side);
    }
    float *swap = a;
    a = b;
    b = swap;
  }
  memcpy (out, a, (size_t) side * side * c->embed_dim[c->n_stages - 1] * sizeof (float));
  vlm_arena_rewind (arena, mark);
}
