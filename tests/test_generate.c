/* test_generate.c — the generation loop on small hand-made decoders whose
 * answers can be worked out by hand (each test says how).
 *
 * The decoder below keeps, per beam, the token history its "KV cache" would
 * hold, follows reorder() and checks positions on every call; its logits
 * are a function of that history, so a wrong reorder gives wrong logits.
 * Markov tables give probabilities of the next token given the last one;
 * logits are log(p) (so log_softmax returns them unchanged). */
#include "generate.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- test decoder */

#define MAX_V 8
#define MAX_BEAMS 8
#define MAX_LEN 64
#define PROMPT_POS 3       /* two "image" positions, then the prompt [BOS] */
#define BOS 0

typedef struct TestDecoder TestDecoder;
typedef void (*LogitsFn) (const TestDecoder *d, const int *hist, int len, float *out);

struct TestDecoder {
  int vocab;
  LogitsFn fn;
  const float (*table)[MAX_V];      /* Markov: table[last][next] = probability */
  int hist[MAX_BEAMS][MAX_LEN];     /* the cache of each beam: -1 for image positions */
  int len[MAX_BEAMS];
  int n_steps, n_reorders;
  gboolean first_reorder_seen;
  GHashTable *scored;               /* every history whose logits were produced */
  gint cancel;
  int cancel_at_step;               /* set `cancel` once this many steps ran (0: never) */
};

static char *
hist_key (const int *hist, int len)
{
  GString *s = g_string_new (NULL);

  for (int i = 0; i < len; i++)
    g_string_append_printf (s, "%d,", hist[i]);
  return g_string_free (s, FALSE);
}

static void
decoder_logits (TestDecoder *d, int beam, float *out)
{
  d->fn (d, d->hist[beam], d->len[beam], out);
  g_hash_table_add (d->scored, hist_key (d->hist[beam], d->len[beam]));
}

static gboolean
decoder_step (void *self, const int *tokens, int n_beams, int pos, float *logits, GError **error)
{
  TestDecoder *d = self;

  g_assert_cmpint (n_beams, <=, MAX_BEAMS);
  g_assert_cmpint (pos, <, MAX_LEN);
  for (int b = 0; b < n_beams; b++) {
    g_assert_cmpint (d->len[b], ==, pos);   /* every beam's cache holds `pos` entries */
    g_assert_cmpint (tokens[b], >=, 0);
    g_assert_cmpint (tokens[b], <, d->vocab);
    d->hist[b][d->len[b]++] = tokens[b];
    decoder_logits (d, b, logits + b * d->vocab);
  }
  if (++d->n_steps == d->cancel_at_step)
    g_atomic_int_set (&d->cancel, 1);
  return TRUE;
}

static void
decoder_reorder (void *self, const int *src, int n_beams, int len)
{
  TestDecoder *d = self;
  int old[MAX_BEAMS][MAX_LEN], old_len[MAX_BEAMS];

  if (!d->first_reorder_seen) {
    /* the first call spreads the prefilled beam 0 to every beam */
    for (int b = 0; b < n_beams; b++)
      g_assert_cmpint (src[b], ==, 0);
    g_assert_cmpint (len, ==, PROMPT_POS);
    d->first_reorder_seen = TRUE;
  }
  memcpy (old, d->hist, sizeof old);
  memcpy (old_len, d->len, sizeof old_len);
  for (int b = 0; b < n_beams; b++) {
    g_assert_cmpint (old_len[src[b]], ==, len);
    memcpy (d->hist[b], old[src[b]], sizeof (int) * len);
    d->len[b] = len;
  }
  d->n_reorders++;
}

/* Prefill: beam 0 holds two image positions and [BOS]; first_logits follow. */
static void
decoder_init (TestDecoder *d, int vocab, LogitsFn fn, const float (*table)[MAX_V], float *first_logits)
{
  memset (d, 0, sizeof *d);
  d->vocab = vocab;
  d->fn = fn;
  d->table = table;
  d->scored = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  d->hist[0][0] = d->hist[0][1] = -1;
  d->hist[0][2] = BOS;
  d->len[0] = PROMPT_POS;
  decoder_logits (d, 0, first_logits);
}

static void
decoder_clear (TestDecoder *d)
{
  g_hash_table_destroy (d->scored);
}

/* Every proper prefix of the result must be a history the decoder scored:
 * the loop's idea of each beam matched the cache it had reordered. */
static void
assert_prefixes_scored (const TestDecoder *d, const int *ids, int n)
{
  int hist[MAX_LEN] = { -1, -1, BOS };

  for (int k = 0; k < n; k++) {
    char *key = hist_key (hist, PROMPT_POS + k);
    g_assert_true (g_hash_table_contains (d->scored, key));
    g_free (key);
    hist[PROMPT_POS + k] = ids[k];
  }
}

static void
markov_logits (const TestDecoder *d, const int *hist, int len, float *out)
{
  for (int v = 0; v < d->vocab; v++) {
    const float p = d->table[hist[len - 1]][v];
    out[v] = p > 0 ? logf (p) : -30.0f;
  }
}

/* The table holds raw logits (for the repetition-penalty test). */
static void
raw_logits (const TestDecoder *d, const int *hist, int len, float *out)
{
  memcpy (out, d->table[hist[len - 1]], sizeof (float) * d->vocab);
}

/* Pseudo-random logits from the last two tokens: second-order, so a beam
 * with the wrong cache history gets different numbers. */
static void
hashed_logits (const TestDecoder *d, const int *hist, int len, float *out)
{
  const guint32 h = (guint32) (hist[len - 2] + 7) * 2654435761u ^ (guint32) (hist[len - 1] + 3) * 40503u;

  for (int v = 0; v < d->vocab; v++)
    out[v] = (float) ((h * (guint32) (v + 1) * 2246822519u) >> 8) / (float) (1 << 24) * 6.0f - 3.0f;
  out[d->vocab - 1] -= 2.0f;  /* EOS late rather than at once */
}

/* ---------------------------------------------------------------- running it */

typedef struct {
  int ids[MAX_LEN];
  int n;
} Result;

static const int prompt[] = { BOS };

