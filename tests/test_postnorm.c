/* test_postnorm.c — the post-norm layer's cross-attention, which no model
 * uses yet (BLIP's and BART's decoders will): over a memory of one row the
 * softmax is 1, so the block adds out(value(memory)) to every query row
 * whatever its queries and keys. The layer's result is checked against the
 * three blocks written out with the ops. */
#include "postnorm.h"

#include <math.h>

enum { D = 8, HEADS = 2, I = 16, DM = 4, N = 3 };

static float *
randoms (size_t n, guint32 *seed)
{
  float *v = g_new (float, n);
  for (size_t i = 0; i < n; i++) {
    *seed = *seed * 1664525u + 1013904223u;
    v[i] = ((float) (*seed >> 8) / (float) (1 << 24) - 0.5f) * 0.5f;
  }
  return v;
}

/* A linear [n, k] with bias, its data kept in `keep`. */
static void
linear (VlmLinearW *lin, int n, int k, guint32 *seed, GPtrArray *keep)
{
  float *w = randoms ((size_t) n * k, seed), *b = randoms (n, seed);
  g_ptr_array_add (keep, w);
  g_ptr_array_add (keep, b);
  VlmTensor wt = {w, VLM_DTYPE_F32, 2, {n, k}}, bt = {b, VLM_DTYPE_F32, 1, {n}};
  g_assert_true (vlm_linear_init (lin, "test", &wt, &bt, NULL));
}

static void
attn_block (VlmPostNormAttn *a, int dkv, const float *ones, const float *zeros, guint32 *seed, GPtrArray *keep)
{
  linear (&a->query, D, D, seed, keep);
  linear (&a->key, D, dkv, seed, keep);
  linear (&a->value, D, dkv, seed, keep);
  linear (&a->out, D, D, seed, keep);
  a->ln_w = ones;
  a->ln_b = zeros;
}

static void
test_cross_one_row (void)
{
  const VlmPostNormConfig cfg = {D, I, HEADS, 1e-5f, VLM_ACT_GELU_ERF};
  const float ones[D] = {1, 1, 1, 1, 1, 1, 1, 1}, zeros[D] = {0};
  guint32 seed = 7;
  g_autoptr (GPtrArray) keep = g_ptr_array_new_with_free_func (g_free);
  VlmPostNormLayer l = {0};
  attn_block (&l.self_attn, D, ones, zeros, &seed, keep);
  l.has_cross = TRUE;
  attn_block (&l.cross_attn, DM, ones, zeros, &seed, keep);
  linear (&l.fc1, I, D, &seed, keep);
  linear (&l.fc2, D, I, &seed, keep);
  l.out_ln_w = ones;
  l.out_ln_b = zeros;
  g_autofree float *x = randoms (N * D, &seed), *memory = randoms (DM, &seed);

  VlmOps *ops = vlm_ops_new (VLM_BACKEND_BLAS, 1, NULL);
  VlmArena arena;
  g_assert_true (vlm_arena_init (&arena, vlm_kv_cache_bytes (1, 1, N, HEADS, D / HEADS) + 64 * 1024));
  VlmKvCache cache;
  vlm_kv_cache_init (&cache, &arena, 1, 1, N, HEADS, D / HEADS);

  /* the three blocks, one op at a time */
  float want[N * D], q[N * D], k[N * D], v[N * D], a[N * D], vm[D], om[D];
  memcpy (want, x, sizeof want);
  vlm_linear (ops, &l.self_attn.query, x, N, q, VLM_ACT_NONE, NULL);
  vlm_linear (ops, &l.self_attn.key, x, N, k, VLM_ACT_NONE, NULL);
  vlm_linear (ops, &l.self_attn.value, x, N, v, VLM_ACT_NONE, NULL);
  vlm_attention (ops, q, D, k, D, v, D, N, N, HEADS, HEADS, D / HEADS, 1.0f / sqrtf (D / HEADS), NULL, a, D);
  vlm_linear (ops, &l.self_attn.out, a, N, want, VLM_ACT_NONE, want);
  vlm_layer_norm (ops, want, N, D, ones, zeros, cfg.eps, want);
  vlm_linear (ops, &l.cross_attn.value, memory, 1, vm, VLM_ACT_NONE, NULL);
  vlm_linear (ops, &l.cross_attn.out, vm, 1, om, VLM_ACT_NONE, NULL);
  for (int i = 0; i < N; i++)
    for (int j = 0; j < D; j++)
      want[i * D + j] += om[j];
  vlm_layer_norm (ops, want, N, D, ones, zeros, cfg.eps, want);
  vlm_mlp (ops, &l.fc1, cfg.act, &l.fc2, want, N, want, want);
  vlm_layer_norm (ops, want, N, D, ones, zeros, cfg.eps, want);

  const VlmMask none = {FALSE, 0, 0};
  const VlmPostNormCross cross = {memory, 1};
  vlm_postnorm_layer_forward (&cfg, &l, ops, &arena, &cache, 0, x, 1, N, 0, &none, &cross, FALSE);
  for (int i = 0; i < N * D; i++)
    g_assert_cmpfloat_with_epsilon (x[i], want[i], 1e-5);

  VlmLinearW *all[] = {&l.self_attn.query, &l.self_attn.key, &l.self_attn.value, &l.self_attn.out,
                       &l.cross_attn.query, &l.cross_attn.key, &l.cross_attn.value, &l.cross_attn.out,
                       &l.fc1, &l.fc2};
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    vlm_linear_clear (all[i]);
  vlm_arena_clear (&arena);
  vlm_ops_free (ops);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/postnorm/cross-attention-one-row", test_cross_one_row);
  return g_test_run ();
}
