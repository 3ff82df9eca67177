/* test_postnorm.c — the layer's cross-attention (BLIP's, GPT-2's and
 * BART's decoders): over a memory of one row the softmax is 1, so the block
 * adds out(value(memory)) to every query row whatever its queries and keys.
 * The layer's result is checked against the three blocks written out with
 * the ops, in post-norm and pre-norm (GPT-2) order, for one sequence and
 * for two beams reading the one memory, whose keys and values are projected
 * once (the memory itself is NaN by the time the layer runs). */
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

/* The expected layer output for sequence x [N, D] (its own cache: it
 * attends to its N rows causally-free) written out op by op. */
static void
expected (const VlmPostNormConfig *cfg, const VlmPostNormLayer *l, VlmOps *ops, const float *x, const float *memory,
          float *want)
{
  float h[N * D], q[N * D], k[N * D], v[N * D], a[N * D], vm[D], om[D];
  const float *in = want;
  memcpy (want, x, sizeof h);
  if (cfg->pre_norm) {
    vlm_layer_norm (ops, want, N, D, l->self_attn.ln_w, l->self_attn.ln_b, cfg->eps, h);
    in = h;
  }
  vlm_linear (ops, &l->self_attn.query, in, N, q, VLM_ACT_NONE, NULL);
  vlm_linear (ops, &l->self_attn.key, in, N, k, VLM_ACT_NONE, NULL);
  vlm_linear (ops, &l->self_attn.value, in, N, v, VLM_ACT_NONE, NULL);
  vlm_attention (ops, q, D, k, D, v, D, N, N, HEADS, HEADS, D / HEADS, 1.0f / sqrtf (D / HEADS), NULL, a, D);
  vlm_linear (ops, &l->self_attn.out, a, N, want, VLM_ACT_NONE, want);
  if (!cfg->pre_norm)
    vlm_layer_norm (ops, want, N, D, l->self_attn.ln_w, l->self_attn.ln_b, cfg->eps, want);
  vlm_linear (ops, &l->cross_attn.value, memory, 1, vm, VLM_ACT_NONE, NULL);
  vlm_linear (ops, &l->cross_attn.out, vm, 1, om, VLM_ACT_NONE, NULL);
  for (int i = 0; i < N; i++)
    for (int j = 0; j < D; j++)
      want[i * D + j] += om[j];
  if (!cfg->pre_norm)
    vlm_layer_norm (ops, want, N, D, l->cross_attn.ln_w, l->cross_attn.ln_b, cfg->eps, want);
  in = want;
  if (cfg->pre_norm) {
    vlm_layer_norm (ops, want, N, D, l->out_ln_w, l->out_ln_b, cfg->eps, h);
    in = h;
  }
  vlm_mlp (ops, &l->fc1, cfg->act, &l->fc2, in, N, want, want);
  if (!cfg->pre_norm)
    vlm_layer_norm (ops, want, N, D, l->out_ln_w, l->out_ln_b, cfg->eps, want);
}

/* n_seq sequences (beams) of N rows each, every one against the one memory. */
static void
check_layer (gboolean pre_norm, int n_seq)
{
  const VlmPostNormConfig cfg = {D, I, HEADS, 1e-5f, VLM_ACT_GELU_ERF, pre_norm};
  guint32 seed = 7;
  g_autoptr (GPtrArray) keep = g_ptr_array_new_with_free_func (g_free);
  float *ones = g_new (float, D), *zeros = g_new0 (float, D);
  for (int j = 0; j < D; j++)
    ones[j] = 1.0f + 0.1f * j;   /* a norm weight that is not the identity: the order shows */
  g_ptr_array_add (keep, ones);
  g_ptr_array_add (keep, zeros);
  VlmPostNormLayer l = {0};
  attn_block (&l.self_attn, D, ones, zeros, &seed, keep);
  l.has_cross = TRUE;
  attn_block (&l.cross_attn, DM, ones, zeros, &seed, keep);
  linear (&l.fc1, I, D, &seed, keep);
  linear (&l.fc2, D, I, &seed, keep);
  l.out_ln_w = ones;
  l.out_ln_b = zeros;
  g_autofree float *x = randoms ((size_t) n_seq * N * D, &seed), *memory = randoms (DM, &seed);

  VlmOps *ops = vlm_ops_new (VLM_BACKEND_BLAS, 1, NULL);
  VlmArena arena;
  g_assert_true (vlm_arena_init (&arena, vlm_kv_cache_bytes (1, n_seq, N, HEADS, D / HEADS, FALSE) +
                                             vlm_postnorm_cross_bytes (&cfg, 1, 1, FALSE) +
                                             vlm_postnorm_layer_bytes (&cfg, n_seq * N) + 4096));
  VlmKvCache cache;
  vlm_kv_cache_init (&cache, &arena, 1, n_seq, N, HEADS, D / HEADS, FALSE);
  VlmPostNormCross cross;
  vlm_postnorm_cross_init (&cross, &arena, &cfg, 1, 1, FALSE);

  float want[2][N * D];
  g_assert_cmpint (n_seq, <=, 2);
  for (int s = 0; s < n_seq; s++)
    expected (&cfg, &l, ops, x + (size_t) s * N * D, memory, want[s]);

  const VlmMask none = {FALSE, 0, 0};
  g_autofree float *y = g_memdup2 (x, sizeof (float) * n_seq * N * D);
  vlm_postnorm_cross_set (&cross, &cfg, &l, 1, ops, &arena, memory, 1);
  for (int j = 0; j < DM; j++)
    memory[j] = NAN;   /* projected once: the layers never read the memory again */
  const VlmPostNormSeq seqs[2] = {{&cache, 0, 0, &cross}, {&cache, 1, 0, &cross}};
  vlm_postnorm_layer_forward (&cfg, &l, ops, &arena, 0, x, seqs, n_seq, N, &none, FALSE);
  /* each sequence on its own (as a batched step's sequences of other runs): the same */
  for (int s = 0; s < n_seq; s++)
    vlm_postnorm_layer_forward (&cfg, &l, ops, &arena, 0, y + (size_t) s * N * D, &seqs[s], 1, N, &none, FALSE);
  for (int s = 0; s < n_seq; s++)
    for (int i = 0; i < N * D; i++) {
      g_assert_cmpfloat_with_epsilon (x[(size_t) s * N * D + i], want[s][i], 1e-5);
      g_assert_cmpfloat_with_epsilon (y[(size_t) s * N * D + i], want[s][i], 1e-5);
    }

  VlmLinearW *all[] = {&l.self_attn.query, &l.self_attn.key, &l.self_attn.value, &l.self_attn.out,
                       &l.cross_attn.query, &l.cross_attn.key, &l.cross_attn.value, &l.cross_attn.out,
                       &l.fc1, &l.fc2};
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    vlm_linear_clear (all[i]);
  vlm_arena_clear (&arena);
  vlm_ops_free (ops);
}

static void
test_cross_one_row (void)
{
  check_layer (FALSE, 1);
}

static void
test_cross_two_beams (void)
{
  check_layer (FALSE, 2);
}

static void
test_cross_pre_norm (void)
{
  check_layer (TRUE, 2);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/postnorm/cross-attention-one-row", test_cross_one_row);
  g_test_add_func ("/postnorm/cross-attention-two-beams", test_cross_two_beams);
  g_test_add_func ("/postnorm/pre-norm", test_cross_pre_norm);
  return g_test_run ();
}