static VlmGenInput
make_input (const float *first_logits, const int *eos, int n_eos)
{
  return (VlmGenInput) {
    .prompt = prompt, .n_prompt = 1, .prompt_pos = PROMPT_POS,
    .first_logits = first_logits, .eos_ids = eos, .n_eos = n_eos, .pad_id = 0,
  };
}

/* Runs one generation on a fresh decoder over `table`, checking the
 * history invariants when it succeeds; the decoder's step count in *n_steps. */
static gboolean
generate_with (LogitsFn fn, const float (*table)[MAX_V], int vocab, int eos, const VlmGenParams *p,
               Result *r, int *n_steps, GError **error)
{
  TestDecoder d;
  float first[MAX_V];
  VlmDecoder dec = { &d, vocab, decoder_step, decoder_reorder };
  VlmGenState *state = vlm_gen_state_new (vocab, p->num_beams, p->max_new_tokens);
  VlmGenInput in = make_input (first, &eos, 1);

  decoder_init (&d, vocab, fn, table, first);
  gboolean ok = vlm_generate (state, &dec, &in, p, NULL, NULL, r->ids, &r->n, error);
  if (ok)
    assert_prefixes_scored (&d, r->ids, r->n);
  *n_steps = d.n_steps;
  decoder_clear (&d);
  vlm_gen_state_free (state);
  return ok;
}

static Result
run_with (LogitsFn fn, const float (*table)[MAX_V], int vocab, int eos, const VlmGenParams *p,
          int *n_steps)
{
  Result r;
  int steps;
  GError *error = NULL;

  g_assert_true (generate_with (fn, table, vocab, eos, p, &r, &steps, &error));
  g_assert_no_error (error);
  if (n_steps)
    *n_steps = steps;
  return r;
}

static Result
run_markov (const float (*table)[MAX_V], int vocab, int eos, const VlmGenParams *p, int *n_steps)
{
  return run_with (markov_logits, table, vocab, eos, p, n_steps);
}

static void
assert_ids (const Result *r, const int *want, int n)
{
  g_assert_cmpmem (r->ids, sizeof (int) * r->n, want, sizeof (int) * n);
}

static VlmGenParams
params_with (int num_beams, int max_new_tokens)
{
  VlmGenParams p;

  vlm_gen_params_init (&p);
  p.num_beams = num_beams;
  p.max_new_tokens = max_new_tokens;
  return p;
}

/* ---------------------------------------------------------------- greedy */

/* V=6, EOS=5. BOS → 1 (.6); 1 → 2 or 3 (.4 each: a tie, the lowest id
 * wins, as torch.argmax); 2 → EOS (.7); 3 → 4. */
static const float greedy_table[MAX_V][MAX_V] = {
  [0] = { [1] = .6f, [2] = .4f },
  [1] = { [2] = .4f, [3] = .4f, [4] = .2f },
  [2] = { [5] = .7f, [1] = .3f },
  [3] = { [4] = 1 },
  [4] = { [4] = 1 },
};

static void
test_greedy_eos (void)
{
  VlmGenParams p = params_with (1, 10);
  int steps;
  Result r = run_markov (greedy_table, 6, 5, &p, &steps);
  const int want[] = { 1, 2, 5 };   /* the EOS is returned, as HF does */

  assert_ids (&r, want, 3);
  g_assert_cmpint (steps, ==, 2);   /* 3 tokens: the first comes from the prefill */
}

/* V=4 with no reachable EOS (3): BOS → 1 → 2 → 1 → ... */
static const float cycle_table[MAX_V][MAX_V] = {
  [0] = { [1] = 1 }, [1] = { [2] = 1 }, [2] = { [1] = 1 }, [3] = { [3] = 1 },
};

static void
test_greedy_max_new_tokens (void)
{
  VlmGenParams p = params_with (1, 4);
  int steps;
  Result r = run_markov (cycle_table, 4, 3, &p, &steps);
  const int want[] = { 1, 2, 1, 2 };

  assert_ids (&r, want, 4);
  g_assert_cmpint (steps, ==, 3);   /* no step for logits nobody reads */
}

/* ---------------------------------------------------------------- beam search */

/* V=5: BOS 0, A 1, B 2, C 3, EOS 4.
 *   BOS → A .5, B .4, C .1     A → A .25, B .35, C .4
 *   B → EOS .9, A .1           C → EOS .9, A .05, B .05
 * Greedy: A C EOS (p .18). Beam 2, max 3 new tokens:
 *   step 0: running A (-0.693), B (-0.916)
 *   step 1: B EOS -1.022 finishes (len 2); running A C -1.609, A B -1.743
 *   step 2 (max length: all finish): A C EOS -1.714, A B EOS -1.848
 * Scores sum/len^lp — lp 1: B EOS -0.511 > A C EOS -0.571 > A B EOS -0.616;
 * lp 2: A C EOS -0.190 > A B EOS -0.205 > B EOS -0.256;
 * lp 0: B EOS -1.022 > A C EOS -1.714. */
static const float beam_table[MAX_V][MAX_V] = {
  [0] = { [1] = .5f, [2] = .4f, [3] = .1f },
  [1] = { [1] = .25f, [2] = .35f, [3] = .4f },
  [2] = { [4] = .9f, [1] = .1f },
  [3] = { [4] = .9f, [1] = .05f, [2] = .05f },
  [4] = { [4] = 1 },
};

static void
test_beam_beats_greedy (void)
{
  VlmGenParams greedy = params_with (1, 3), beam = params_with (2, 3);
  Result g = run_markov (beam_table, 5, 4, &greedy, NULL);
  Result b = run_markov (beam_table, 5, 4, &beam, NULL);
  const int want_greedy[] = { 1, 3, 4 }, want_beam[] = { 2, 4 };

  assert_ids (&g, want_greedy, 3);
  assert_ids (&b, want_beam, 2);
}

static void
test_beam_length_penalty (void)
{
  VlmGenParams p = params_with (2, 3);
  const int shorter[] = { 2, 4 }, longer[] = { 1, 3, 4 };
  Result r;

  p.length_penalty = 2.0f;
  r = run_markov (beam_table, 5, 4, &p, NULL);
  assert_ids (&r, longer, 3);
  p.length_penalty = 0.0f;
  r = run_markov (beam_table, 5, 4, &p, NULL);
  assert_ids (&r, shorter, 2);
}

/* V=5: BOS 0, A 1, B 2, C 3, EOS 4. Beam 2, max 2 new tokens, lp 0 (the
 * score is the plain log-prob sum, so shorter is better).
 *   BOS → A .4, B .35, EOS .25      A, B → C .5, A .25, B .25
 *   step 0: EOS (-1.386) ranks third of the 4 candidates: HF drops it —
 *           only the first num_beams continuations may finish
 *   step 1 (max length): A C -1.609 and B C -1.743 finish → A C,
 *   although the dropped EOS alone would have scored better. */
static const float rank_table[MAX_V][MAX_V] = {
  [0] = { [1] = .4f, [2] = .35f, [4] = .25f },
  [1] = { [3] = .5f, [1] = .25f, [2] = .25f },
  [2] = { [3] = .5f, [1] = .25f, [2] = .25f },
  [3] = { [4] = 1 },
  [4] = { [4] = 1 },
};

static void
test_beam_only_top_finish (void)
{
  VlmGenParams p = params_with (2, 2);
  const int want[] = { 1, 3 };
  Result r;

  p.length_penalty = 0.0f;
  r = run_markov (rank_table, 5, 4, &p, NULL);
  assert_ids (&r, want, 2);
}

/* V=6: BOS 0, A 1, B 2, C 3, D 4, EOS 5. Beam 2, max 6 new tokens, lp 1.
 *   BOS → A .5, EOS .3, B .2    A → C .6, EOS .4    B → C .6, EOS .4
 *   C → EOS .9, D .1            D → EOS .9, D .1
 *   step 0: EOS finishes (-1.204/1); running A -0.693, B -1.609
 *   step 1: A EOS finishes (-1.609/2 = -0.805): both slots full;
 *           running A C -1.204, B C -2.120
 *     early_stopping True: stop → A EOS (1 decoder step).
 *     False: best running -1.204/2 = -0.602 beats worst -1.204: go on.
 *   step 2: A C EOS -1.309/3 = -0.436 and B C EOS -2.225/3 = -0.742
 *           finish; running A C D -3.507
 *     False: -3.507/3 = -1.169 < -0.742: stop → A C EOS (2 steps).
 *     "never": scored at max length, -3.507/6 = -0.585 > -0.742: go on.
 *   step 3: no better finish; -5.81/6 = -0.968 < -0.742: stop (3 steps). */
static const float early_table[MAX_V][MAX_V] = {
  [0] = { [1] = .5f, [5] = .3f, [2] = .2f },
  [1] = { [3] = .6f, [5] = .4f },
  [2] = { [3] = .6f, [5] = .4f },
  [3] = { [5] = .9f, [4] = .1f },
  [4] = { [5] = .9f, [4] = .1f },
  [5] = { [5] = 1 },
};

static void
test_beam_early_stopping (void)
{
  VlmGenParams p = params_with (2, 6);
  const int early[] = { 1, 5 }, later[] = { 1, 3, 5 };
  int steps;
  Result r;

  p.early_stopping = TRUE;
  r = run_markov (early_table, 6, 5, &p, &steps);
  assert_ids (&r, early, 2);
  g_assert_cmpint (steps, ==, 1);

  p.early_stopping = FALSE;
  r = run_markov (early_table, 6, 5, &p, &steps);
  assert_ids (&r, later, 3);
  g_assert_cmpint (steps, ==, 2);

  p.early_stopping = VLM_EARLY_STOPPING_NEVER;
  r = run_markov (early_table, 6, 5, &p, &steps);
  assert_ids (&r, later, 3);
  g_assert_cmpint (steps, ==, 3);
}

/* Second-order pseudo-random logits over 8 tokens, 3 and 4 beams, long
 * enough for beams to swap parents: the decoder asserts cache lengths on
 * every step/reorder, and every prefix of the answer must have been scored
 * from a cache history equal to it. */
static void
test_beam_reorder (void)
{
  for (int nb = 3; nb <= 4; nb++) {
    VlmGenParams p = params_with (nb, 12);
    Result r = run_with (hashed_logits, NULL, 8, 7, &p, NULL);
    g_assert_cmpint (r.n, >=, 1);
  }
}

/* ---------------------------------------------------------------- stop strings */

/* The caller's stopping criterion as vlm_session_caption gives it: token v
 * decodes to the letter 'a' + v - 1, EOS to nothing; a sequence stops when
 * its text holds one of the NULL-terminated strings. */
static gboolean
letters_stop (void *data, const int *ids, int n)
{
  const char *const *stops = data;
  char text[MAX_LEN + 1];
  int len = 0;

  for (int i = 0; i < n; i++)
    if (ids[i] >= 1 && ids[i] <= 4)
      text[len++] = (char) ('a' + ids[i] - 1);
  text[len] = '\0';
  for (int i = 0; stops[i]; i++)
    if (strstr (text, stops[i]))
      return TRUE;
  return FALSE;
}

/* V=6: BOS 0, A 1 "a", B 2 "b", C 3 "c", D 4 "d", EOS 5. Beam 2, max 3
 * new tokens, lp 0 (score = log-prob sum). HF's _beam_search asks the stop
 * criterion of every continuation like EOS: one of the first num_beams
 * finishes, any other is dropped, and neither keeps running.
 *   BOS → A .5, C .3, D .2   A → B .6, C .4   B → D .9, EOS .1
 *   C → A .5, B .5           D → EOS
 *   step 0: running A -0.693, C -1.204
 *   step 1: A B -1.204, A C -1.609, C A -1.897, C B -1.897 (tie: C A first)
 *   step 2 (max length): without stops, running A B, A C give A B D
 *     -1.309 and A C A -2.302 → A B D.
 *   "ab": A B (first) finishes at -1.204; running A C, C A; step 2
 *     finishes A C A, A C B at -2.302 → A B, and A B is never run.
 *   "ab" and "ca": C A (third) is dropped; running A C, C B → A B, and
 *     C A is never run either.
 * Greedy with "ab" stops on B: A B. */
static const float stop_table[MAX_V][MAX_V] = {
  [0] = { [1] = .5f, [3] = .3f, [4] = .2f },
  [1] = { [2] = .6f, [3] = .4f },
  [2] = { [4] = .9f, [5] = .1f },
  [3] = { [1] = .5f, [2] = .5f },
  [4] = { [5] = 1 },
  [5] = { [5] = 1 },
};

/* Runs stop_table with `stops` (NULL: none); *ran_ab / *ran_ca say whether
 * the decoder ever ran the histories A B / C A. */
static Result
run_stops (int num_beams, const char *const *stops, gboolean *ran_ab, gboolean *ran_ca)
{
  VlmGenParams p = params_with (num_beams, 3);
  TestDecoder d;
  float first[MAX_V];
  const int eos = 5;
  VlmDecoder dec = { &d, 6, decoder_step, decoder_reorder };
  VlmGenState *state = vlm_gen_state_new (6, num_beams, 3);
  VlmGenInput in = make_input (first, &eos, 1);
  const int ab[] = { -1, -1, BOS, 1, 2 }, ca[] = { -1, -1, BOS, 3, 1 };
  Result r;
  GError *error = NULL;

  p.length_penalty = 0.0f;
  in.stops = stops ? letters_stop : NULL;
  in.stop_data = (void *) stops;
  decoder_init (&d, 6, markov_logits, stop_table, first);
  g_assert_true (vlm_generate (state, &dec, &in, &p, NULL, NULL, r.ids, &r.n, &error));
  g_assert_no_error (error);
  assert_prefixes_scored (&d, r.ids, r.n);
  g_autofree char *key_ab = hist_key (ab, 5), *key_ca = hist_key (ca, 5);
  *ran_ab = g_hash_table_contains (d.scored, key_ab);
  *ran_ca = g_hash_table_contains (d.scored, key_ca);
  decoder_clear (&d);
  vlm_gen_state_free (state);
  return r;
}

static void
test_stop_strings (void)
{
  const char *ab[] = { "ab", NULL }, *ab_ca[] = { "ab", "ca", NULL };
  const int want_none[] = { 1, 2, 4 }, want_ab[] = { 1, 2 };
  gboolean ran_ab, ran_ca;
  Result r;

  r = run_stops (2, NULL, &ran_ab, &ran_ca);
  assert_ids (&r, want_none, 3);
  g_assert_true (ran_ab);
  r = run_stops (2, ab, &ran_ab, &ran_ca);
  assert_ids (&r, want_ab, 2);
  g_assert_false (ran_ab);
  g_assert_true (ran_ca);
  r = run_stops (2, ab_ca, &ran_ab, &ran_ca);
  assert_ids (&r, want_ab, 2);
  g_assert_false (ran_ab);
  g_assert_false (ran_ca);
  r = run_stops (1, ab, &ran_ab, &ran_ca);
  assert_ids (&r, want_ab, 2);
  g_assert_false (ran_ab);
}

/* ---------------------------------------------------------------- repetition penalty */

/* Raw logits, V=6, EOS 5, penalty 2 (prompt [BOS] counts as seen):
 *   BOS → 1: 2.0, 2: 1.0                       → 1
 *   1 → 1: 2.0, 2: 1.5   (1 seen: 2.0/2 = 1.0)  → 2   (without penalty: 1 forever)
 *   2 → 0: -0.5, 3: -0.8 (BOS seen: -0.5·2 = -1.0) → 3 (without: 0)
 *   3 → EOS */
static const float penalty_table[MAX_V][MAX_V] = {
  [0] = { -5, 2, 1, -5, -5, -5 },
  [1] = { -5, 2, 1.5f, -5, -5, -5 },
  [2] = { -0.5f, -5, -5, -0.8f, -5, -5 },
  [3] = { -5, -5, -5, -5, -5, 1 },
  [4] = { -5, -5, -5, -5, -5, 1 },
  [5] = { -5, -5, -5, -5, -5, 1 },
};

static void
test_repetition_penalty (void)
{
  VlmGenParams p = params_with (1, 4);
  const int penalised[] = { 1, 2, 3, 5 }, plain[] = { 1, 1, 1, 1 };
  Result r;

  r = run_with (raw_logits, penalty_table, 6, 5, &p, NULL);
  assert_ids (&r, plain, 4);
  p.repetition_penalty = 2.0f;
  r = run_with (raw_logits, penalty_table, 6, 5, &p, NULL);
  assert_ids (&r, penalised, 4);
}

/* ---------------------------------------------------------------- n-grams, forced tokens */

/* Raw logits, V=5, EOS 4: 0 (BOS) → 1; 1 → 2 (2), 3 (1), EOS (-1);
 * 2 → 1 (2), 3 (1); 3 → 1 (2), 2 (1.5), EOS (1). Greedy cycles 1 2 1 2 ...
 * no_repeat_ngram_size 2 (HF bans the token after any earlier occurrence of
 * the last token): 1, 2, 1, then 2 is banned after 1 → 3, 3 → 1, then 2
 * and 3 are banned after 1 → EOS: 1 2 1 3 1 4.
 * no_repeat_ngram_size 1 bans every token seen, BOS included: 1 2 3 4. */
static const float ngram_table[MAX_V][MAX_V] = {
  [0] = { -5, 2, -5, -5, -5 },
  [1] = { -5, -5, 2, 1, -1 },
  [2] = { -5, 2, -5, 1, -5 },
  [3] = { -5, 2, 1.5f, -5, 1 },
  [4] = { -5, -5, -5, -5, 2 },
};

static void
test_no_repeat_ngram (void)
{
  VlmGenParams p = params_with (1, 8);
  const int plain[] = { 1, 2, 1, 2, 1, 2, 1, 2 }, bigram[] = { 1, 2, 1, 3, 1, 4 }, unigram[] = { 1, 2, 3, 4 };
  Result r = run_with (raw_logits, ngram_table, 5, 4, &p, NULL);

  assert_ids (&r, plain, 8);
  p.no_repeat_ngram_size = 2;
  r = run_with (raw_logits, ngram_table, 5, 4, &p, NULL);
  assert_ids (&r, bigram, 6);
  p.no_repeat_ngram_size = 1;
  r = run_with (raw_logits, ngram_table, 5, 4, &p, NULL);
  assert_ids (&r, unigram, 4);
}

/* Under beam search the ban follows each beam's own history (prompt
 * included): over 24 hashed-logit steps no trigram of [BOS] + result
 * occurs twice, where without the processor one does. */
static gboolean
has_repeated_trigram (const Result *r)
{
  int seq[MAX_LEN + 1] = { BOS };

  memcpy (seq + 1, r->ids, sizeof (int) * r->n);
  for (int i = 0; i + 2 < r->n + 1; i++)
    for (int j = i + 1; j + 2 < r->n + 1; j++)
      if (seq[i] == seq[j] && seq[i + 1] == seq[j + 1] && seq[i + 2] == seq[j + 2])
        return TRUE;
  return FALSE;
}

static void
test_beam_no_repeat_ngram (void)
{
  VlmGenParams p = params_with (3, 24);
  Result r = run_with (hashed_logits, NULL, 4, 3, &p, NULL);

  g_assert_true (has_repeated_trigram (&r));
  p.no_repeat_ngram_size = 3;
  r = run_with (hashed_logits, NULL, 4, 3, &p, NULL);
  g_assert_cmpint (r.n, >, 6);
  g_assert_false (has_repeated_trigram (&r));
}

/* cycle_table: BOS → 1 → 2 → 1 ..., EOS 3 unreachable. A forced BOS of 2
 * replaces the first token only (the prompt is one token: HF's cur_len 1);
 * a forced EOS is the max_new_tokens-th token, greedy and beam. */
static void
test_forced_bos_eos (void)
{
  VlmGenParams p = params_with (1, 4);
  const int bos[] = { 2, 1, 2, 1 }, eos[] = { 1, 2, 1, 3 }, both[] = { 2, 1, 2, 3 };
  Result r;

  p.forced_bos_token_id = 2;
  r = run_markov (cycle_table, 4, 3, &p, NULL);
  assert_ids (&r, bos, 4);
  p.forced_bos_token_id = -1;
  p.forced_eos_token_id = 3;
  r = run_markov (cycle_table, 4, 3, &p, NULL);
  assert_ids (&r, eos, 4);
  p.forced_bos_token_id = 2;
  p.num_beams = 2;
  r = run_markov (cycle_table, 4, 3, &p, NULL);
  assert_ids (&r, both, 4);
}

/* A forced token outside the vocabulary is refused before any step. */
static void
test_forced_out_of_vocab (void)
{
  VlmGenParams p = params_with (1, 4);
  Result r;
  int steps = -1;
  GError *error = NULL;

  p.forced_eos_token_id = 4;
  g_assert_false (generate_with (markov_logits, cycle_table, 4, 3, &p, &r, &steps, &error));
  g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "forced_eos_token_id"));
  g_assert_cmpint (steps, ==, 0);
  g_clear_error (&error);
}

/* ---------------------------------------------------------------- sampling */

static VlmGenParams
sampling_params (guint64 seed, int top_k, float top_p)
{
  VlmGenParams p = params_with (1, 12);

  p.do_sample = TRUE;
  p.seed = seed;
  p.top_k = top_k;
  p.top_p = top_p;
  return p;
}

static void
test_sample_seeded (void)
{
  VlmGenParams p = sampling_params (42, 0, 1.0f);
  Result a = run_with (hashed_logits, NULL, 8, 7, &p, NULL);
  Result b = run_with (hashed_logits, NULL, 8, 7, &p, NULL);

  assert_ids (&a, b.ids, b.n);
}

/* top_k=1, or a nucleus smaller than the best token's probability, leaves
 * one token: sampling is then greedy whatever the seed and temperature. */
static void
test_sample_degenerate_is_greedy (void)
{
  VlmGenParams greedy = params_with (1, 12);
  VlmGenParams top1 = sampling_params (7, 1, 1.0f), nucleus = sampling_params (9, 0, 0.01f);
  Result g = run_with (hashed_logits, NULL, 8, 7, &greedy, NULL);
  Result k, n;

  top1.temperature = 3.0f;
  k = run_with (hashed_logits, NULL, 8, 7, &top1, NULL);
  n = run_with (hashed_logits, NULL, 8, 7, &nucleus, NULL);
  assert_ids (&k, g.ids, g.n);
  assert_ids (&n, g.ids, g.n);
}

/* Beam search with do_sample draws its continuations from the seeded
 * generator too: the same seed gives the same beams. */
static void
test_beam_sample_seeded (void)
{
  VlmGenParams p = sampling_params (3, 0, 1.0f);
  Result a, b;

  p.num_beams = 3;
  a = run_with (hashed_logits, NULL, 8, 7, &p, NULL);
  b = run_with (hashed_logits, NULL, 8, 7, &p, NULL);
  assert_ids (&a, b.ids, b.n);
}

/* ---------------------------------------------------------------- cancel and streaming */

static void
test_cancel (void)
{
  for (int nb = 1; nb <= 2; nb++) {
    VlmGenParams p = params_with (nb, 10);
    TestDecoder d;
    float first[MAX_V];
    const int eos = 3;
    VlmDecoder dec = { &d, 4, decoder_step, decoder_reorder };
    VlmGenState *state = vlm_gen_state_new (4, nb, 10);
    VlmGenInput in = make_input (first, &eos, 1);
    int ids[10], n = -1;
    GError *error = NULL;

    decoder_init (&d, 4, markov_logits, cycle_table, first);
    d.cancel_at_step = 2;
    in.cancel = &d.cancel;
    g_assert_false (vlm_generate (state, &dec, &in, &p, NULL, NULL, ids, &n, &error));
    g_assert_error (error, VLM_ERROR, VLM_ERROR_CANCELLED);
    g_assert_cmpint (d.n_steps, ==, 2);   /* nothing runs after the flag */
    g_clear_error (&error);
    decoder_clear (&d);
    vlm_gen_state_free (state);
  }
}

static gboolean
stop_after_two (int token, const char *piece, void *user_data)
{
  int *seen = user_data;

  return ++*seen < 2;
}

static void
test_on_token_stops (void)
{
  VlmGenParams p = params_with (1, 10);
  TestDecoder d;
  float first[MAX_V];
  const int eos = 3, want[] = { 1, 2 };
  VlmDecoder dec = { &d, 4, decoder_step, decoder_reorder };
  VlmGenState *state = vlm_gen_state_new (4, 1, 10);
  VlmGenInput in = make_input (first, &eos, 1);
  Result r;
  int seen = 0;
  GError *error = NULL;

  decoder_init (&d, 4, markov_logits, cycle_table, first);
  g_assert_true (vlm_generate (state, &dec, &in, &p, stop_after_two, &seen, r.ids, &r.n, &error));
  g_assert_no_error (error);
  assert_ids (&r, want, 2);
  g_assert_cmpint (seen, ==, 2);
  decoder_clear (&d);
  vlm_gen_state_free (state);
}

/* ---------------------------------------------------------------- state */

/* A state made for 1 beam grows once for 3 beams and 8 tokens, then a
 * second identical call neither grows it nor changes the answer. */
static void
test_state_no_growth (void)
{
  VlmGenParams p = params_with (3, 8);
  TestDecoder d;
  float first[MAX_V];
  const int eos = 7;
  VlmDecoder dec = { &d, 8, decoder_step, decoder_reorder };
  VlmGenState *state = vlm_gen_state_new (8, 1, 4);
  VlmGenInput in = make_input (first, &eos, 1);
  const gsize initial = vlm_gen_state_get_bytes (state);
  Result r1, r2;
  gsize grown;

  for (int call = 0; call < 2; call++) {
    Result *r = call == 0 ? &r1 : &r2;
    decoder_init (&d, 8, hashed_logits, NULL, first);
    g_assert_true (vlm_generate (state, &dec, &in, &p, NULL, NULL, r->ids, &r->n, NULL));
    decoder_clear (&d);
    if (call == 0)
      grown = vlm_gen_state_get_bytes (state);
  }
  g_assert_cmpuint (grown, >, initial);
  g_assert_cmpuint (vlm_gen_state_get_bytes (state), ==, grown);
  assert_ids (&r2, r1.ids, r1.n);
  vlm_gen_state_free (state);
}

/* ---------------------------------------------------------------- parameters */

static void
test_params_defaults (void)
{
  VlmGenParams p;

  vlm_gen_params_init (&p);
  g_assert_cmpint (p.max_new_tokens, ==, 20);
  g_assert_cmpint (p.num_beams, ==, 1);
  g_assert_cmpfloat (p.length_penalty, ==, 1.0f);
  g_assert_false (p.early_stopping);
  g_assert_false (p.do_sample);
  g_assert_cmpfloat (p.temperature, ==, 1.0f);
  g_assert_cmpint (p.top_k, ==, 50);
  g_assert_cmpfloat (p.top_p, ==, 1.0f);
  g_assert_cmpfloat (p.repetition_penalty, ==, 1.0f);
  g_assert_cmpint (p.no_repeat_ngram_size, ==, 0);
  g_assert_cmpint (p.forced_bos_token_id, ==, -1);
  g_assert_cmpint (p.forced_eos_token_id, ==, -1);
}

static void
test_params_parse_good (void)
{
  VlmGenParams p;
  GError *error = NULL;

  vlm_gen_params_init (&p);
  g_assert_true (vlm_gen_params_parse (&p, " max_new_tokens=5, num_beams = 3,early_stopping=never,"
                                       "do_sample=true,temperature=0.5,top_k=0,top_p=0.9,"
                                       "repetition_penalty=1.25,length_penalty=-0.5,"
                                       "seed=18446744073709551615,", &error));
  g_assert_no_error (error);
  g_assert_cmpint (p.max_new_tokens, ==, 5);
  g_assert_cmpint (p.num_beams, ==, 3);
  g_assert_cmpint (p.early_stopping, ==, VLM_EARLY_STOPPING_NEVER);
  g_assert_true (p.do_sample);
  g_assert_cmpfloat (p.temperature, ==, 0.5f);
  g_assert_cmpint (p.top_k, ==, 0);
  g_assert_cmpfloat (p.top_p, ==, 0.9f);
  g_assert_cmpfloat (p.repetition_penalty, ==, 1.25f);
  g_assert_cmpfloat (p.length_penalty, ==, -0.5f);
  g_assert_true (p.seed == G_MAXUINT64);
  g_assert_cmpint (p.no_repeat_ngram_size, ==, 0);
  g_assert_cmpint (p.forced_bos_token_id, ==, -1);
  g_assert_true (vlm_gen_params_parse (&p, "no_repeat_ngram_size=3,forced_bos_token_id=0,forced_eos_token_id=2",
                                       &error));
  g_assert_cmpint (p.no_repeat_ngram_size, ==, 3);
  g_assert_cmpint (p.forced_bos_token_id, ==, 0);
  g_assert_cmpint (p.forced_eos_token_id, ==, 2);
  g_assert_true (vlm_gen_params_parse (&p, "early_stopping=TRUE", &error));
  g_assert_cmpint (p.early_stopping, ==, TRUE);
  g_assert_true (vlm_gen_params_parse (&p, "", &error));
}

/* stop_strings: '|'-separated, stripped, copied into the struct (the text
 * may go away), replaced as a whole by the next value, cleared by "". */
static void
test_params_parse_stop_strings (void)
{
  VlmGenParams p;
  GError *error = NULL;

  vlm_gen_params_init (&p);
  g_assert_cmpstr (p.stop_strings[0], ==, "");
  char *text = g_strdup ("top_k=3, stop_strings= the end |.|é , seed=2");
  g_assert_true (vlm_gen_params_parse (&p, text, &error));
  g_assert_no_error (error);
  memset (text, 'x', strlen (text));
  g_free (text);
  g_assert_cmpint (p.top_k, ==, 3);
  g_assert_true (p.seed == 2);
  g_assert_cmpstr (p.stop_strings[0], ==, "the end");
  g_assert_cmpstr (p.stop_strings[1], ==, ".");
  g_assert_cmpstr (p.stop_strings[2], ==, "é");
  g_assert_cmpstr (p.stop_strings[3], ==, "");
  g_assert_true (vlm_gen_params_parse (&p, "stop_strings=a|b|c|d", &error));
  g_assert_cmpstr (p.stop_strings[3], ==, "d");
  g_assert_true (vlm_gen_params_parse (&p, "stop_strings=z", &error));
  g_assert_cmpstr (p.stop_strings[0], ==, "z");
  g_assert_cmpstr (p.stop_strings[1], ==, "");
  char longest[VLM_STOP_STRING_MAX];
  memset (longest, 'q', sizeof longest - 1);
  longest[sizeof longest - 1] = '\0';
  g_autofree char *fits = g_strconcat ("stop_strings=", longest, NULL);
  g_assert_true (vlm_gen_params_parse (&p, fits, &error));
  g_assert_cmpstr (p.stop_strings[0], ==, longest);
  g_assert_true (vlm_gen_params_parse (&p, "stop_strings=", &error));
  g_assert_no_error (error);
  g_assert_cmpstr (p.stop_strings[0], ==, "");

  /* bad: too many, empty items, too long, not UTF-8; the old list stays */
  g_assert_true (vlm_gen_params_parse (&p, "stop_strings=keep", &error));
  g_autofree char *too_long = g_strconcat ("stop_strings=", longest, "q", NULL);
  const char *bad[] = { "stop_strings=a|b|c|d|e", "stop_strings=a||b", "stop_strings=a|",
                        "stop_strings=|", "stop_strings= | a", too_long, "stop_strings=\xff" };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_assert_false (vlm_gen_params_parse (&p, bad[i], &error));
    g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT);
    g_assert_nonnull (strstr (error->message, "stop_strings"));
    g_clear_error (&error);
    g_assert_cmpstr (p.stop_strings[0], ==, "keep");
    g_assert_cmpstr (p.stop_strings[1], ==, "");
  }

  /* generation_config.json: a string (not split) or a list */
  JsonNode *node = json_from_string ("{\"stop_strings\": \"a|b\"}", NULL);
  vlm_gen_params_apply_json (&p, json_node_get_object (node));
  g_assert_cmpstr (p.stop_strings[0], ==, "a|b");
  json_node_unref (node);
  node = json_from_string ("{\"stop_strings\": [\"x\", \"y z\"]}", NULL);
  vlm_gen_params_apply_json (&p, json_node_get_object (node));
  g_assert_cmpstr (p.stop_strings[0], ==, "x");
  g_assert_cmpstr (p.stop_strings[1], ==, "y z");
  g_assert_cmpstr (p.stop_strings[2], ==, "");
  json_node_unref (node);
}

/* Field by field: the struct has padding memcmp would read. */
static void
assert_params_equal (const VlmGenParams *a, const VlmGenParams *b)
{
  g_assert_cmpint (a->max_new_tokens, ==, b->max_new_tokens);
  g_assert_cmpint (a->num_beams, ==, b->num_beams);
  g_assert_cmpfloat (a->length_penalty, ==, b->length_penalty);
  g_assert_cmpint (a->early_stopping, ==, b->early_stopping);
  g_assert_cmpint (a->do_sample, ==, b->do_sample);
  g_assert_cmpfloat (a->temperature, ==, b->temperature);
  g_assert_cmpfloat (a->top_p, ==, b->top_p);
  g_assert_cmpfloat (a->repetition_penalty, ==, b->repetition_penalty);
  g_assert_cmpint (a->top_k, ==, b->top_k);
  g_assert_true (a->seed == b->seed);
  for (int i = 0; i < VLM_MAX_STOP_STRINGS; i++)
    g_assert_cmpstr (a->stop_strings[i], ==, b->stop_strings[i]);
}

/* Each bad string fails naming the offending key or item, and leaves the
 * parameters untouched even when an earlier item was good. */
static void
test_params_parse_bad (void)
{
  static const struct { const char *text, *named; } bad[] = {
    { "max_new_tokens=5,beams=3", "beams" },
    { "top_p=0", "top_p" },
    { "top_p=1.5", "top_p" },
    { "num_beams=0", "num_beams" },
    { "num_beams=2.5", "num_beams" },
    { "temperature=hot", "temperature" },
    { "temperature=0", "temperature" },
    { "early_stopping=sometimes", "early_stopping" },
    { "seed=-1", "seed" },
    { "do_sample", "do_sample" },
    { "length_penalty=", "length_penalty" },
    /* finite as a double, inf as the float it is kept in (found by fuzz_genconfig) */
    { "num_beams=3,length_penalty=4e81", "length_penalty" },
    { "repetition_penalty=1e39", "repetition_penalty" },
    { "max_new_tokens=5,stop_strings=a||b", "stop_strings" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    VlmGenParams p, before;
    GError *error = NULL;
    vlm_gen_params_init (&p);
    before = p;
    g_assert_false (vlm_gen_params_parse (&p, bad[i].text, &error));
    g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT);
    g_assert_nonnull (strstr (error->message, bad[i].named));
    assert_params_equal (&p, &before);
    g_error_free (error);
  }
}

/* generation_config.json keys as HF writes them; null, foreign keys and
 * out-of-range values leave the defaults. */
static void
test_params_json (void)
{
  const char *text = "{\"num_beams\": 3, \"early_stopping\": true, \"temperature\": null,"
                     " \"top_k\": 5, \"length_penalty\": 2, \"top_p\": 7.0,"
                     " \"eos_token_id\": 3, \"max_new_tokens\": 16, \"no_repeat_ngram_size\": 3,"
                     " \"forced_bos_token_id\": 0, \"forced_eos_token_id\": [2, 3]}";
  JsonNode *node = json_from_string (text, NULL);
  VlmGenParams p;

  vlm_gen_params_init (&p);
  vlm_gen_params_apply_json (&p, json_node_get_object (node));
  g_assert_cmpint (p.num_beams, ==, 3);
  g_assert_cmpint (p.early_stopping, ==, TRUE);
  g_assert_cmpfloat (p.temperature, ==, 1.0f);
  g_assert_cmpint (p.top_k, ==, 5);
  g_assert_cmpfloat (p.length_penalty, ==, 2.0f);
  g_assert_cmpfloat (p.top_p, ==, 1.0f);
  g_assert_cmpint (p.max_new_tokens, ==, 16);
  g_assert_cmpint (p.no_repeat_ngram_size, ==, 3);
  g_assert_cmpint (p.forced_bos_token_id, ==, 0);
  g_assert_cmpint (p.forced_eos_token_id, ==, -1);   /* a list: not supported, the default stays */
  json_node_unref (node);
}

/* Through the C API, every value the parser refuses is refused too,
 * naming the field: vlm_gen_params_check, and vlm_generate before it
 * samples (temperature NaN once gave garbage, length_penalty NaN an empty
 * beam caption returned as success). */
static void
set_temperature (VlmGenParams *p, float v) { p->temperature = v; p->do_sample = TRUE; }
static void
set_length_penalty (VlmGenParams *p, float v) { p->length_penalty = v; p->num_beams = 3; }
static void
set_top_p (VlmGenParams *p, float v) { p->top_p = v; p->do_sample = TRUE; }
static void
set_repetition_penalty (VlmGenParams *p, float v) { p->repetition_penalty = v; }
static void
set_num_beams (VlmGenParams *p, float v) { p->num_beams = (int) v; }
static void
set_max_new_tokens (VlmGenParams *p, float v) { p->max_new_tokens = (int) v; }
static void
set_top_k (VlmGenParams *p, float v) { p->top_k = (int) v; }
static void
set_do_sample (VlmGenParams *p, float v) { p->do_sample = (gboolean) v; }
static void
set_early_stopping (VlmGenParams *p, float v) { p->early_stopping = (gboolean) v; }
static void
set_stop_unterminated (VlmGenParams *p, float v) { memset (p->stop_strings[0], 'a', VLM_STOP_STRING_MAX); }
static void
set_stop_not_utf8 (VlmGenParams *p, float v) { strcpy (p->stop_strings[0], "\xff"); }
static void
set_no_repeat_ngram (VlmGenParams *p, float v) { p->no_repeat_ngram_size = (int) v; }
static void
set_forced_bos (VlmGenParams *p, float v) { p->forced_bos_token_id = (int) v; }

static void
test_params_check (void)
{
  static const struct {
    void (*set) (VlmGenParams *p, float v);
    float v;
    const char *field;
  } bad[] = {
    { set_temperature, 0.0f, "temperature" }, { set_temperature, NAN, "temperature" },
    { set_temperature, -1.0f, "temperature" }, { set_temperature, INFINITY, "temperature" },
    { set_length_penalty, NAN, "length_penalty" }, { set_length_penalty, -INFINITY, "length_penalty" },
    { set_top_p, 0.0f, "top_p" }, { set_top_p, 1.5f, "top_p" }, { set_top_p, NAN, "top_p" },
    { set_repetition_penalty, 0.0f, "repetition_penalty" }, { set_num_beams, 0, "num_beams" },
    { set_num_beams, 65, "num_beams" }, { set_max_new_tokens, 0, "max_new_tokens" },
    { set_max_new_tokens, 70000, "max_new_tokens" }, { set_top_k, -1, "top_k" },
    { set_do_sample, 5, "do_sample" }, { set_early_stopping, 3, "early_stopping" },
    { set_stop_unterminated, 0, "stop_strings" }, { set_stop_not_utf8, 0, "stop_strings" },
    { set_no_repeat_ngram, -1, "no_repeat_ngram_size" }, { set_forced_bos, -2, "forced_bos_token_id" },
  };
  VlmGenParams p = params_with (1, 8);
  GError *error = NULL;

  g_assert_true (vlm_gen_params_check (&p, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    Result r;
    int steps = -1;

    p = params_with (1, 8);
    bad[i].set (&p, bad[i].v);
    g_assert_false (vlm_gen_params_check (&p, &error));
    g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT);
    g_test_message ("%s", error->message);
    g_assert_nonnull (strstr (error->message, bad[i].field));
    g_clear_error (&error);
    /* and generation refuses them before a step */
    g_assert_false (generate_with (markov_logits, cycle_table, 4, 3, &p, &r, &steps, &error));
    g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT);
    g_assert_nonnull (strstr (error->message, bad[i].field));
    g_assert_cmpint (steps, ==, 0);
    g_assert_cmpint (r.n, ==, 0);
    g_clear_error (&error);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/generate/greedy/eos", test_greedy_eos);
  g_test_add_func ("/generate/greedy/max-new-tokens", test_greedy_max_new_tokens);
  g_test_add_func ("/generate/beam/beats-greedy", test_beam_beats_greedy);
  g_test_add_func ("/generate/beam/length-penalty", test_beam_length_penalty);
  g_test_add_func ("/generate/beam/only-top-finish", test_beam_only_top_finish);
  g_test_add_func ("/generate/beam/early-stopping", test_beam_early_stopping);
  g_test_add_func ("/generate/beam/reorder", test_beam_reorder);
  g_test_add_func ("/generate/stop-strings", test_stop_strings);
  g_test_add_func ("/generate/beam/sample-seeded", test_beam_sample_seeded);
  g_test_add_func ("/generate/repetition-penalty", test_repetition_penalty);
  g_test_add_func ("/generate/no-repeat-ngram", test_no_repeat_ngram);
  g_test_add_func ("/generate/beam/no-repeat-ngram", test_beam_no_repeat_ngram);
  g_test_add_func ("/generate/forced-bos-eos", test_forced_bos_eos);
  g_test_add_func ("/generate/forced-out-of-vocab", test_forced_out_of_vocab);
  g_test_add_func ("/generate/sample/seeded", test_sample_seeded);
  g_test_add_func ("/generate/sample/degenerate-is-greedy", test_sample_degenerate_is_greedy);
  g_test_add_func ("/generate/cancel", test_cancel);
  g_test_add_func ("/generate/on-token-stops", test_on_token_stops);
  g_test_add_func ("/generate/state/no-growth", test_state_no_growth);
  g_test_add_func ("/generate/params/defaults", test_params_defaults);
  g_test_add_func ("/generate/params/parse-good", test_params_parse_good);
  g_test_add_func ("/generate/params/parse-bad", test_params_parse_bad);
  g_test_add_func ("/generate/params/stop-strings", test_params_parse_stop_strings);
  g_test_add_func ("/generate/params/json", test_params_json);
  g_test_add_func ("/generate/params/check", test_params_check);
  return g_test_run ();
}
