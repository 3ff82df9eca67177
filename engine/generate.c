/* generate.c — the one generation loop: greedy, sampling and beam search with
 * HF transformers 5.17's semantics, over any VlmDecoder.
 *
 * ref: transformers/generation/utils.py (GenerationMixin._sample,
 *      GenerationMixin._beam_search and its helpers),
 *      transformers/generation/logits_process.py (the processors we support).
 *
 * Layout: state (all working memory, sized once) → selection kernels →
 * logits processors → greedy/sampling loop → beam search → entry point →
 * parameters (defaults, "key=value" strings, generation_config.json). */

#include "generate.h"

#include <json-glib/json-glib.h>
#include <float.h>
#include <math.h>
#include <string.h>

/* HF masks impossible beams and finished candidates by adding this (float32). */
#define BEAM_MASK (-1.0e9f)

/* ---------------------------------------------------------------- state */

/* A scored index: a token (greedy/sampling) or a flat beam·vocab + token
 * position (beam search), or a position in a merged candidate list. */
typedef struct {
  float key;
  int idx;
} VlmCand;

/* One beam-search continuation, as _get_top_k_continuations returns it. */
typedef struct {
  float score;      /* accumulated log-prob of the running beam plus this token */
  int beam, token;  /* parent running beam, the new token */
  gboolean hit;     /* next_token_hits_stopping_criteria: EOS, max length or the caller's stops */
} VlmBeamCand;

/* num_beams hypotheses with their generated ids (running or finished). */
typedef struct {
  int *seq;         /* [cap_beams][cap_tokens] generated ids */
  int *len;         /* [cap_beams] */
  float *score;     /* [cap_beams] running: log-prob sum; finished: length-penalised */
  gboolean *done;   /* [cap_beams] HF is_sent_finished (finished set only) */
} VlmHyps;

struct VlmGenState {
  int vocab;
  int cap_beams, cap_tokens, cap_cands;  /* what the arrays below hold */
  gsize bytes;                           /* their total size */

  float *logits;          /* [cap_beams][vocab] decoder output, processed in place */
  VlmCand *heap;          /* [max(vocab, cap_cands)] top-k selection */
  guint32 *seen;          /* [vocab] repetition-penalty stamps */
  guint32 stamp;
  guint8 *keep;           /* [vocab] top-p survivors */
  GRand *rng;

  /* beam search */
  int *tokens;            /* [cap_beams] the tokens fed to step() */
  int *parents;           /* [cap_beams] reorder() sources */
  VlmBeamCand *cands;     /* [cap_cands] */
  VlmHyps run, run_next, fin, fin_next;
};

static gsize
hyps_alloc (VlmHyps *h, int beams, int tokens)
{
  h->seq = g_new0 (int, (gsize) beams * tokens);
  h->len = g_new0 (int, beams);
  h->score = g_new0 (float, beams);
  h->done = g_new0 (gboolean, beams);
  return (gsize) beams * tokens * sizeof (int) + beams * (sizeof (int) + sizeof (float) + sizeof (gboolean));
}

static void
hyps_free (VlmHyps *h)
{
  g_free (h->seq);
  g_free (h->len);
  g_free (h->score);
  g_free (h->done);
}

static void
state_free_arrays (VlmGenState *s)
{
  g_free (s->logits);
  g_free (s->heap);
  g_free (s->seen);
  g_free (s->keep);
  g_free (s->tokens);
  g_free (s->parents);
  g_free (s->cands);
  hyps_free (&s->run);
  hyps_free (&s->run_next);
  hyps_free (&s->fin);
  hyps_free (&s->fin_next);
}

/* (Re)allocates every array for the given capacities. Called from _new and
 * when a call needs more than any call before — never per token. */
static void
state_alloc_arrays (VlmGenState *s, int beams, int tokens, int cands)
{
  const gsize v = s->vocab;
  const int heap_n = MAX (s->vocab, cands);

  s->cap_beams = beams;
  s->cap_tokens = tokens;
  s->cap_cands = cands;
  s->logits = g_new (float, v * beams);
  s->heap = g_new (VlmCand, heap_n);
  s->seen = g_new0 (guint32, v);
  s->stamp = 0;
  s->keep = g_new0 (guint8, v);
  s->tokens = g_new0 (int, beams);
  s->parents = g_new0 (int, beams);
  s->cands = g_new0 (VlmBeamCand, cands);
  s->bytes = v * beams * sizeof (float) + heap_n * sizeof (VlmCand) + v * (sizeof (guint32) + 1)
             + 2 * beams * sizeof (int) + cands * sizeof (VlmBeamCand);
  s->bytes += hyps_alloc (&s->run, beams, tokens) + hyps_alloc (&s->run_next, beams, tokens)
              + hyps_alloc (&s->fin, beams, tokens) + hyps_alloc (&s->fin_next, beams, tokens);
}

/* Beam search keeps max(2, 1 + n_eos) · num_beams candidates per step
 * (_beam_search's beams_to_keep). */
static int
beams_to_keep (int num_beams, int n_eos)
{
  return MAX (2, 1 + n_eos) * num_beams;
}

VlmGenState *
vlm_gen_state_new (int vocab_size, int max_beams, int max_new_tokens)
{
  VlmGenState *s;

  g_return_val_if_fail (vocab_size > 0, NULL);
  s = g_new0 (VlmGenState, 1);
  s->vocab = vocab_size;
  s->rng = g_rand_new ();
  max_beams = MAX (max_beams, 1);
  state_alloc_arrays (s, max_beams, MAX (max_new_tokens, 1), beams_to_keep (max_beams, 1));
  return s;
}

void
vlm_gen_state_free (VlmGenState *state)
{
  if (!state)
    return;
  state_free_arrays (state);
  g_rand_free (state->rng);
  g_free (state);
}

gsize
vlm_gen_state_get_bytes (const VlmGenState *state)
{
  return state->bytes;
}

static void
state_reserve (VlmGenState *s, int beams, int tokens, int cands)
{
  if (beams <= s->cap_beams && tokens <= s->cap_tokens && cands <= s->cap_cands)
    return;
  beams = MAX (beams, s->cap_beams);
  tokens = MAX (tokens, s->cap_tokens);
  cands = MAX (cands, s->cap_cands);
  state_free_arrays (s);
  state_alloc_arrays (s, beams, tokens, cands);
}

/* ---------------------------------------------------------------- selection */

/* Partial selection of the k best of n offered (key, idx) pairs in a
 * min-heap whose root is the worst kept: O(n log k), no sort of the
 * vocabulary. "Better" is a larger key, then a smaller idx — torch.argmax
 * and torch.topk return the lowest index among equal values. */
typedef struct {
  VlmCand *items;
  int n, k;
} VlmTopK;

static inline gboolean
cand_better (VlmCand a, VlmCand b)
{
  return a.key > b.key || (a.key == b.key && a.idx < b.idx);
}

static void
heap_sift_down (VlmCand *h, int n, int i)
{
  for (;;) {
    int worst = i, l = 2 * i + 1, r = l + 1;
    if (l < n && cand_better (h[worst], h[l]))
      worst = l;
    if (r < n && cand_better (h[worst], h[r]))
      worst = r;
    if (worst == i)
      return;
    VlmCand t = h[i]; h[i] = h[worst]; h[worst] = t;
    i = worst;
  }
}

static inline void
topk_offer (VlmTopK *t, float key, int idx)
{
  VlmCand c = { key, idx };

  if (t->n < t->k) {
    int i = t->n++;
    while (i > 0 && cand_better (t->items[(i - 1) / 2], c)) {
      t->items[i] = t->items[(i - 1) / 2];
      i = (i - 1) / 2;
    }
    t->items[i] = c;
  } else if (cand_better (c, t->items[0])) {
    t->items[0] = c;
    heap_sift_down (t->items, t->n, 0);
  }
}

/* Sorts the kept items best first (heap sort: the worst moves to the end). */
static void
topk_finish (VlmTopK *t)
{
  for (int m = t->n; m > 1; m--) {
    VlmCand w = t->items[0]; t->items[0] = t->items[m - 1]; t->items[m - 1] = w;
    heap_sift_down (t->items, m - 1, 0);
  }
}

/* The k best entries of row[0..n) into s->heap, best first; returns how many. */
static int
topk_row (VlmGenState *s, const float *row, int n, int k)
{
  VlmTopK t = { s->heap, 0, MIN (k, n) };

  for (int i = 0; i < n; i++)
    topk_offer (&t, row[i], i);
  topk_finish (&t);
  return t.n;
}

/* torch.argmax: the first maximum. The running maximum stays in a register
 * (reloading row[best] each time makes a slow dependency chain). */
static int
argmax (const float *row, int n)
{
  float top = row[0];
  int best = 0;

  for (int i = 1; i < n; i++)
    if (row[i] > top) {
      top = row[i];
      best = i;
    }
  return best;
}

/* ---------------------------------------------------------------- logits processors */

/* nn.functional.log_softmax in place, as _beam_search scores continuations. */
static void
log_softmax (float *x, int n)
{
  float mx = x[argmax (x, n)];
  double sum = 0;

  for (int i = 0; i < n; i++)
    sum += expf (x[i] - mx);
  const float log_sum = (float) log (sum);
  for (int i = 0; i < n; i++)
    x[i] = (x[i] - mx) - log_sum;
}

/* A fresh "seen" set over the vocabulary without clearing it per token. */
static void
seen_begin (VlmGenState *s)
{
  if (++s->stamp == 0) {
    memset (s->seen, 0, sizeof (guint32) * s->vocab);
    s->stamp = 1;
  }
}

/* RepetitionPenaltyLogitsProcessor for `ids` not yet penalised in this set:
 * each distinct token once (torch's scatter), negative scores multiplied,
 * positive ones divided. */
static void
penalise_ids (VlmGenState *s, float *row, float penalty, const int *ids, int n)
{
  for (int i = 0; i < n; i++) {
    const int t = ids[i];
    if (t < 0 || t >= s->vocab || s->seen[t] == s->stamp)
      continue;
    s->seen[t] = s->stamp;
    row[t] = row[t] < 0 ? row[t] * penalty : row[t] / penalty;
  }
}

/* HF's input_ids for the processors are the prompt plus the tokens generated so far. */
static void
repetition_penalty (VlmGenState *s, float *row, float penalty, const VlmGenInput *in,
                    const int *gen, int n_gen)
{
  if (penalty == 1.0f)
    return;
  seen_begin (s);
  penalise_ids (s, row, penalty, in->prompt, in->n_prompt);
  penalise_ids (s, row, penalty, gen, n_gen);
}

/* Token i of HF's input_ids: the prompt, then the generated ids. */
static inline int
seq_at (const VlmGenInput *in, const int *gen, int i)
{
  return i < in->n_prompt ? in->prompt[i] : gen[i - in->n_prompt];
}

/* NoRepeatNGramLogitsProcessor: for every n-gram of ids (prompt + gen)
 * whose first n - 1 tokens are the last n - 1 ids, its last token is
 * banned (n = 1: every token seen). Nothing while ids hold fewer than
 * n - 1 tokens. */
static void
no_repeat_ngram (VlmGenState *s, float *row, int n, const VlmGenInput *in, const int *gen, int n_gen)
{
  const int len = in->n_prompt + n_gen;
  if (n <= 0 || len + 1 < n)
    return;
  for (int i = 0; i + n - 1 < len; i++) {
    int j = 0;
    while (j < n - 1 && seq_at (in, gen, i + j) == seq_at (in, gen, len - n + 1 + j))
      j++;
    const int t = seq_at (in, gen, i + n - 1);
    if (j == n - 1 && t >= 0 && t < s->vocab)
      row[t] = -INFINITY;
  }
}

/* Forced{BOS,EOS}TokenLogitsProcessor: only `token` keeps a score (0). */
static void
force_token (VlmGenState *s, float *row, int token)
{
  for (int i = 0; i < s->vocab; i++)
    row[i] = -INFINITY;
  row[token] = 0.0f;
}

/* The processors of _get_logits_processor that we support, in its order:
 * repetition penalty, no-repeat n-grams, forced BOS (the sequence holds
 * one token: cur_len == 1), forced EOS (this token reaches max_length:
 * cur_len == max_length - 1). n_gen tokens were generated before this one. */
static void
process (VlmGenState *s, float *row, const VlmGenInput *in, const VlmGenParams *p, const int *gen, int n_gen)
{
  repetition_penalty (s, row, p->repetition_penalty, in, gen, n_gen);
  no_repeat_ngram (s, row, p->no_repeat_ngram_size, in, gen, n_gen);
  if (p->forced_bos_token_id >= 0 && in->n_prompt + n_gen == 1)
    force_token (s, row, p->forced_bos_token_id);
  if (p->forced_eos_token_id >= 0 && n_gen == p->max_new_tokens - 1)
    force_token (s, row, p->forced_eos_token_id);
}

/* TopKLogitsWarper: everything below the k-th best score goes to -inf
 * (ties with it survive, as `scores < topk(...)[-1]` keeps them). */
static void
warp_top_k (VlmGenState *s, float *row, int k)
{
  const int n = topk_row (s, row, s->vocab, k);
  const float threshold = s->heap[n - 1].key;

  for (int i = 0; i < s->vocab; i++)
    if (row[i] < threshold)
      row[i] = -INFINITY;
}

/* log Σ exp(row): the softmax normaliser, -inf entries contributing nothing. */
static double
log_sum_exp (const float *row, int n)
{
  const double mx = row[argmax (row, n)];
  double sum = 0;

  for (int i = 0; i < n; i++)
    sum += exp (row[i] - mx);
  return mx + log (sum);
}

/* TopPLogitsWarper: keep the most probable tokens while the probability
 * mass before them is below top_p (HF removes, in ascending order, tokens
 * whose cumulative probability is <= 1 - top_p), and at least min_keep.
 * The nucleus is a prefix of the sorted scores, so we select a growing
 * top-k until it holds mass >= top_p instead of sorting the vocabulary. */
static void
warp_top_p (VlmGenState *s, float *row, float top_p, int min_keep)
{
  const int v = s->vocab;
  const double lse = log_sum_exp (row, v);
  int n, k = MAX (64, min_keep);
  double mass, before = 0;

  for (;;) {
    n = topk_row (s, row, v, k);
    mass = 0;
    for (int i = 0; i < n; i++)
      mass += exp (s->heap[i].key - lse);
    if (mass >= top_p || n == v)
      break;
    k = MIN (4 * k, v);
  }
  for (int i = 0; i < n && (before < top_p || i < min_keep); i++) {
    s->keep[s->heap[i].idx] = 1;
    before += exp (s->heap[i].key - lse);
  }
  for (int i = 0; i < v; i++) {
    if (!s->keep[i])
      row[i] = -INFINITY;
    s->keep[i] = 0;
  }
}

/* The sampling warpers in _get_logits_processor's order: temperature,
 * top_k, top_p. min_keep is HF's min_tokens_to_keep (2 with beams). */
static void
warp (VlmGenState *s, float *row, const VlmGenParams *p, int min_keep)
{
  if (p->temperature != 1.0f)
    for (int i = 0; i < s->vocab; i++)
      row[i] /= p->temperature;
  if (p->top_k > 0)
    warp_top_k (s, row, MIN (MAX (p->top_k, min_keep), s->vocab));
  if (p->top_p < 1.0f)
    warp_top_p (s, row, p->top_p, min_keep);
}

/* torch.multinomial(softmax(row), 1) with GRand: exact torch parity is
 * impossible (different generator), the distribution is the same. */
static int
sample_row (GRand *rng, const float *row, int n)
{
  const float mx = row[argmax (row, n)];
  double total = 0, acc = 0;
  int last = 0;

  for (int i = 0; i < n; i++)
    total += exp ((double) (row[i] - mx));
  const double u = g_rand_double (rng) * total;
  for (int i = 0; i < n; i++) {
    const double p = exp ((double) (row[i] - mx));
    if (p == 0)
      continue;
    acc += p;
    last = i;
    if (acc > u)
      return i;
  }
  return last;  /* rounding left u just above the sum */
}

/* ---------------------------------------------------------------- greedy and sampling */

static gboolean
is_eos (const VlmGenInput *in, int token)
{
  for (int i = 0; i < in->n_eos; i++)
    if (in->eos_ids[i] == token)
      return TRUE;
  return FALSE;
}

static gboolean
check_cancel (const VlmGenInput *in, GError **error)
{
  if (in->cancel && g_atomic_int_get (in->cancel)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_CANCELLED, "generation cancelled");
    return FALSE;
  }
  return TRUE;
}

/* _sample: processors on the raw logits, then argmax or multinomial. */
static int
choose_token (VlmGenState *s, float *row, const VlmGenInput *in, const VlmGenParams *p,
              const int *gen, int n_gen)
{
  process (s, row, in, p, gen, n_gen);
  if (!p->do_sample)
    return argmax (row, s->vocab);
  warp (s, row, p, 1);
  return sample_row (s->rng, row, s->vocab);
}

/* GenerationMixin._sample for one sequence: the EOS or stop-sequence token
 * that stops it is returned; max_new_tokens tokens take max_new_tokens - 1
 * decoder steps. */
static gboolean
generate_single (VlmGenState *s, const VlmDecoder *dec, const VlmGenInput *in,
                 const VlmGenParams *p, VlmTokenFunc on_token, void *user_data,
                 int *out, int *n_out, GError **error)
{
  float *row = s->logits;

  memcpy (row, in->first_logits, sizeof (float) * s->vocab);
  for (int t = 0; t < p->max_new_tokens; t++) {
    if (!check_cancel (in, error))
      return FALSE;
    if (t > 0 && !dec->step (dec->self, &out[t - 1], 1, in->prompt_pos + t - 1, row, error))
      return FALSE;
    const int token = choose_token (s, row, in, p, out, t);
    out[t] = token;
    *n_out = t + 1;
    gboolean more = !is_eos (in, token);
    if (on_token && !on_token (token, NULL, user_data))
      more = FALSE;
    if (more && in->stops && in->stops (in->stop_data, out, t + 1))
      more = FALSE;
    if (!more)
      break;
  }
  return TRUE;
}

/* ---------------------------------------------------------------- beam search */

/* Everything one beam-search call reads; `early_stopping` is TRUE, FALSE
 * or VLM_EARLY_STOPPING_NEVER as in HF. */
typedef struct {
  VlmGenState *s;
  const VlmGenInput *in;
  const VlmGenParams *p;
  int num_beams, n_cands;
  gboolean sample;
} VlmBeamSearch;

/* running_beam_scores = [0, -1e9, ...]: every beam holds the prompt, but
 * only beam 0's continuations can be chosen at first; no finished beams
 * (beam_scores -1e9, is_sent_finished False). */
static void
beams_init (VlmBeamSearch *bs)
{
  VlmGenState *s = bs->s;

  for (int b = 0; b < bs->num_beams; b++) {
    s->run.score[b] = b == 0 ? 0.0f : BEAM_MASK;
    s->run.len[b] = 0;
    s->fin.score[b] = BEAM_MASK;
    s->fin.len[b] = 0;
    s->fin.done[b] = FALSE;
  }
}

/* Row b of the step's log-probs. Before the first step every beam's logits
 * are the prompt's: row 0 serves them all. */
static const float *
beam_row (const VlmBeamSearch *bs, int b, int t)
{
  return bs->s->logits + (gsize) (t == 0 ? 0 : b) * bs->s->vocab;
}

/* log_softmax, then the processors on the log-probs (HF applies
 * logits_processor after log_softmax in _beam_search). */
static void
beam_log_probs (VlmBeamSearch *bs, int t)
{
  VlmGenState *s = bs->s;
  const int rows = t == 0 ? 1 : bs->num_beams;

  for (int b = 0; b < rows; b++) {
    float *row = s->logits + (gsize) b * s->vocab;
    log_softmax (row, s->vocab);
    process (s, row, bs->in, bs->p, s->run.seq + (gsize) b * s->cap_tokens, t);
    if (bs->sample)
      warp (s, row, bs->p, 2);
  }
}

/* Gumbel noise: top-k of (log p + G) is a sample of k without replacement
 * in multinomial order, as torch.multinomial(softmax(·), k) draws. */
static double
gumbel (GRand *rng)
{
  double u;

  do
    u = g_rand_double (rng);
  while (u == 0);
  return -log (-log (u));
}

/* Does running beam `beam` (t tokens) extended by `token` hit a stopping
 * criterion: EOS, max length, or the caller's (stop strings)? The caller's
 * sees the extended ids in place: row `beam` has room past its t tokens
 * and that slot is unused while the row is a running beam. */
static gboolean
beam_hits_stop (const VlmBeamSearch *bs, int beam, int token, int t)
{
  VlmGenState *s = bs->s;
  const VlmGenInput *in = bs->in;
  int *seq = s->run.seq + (gsize) beam * s->cap_tokens;

  if (is_eos (in, token) || t + 1 >= bs->p->max_new_tokens)
    return TRUE;
  if (!in->stops)
    return FALSE;
  seq[t] = token;
  return in->stops (in->stop_data, seq, t + 1);
}

/* _get_top_k_continuations: the n_cands best (or sampled) of
 * running score + log-prob over beam × vocab, best first. Then
 * stopping_criteria on each extended sequence, as _beam_search asks them
 * for all beams_to_keep continuations (next_token_hits_stopping_criteria). */
static void
beam_top_k_continuations (VlmBeamSearch *bs, int t)
{
  VlmGenState *s = bs->s;
  const int v = s->vocab;
  VlmTopK top = { s->heap, 0, bs->n_cands };

  for (int b = 0; b < bs->num_beams; b++) {
    const float *row = beam_row (bs, b, t);
    const float base = s->run.score[b];
    for (int i = 0; i < v; i++) {
      const float acc = row[i] + base;
      topk_offer (&top, bs->sample ? (float) (acc + gumbel (s->rng)) : acc, b * v + i);
    }
  }
  topk_finish (&top);
  for (int c = 0; c < bs->n_cands; c++) {
    VlmBeamCand *cand = &s->cands[c];
    cand->beam = top.items[c].idx / v;
    cand->token = top.items[c].idx % v;
    cand->score = beam_row (bs, cand->beam, t)[cand->token] + s->run.score[cand->beam];
    cand->hit = beam_hits_stop (bs, cand->beam, cand->token, t);
  }
}

/* dst[j] := running beam `beam` extended by `token` (t generated before it). */
static void
hyps_extend (VlmGenState *s, VlmHyps *dst, int j, int beam, int token, int t)
{
  int *seq = dst->seq + (gsize) j * s->cap_tokens;

  memcpy (seq, s->run.seq + (gsize) beam * s->cap_tokens, sizeof (int) * t);
  seq[t] = token;
  dst->len[j] = t + 1;
}

/* _get_running_beams_for_next_iteration: the num_beams best continuations
 * after adding -1e9 to those that hit a stopping criterion. */
static void
beam_next_running (VlmBeamSearch *bs, int t)
{
  VlmGenState *s = bs->s;
  VlmTopK top = { s->heap, 0, bs->num_beams };

  for (int c = 0; c < bs->n_cands; c++)
    topk_offer (&top, s->cands[c].score + (s->cands[c].hit ? BEAM_MASK : 0.0f), c);
  topk_finish (&top);
  for (int j = 0; j < bs->num_beams; j++) {
    const VlmBeamCand *cand = &s->cands[top.items[j].idx];
    hyps_extend (s, &s->run_next, j, cand->beam, cand->token, t);
    s->run_next.score[j] = top.items[j].key;
    s->parents[j] = cand->beam;
  }
}

static gboolean
all_done (const VlmHyps *h, int n)
{
  for (int j = 0; j < n; j++)
    if (!h->done[j])
      return FALSE;
  return TRUE;
}

/* _update_finished_beams: only the first num_beams continuations may
 * finish; their score is divided by (generated length incl. the EOS) **
 * length_penalty, i.e. (cur_len + 1 - decoder_prompt_len). The num_beams
 * best of [finished; candidates] stay (ties: earlier entries first, like
 * topk). HF also masks new entries when the set is full with
 * early_stopping True or when no improvement is possible; with a single
 * sequence the loop has already stopped in both cases, so neither applies. */
static void
beam_update_finished (VlmBeamSearch *bs, int t)
{
  VlmGenState *s = bs->s;
  const int nb = bs->num_beams;
  const float denom = (float) pow (t + 1, bs->p->length_penalty);
  VlmTopK top = { s->heap, 0, nb };

  for (int j = 0; j < nb; j++)
    topk_offer (&top, s->fin.score[j], j);
  for (int c = 0; c < bs->n_cands; c++) {
    const gboolean finished = s->cands[c].hit && c < nb;
    topk_offer (&top, s->cands[c].score / denom + (finished ? 0.0f : BEAM_MASK), nb + c);
  }
  topk_finish (&top);
  for (int j = 0; j < nb; j++) {
    const int m = top.items[j].idx;
    if (m < nb) {
      memcpy (s->fin_next.seq + (gsize) j * s->cap_tokens, s->fin.seq + (gsize) m * s->cap_tokens,
              sizeof (int) * s->fin.len[m]);
      s->fin_next.len[j] = s->fin.len[m];
      s->fin_next.done[j] = s->fin.done[m];
    } else {
      const VlmBeamCand *cand = &s->cands[m - nb];
      hyps_extend (s, &s->fin_next, j, cand->beam, cand->token, t);
      s->fin_next.done[j] = cand->hit && m - nb < nb;
    }
    s->fin_next.score[j] = top.items[j].key;
  }
}

/* _check_early_stop_heuristic with cur_len already advanced (n_gen tokens
 * generated): can the best running beam, scored at the current length (or
 * at max_new_tokens for "never" with a positive length_penalty), still
 * beat the worst finished hypothesis? Any slot still empty counts as -1e9. */
static gboolean
beam_improvable (const VlmBeamSearch *bs, int n_gen)
{
  const VlmGenState *s = bs->s;
  const float lp = bs->p->length_penalty;
  const int len = bs->p->early_stopping == VLM_EARLY_STOPPING_NEVER && lp > 0.0f
                  ? bs->p->max_new_tokens : n_gen;
  const float best = s->run.score[0] / (float) pow (len, lp);
  float worst = s->fin.score[0];
  gboolean beats = FALSE;

  for (int j = 1; j < bs->num_beams; j++)
    worst = MIN (worst, s->fin.score[j]);
  for (int j = 0; j < bs->num_beams; j++)
    beats |= best > (s->fin.done[j] ? worst : BEAM_MASK);
  return beats;
}

/* _beam_search_has_unfinished_sequences: improvement still possible, an
 * open slot (only matters with early_stopping True), and some continuation
 * that did not hit a stopping criterion. */
static gboolean
beam_has_unfinished (const VlmBeamSearch *bs, int n_gen)
{
  const VlmGenState *s = bs->s;
  gboolean all_hit = TRUE;

  for (int c = 0; c < bs->n_cands; c++)
    all_hit &= s->cands[c].hit;
  if (bs->p->early_stopping == TRUE && all_done (&s->fin, bs->num_beams))
    return FALSE;
  return !all_hit && beam_improvable (bs, n_gen);
}

static void
hyps_swap (VlmHyps *a, VlmHyps *b)
{
  VlmHyps t = *a; *a = *b; *b = t;
}

static gboolean
is_identity (const int *src, int n)
{
  for (int i = 0; i < n; i++)
    if (src[i] != i)
      return FALSE;
  return TRUE;
}

/* One selection step of _beam_search on the log-probs in s->logits
 * (t tokens generated before it). Returns whether to go on. */
static gboolean
beam_select (VlmBeamSearch *bs, int t)
{
  VlmGenState *s = bs->s;

  beam_log_probs (bs, t);
  beam_top_k_continuations (bs, t);
  beam_next_running (bs, t);
  beam_update_finished (bs, t);
  hyps_swap (&s->run, &s->run_next);
  hyps_swap (&s->fin, &s->fin_next);
  return beam_has_unfinished (bs, t + 1);
}

/* GenerationMixin._beam_search for one sequence. The decoder's caches are
 * reordered to follow the surviving beams after every selection; the
 * result is the best finished hypothesis (HF returns sequences[:, 0]). */
static gboolean
generate_beams (VlmGenState *s, const VlmDecoder *dec, const VlmGenInput *in,
                const VlmGenParams *p, int *out, int *n_out, GError **error)
{
  VlmBeamSearch bs = { s, in, p, p->num_beams, beams_to_keep (p->num_beams, in->n_eos),
                       p->do_sample };
  const int nb = bs.num_beams;

  beams_init (&bs);
  memcpy (s->logits, in->first_logits, sizeof (float) * s->vocab);
  memset (s->parents, 0, sizeof (int) * nb);
  dec->reorder (dec->self, s->parents, nb, in->prompt_pos);
  for (int t = 0;; t++) {
    if (!check_cancel (in, error))
      return FALSE;
    if (t > 0) {
      for (int b = 0; b < nb; b++)
        s->tokens[b] = s->run.seq[(gsize) b * s->cap_tokens + t - 1];
      if (!dec->step (dec->self, s->tokens, nb, in->prompt_pos + t - 1, s->logits, error))
        return FALSE;
    }
    if (!beam_select (&bs, t))
      break;
    if (!is_identity (s->parents, nb))
      dec->reorder (dec->self, s->parents, nb, in->prompt_pos + t);
  }
  *n_out = s->fin.len[0];
  memcpy (out, s->fin.seq, sizeof (int) * s->fin.len[0]);
  return TRUE;
}

/* ---------------------------------------------------------------- entry point */

gboolean
vlm_generate (VlmGenState *state, const VlmDecoder *dec, const VlmGenInput *in,
              const VlmGenParams *params, VlmTokenFunc on_token, void *user_data,
              int *out_ids, int *n_out, GError **error)
{
  const int nb = params->num_beams;

  *n_out = 0;
  if (!vlm_gen_params_check (params, error))
    return FALSE;
  if (dec->vocab_size != state->vocab || beams_to_keep (nb, in->n_eos) > (gint64) nb * state->vocab) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT,
                 "generation: vocabulary %d (state %d), num_beams %d not usable",
                 dec->vocab_size, state->vocab, nb);
    return FALSE;
  }
  if (params->forced_bos_token_id >= state->vocab || params->forced_eos_token_id >= state->vocab) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT,
                 "generation: forced_bos_token_id %d / forced_eos_token_id %d outside the vocabulary of %d",
                 params->forced_bos_token_id, params->forced_eos_token_id, state->vocab);
    return FALSE;
  }
  state_reserve (state, nb, params->max_new_tokens, beams_to_keep (nb, in->n_eos));
  if (params->do_sample) {
    guint32 seed[2] = { (guint32) params->seed, (guint32) (params->seed >> 32) };
    g_rand_set_seed_array (state->rng, seed, 2);
  }
  if (nb == 1)
    return generate_single (state, dec, in, params, on_token, user_data, out_ids, n_out, error);
  return generate_beams (state, dec, in, params, out_ids, n_out, error);
}

/* ---------------------------------------------------------------- parameters */

void
vlm_gen_params_init (VlmGenParams *params)
{
  *params = (VlmGenParams) {
    .max_new_tokens = 20,
    .num_beams = 1,
    .length_penalty = 1.0f,
    .early_stopping = FALSE,
    .do_sample = FALSE,
    .temperature = 1.0f,
    .top_p = 1.0f,
    .repetition_penalty = 1.0f,
    .top_k = 50,
    .seed = 0,
    .forced_bos_token_id = -1,
    .forced_eos_token_id = -1,
  };
}

typedef enum { KEY_INT, KEY_FLOAT, KEY_BOOL, KEY_EARLY_STOPPING, KEY_SEED, KEY_STOP_STRINGS } VlmKeyType;

/* One generation_config key: where it lives and what values it takes
 * (lo < value or lo <= value as lo_open says; value <= hi). */
typedef struct {
  const char *name;
  VlmKeyType type;
  gsize offset;
  double lo, hi;
  gboolean lo_open;
  const char *expected;
} VlmGenKey;

#define FIELD(f) G_STRUCT_OFFSET (VlmGenParams, f)
static const VlmGenKey gen_keys[] = {
  { "max_new_tokens", KEY_INT, FIELD (max_new_tokens), 1, 1 << 16, FALSE, "an integer in [1, 65536]" },
  { "num_beams", KEY_INT, FIELD (num_beams), 1, 64, FALSE, "an integer in [1, 64]" },
  { "length_penalty", KEY_FLOAT, FIELD (length_penalty), -HUGE_VAL, HUGE_VAL, FALSE, "a number" },
  { "early_stopping", KEY_EARLY_STOPPING, FIELD (early_stopping), 0, 0, FALSE, "true, false or never" },
  { "do_sample", KEY_BOOL, FIELD (do_sample), 0, 0, FALSE, "true or false" },
  { "temperature", KEY_FLOAT, FIELD (temperature), 0, HUGE_VAL, TRUE, "a number > 0" },
  { "top_k", KEY_INT, FIELD (top_k), 0, G_MAXINT, FALSE, "an integer >= 0 (0: off)" },
  { "top_p", KEY_FLOAT, FIELD (top_p), 0, 1, TRUE, "a number in (0, 1]" },
  { "repetition_penalty", KEY_FLOAT, FIELD (repetition_penalty), 0, HUGE_VAL, TRUE, "a number > 0" },
  { "seed", KEY_SEED, FIELD (seed), 0, 0, FALSE, "an unsigned 64-bit integer" },
  { "stop_strings", KEY_STOP_STRINGS, FIELD (stop_strings), 0, 0, FALSE,
    "up to 4 non-empty UTF-8 strings of at most 63 bytes separated by '|'" },
  { "no_repeat_ngram_size", KEY_INT, FIELD (no_repeat_ngram_size), 0, G_MAXINT, FALSE, "an integer >= 0 (0: off)" },
  { "forced_bos_token_id", KEY_INT, FIELD (forced_bos_token_id), -1, G_MAXINT, FALSE, "a token id (-1: off)" },
  { "forced_eos_token_id", KEY_INT, FIELD (forced_eos_token_id), -1, G_MAXINT, FALSE, "a token id (-1: off)" },
};
#undef FIELD

static const VlmGenKey *
gen_key_find (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (gen_keys); i++)
    if (strcmp (gen_keys[i].name, name) == 0)
      return &gen_keys[i];
  return NULL;
}

static gboolean
parse_bool (const char *text, gboolean *out)
{
  if (g_ascii_strcasecmp (text, "true") == 0 || strcmp (text, "1") == 0)
    *out = TRUE;
  else if (g_ascii_strcasecmp (text, "false") == 0 || strcmp (text, "0") == 0)
    *out = FALSE;
  else
    return FALSE;
  return TRUE;
}

/* Whether `v` lies in the range of number key `key`. A float key holds
 * what v rounds to as a float: past float's range it is refused, and a
 * value that underflows (temperature=7e-111 → 0) is judged as it is kept. */
static gboolean
in_range (const VlmGenKey *key, double v)
{
  if (key->type == KEY_FLOAT)
    v = isfinite (v) && fabs (v) <= FLT_MAX ? (double) (float) v : NAN;
  return !isnan (v) && (key->lo_open ? v > key->lo : v >= key->lo) && v <= key->hi;
}

static gboolean
parse_number (const VlmGenKey *key, const char *text, double *out)
{
  char *end;

  *out = g_ascii_strtod (text, &end);
  return *text && *end == '\0' && in_range (key, *out);
}

/* Copies the n strings into params->stop_strings (all of them, or nothing:
 * FALSE if there are too many, or one is empty, too long or not UTF-8). */
static gboolean
stop_strings_set (VlmGenParams *params, const char *const *strs, int n)
{
  G_STATIC_ASSERT (VLM_MAX_STOP_STRINGS == 4 && VLM_STOP_STRING_MAX == 64); /* as "expected" says */
  if (n > VLM_MAX_STOP_STRINGS)
    return FALSE;
  for (int i = 0; i < n; i++)
    if (!strs[i] || !*strs[i] || strlen (strs[i]) >= VLM_STOP_STRING_MAX
        || !g_utf8_validate (strs[i], -1, NULL))
      return FALSE;
  memset (params->stop_strings, 0, sizeof params->stop_strings);
  for (int i = 0; i < n; i++)
    strcpy (params->stop_strings[i], strs[i]);
  return TRUE;
}

/* "a|b": '|'-separated, each stripped; "" clears. */
static gboolean
parse_stop_strings (VlmGenParams *params, const char *text)
{
  char **parts;
  gboolean ok;

  if (*text == '\0')
    return stop_strings_set (params, NULL, 0);
  parts = g_strsplit (text, "|", -1);
  for (char **it = parts; *it; it++)
    g_strstrip (*it);
  ok = stop_strings_set (params, (const char *const *) parts, (int) g_strv_length (parts));
  g_strfreev (parts);
  return ok;
}

/* Stores the textual `text` into the field `key` names; FALSE if it does
 * not parse or lies out of range. */
static gboolean
gen_key_set (VlmGenParams *params, const VlmGenKey *key, const char *text)
{
  void *field = (char *) params + key->offset;
  double num;
  guint64 seed;
  gboolean flag;

  switch (key->type) {
  case KEY_INT:
    if (!parse_number (key, text, &num) || num != floor (num))
      return FALSE;
    *(int *) field = (int) num;
    return TRUE;
  case KEY_FLOAT:
    if (!parse_number (key, text, &num))
      return FALSE;
    *(float *) field = (float) num;
    return TRUE;
  case KEY_BOOL:
    if (!parse_bool (text, &flag))
      return FALSE;
    *(gboolean *) field = flag;
    return TRUE;
  case KEY_EARLY_STOPPING:
    if (g_ascii_strcasecmp (text, "never") == 0)
      flag = VLM_EARLY_STOPPING_NEVER;
    else if (!parse_bool (text, &flag))
      return FALSE;
    *(gboolean *) field = flag;
    return TRUE;
  case KEY_SEED:
    if (!g_ascii_string_to_unsigned (text, 10, 0, G_MAXUINT64, &seed, NULL))
      return FALSE;
    *(guint64 *) field = seed;
    return TRUE;
  case KEY_STOP_STRINGS:
    return parse_stop_strings (params, text);
  }
  g_assert_not_reached ();
}

/* Whether the field `key` names holds a value the parser could have stored. */
static gboolean
gen_key_valid (const VlmGenParams *params, const VlmGenKey *key)
{
  const void *field = (const char *) params + key->offset;
  const char (*stops)[VLM_STOP_STRING_MAX] = field;
  gboolean flag;

  switch (key->type) {
  case KEY_INT:
    return in_range (key, *(const int *) field);
  case KEY_FLOAT:
    return in_range (key, *(const float *) field);
  case KEY_BOOL:
  case KEY_EARLY_STOPPING:
    flag = *(const gboolean *) field;
    return flag == FALSE || flag == TRUE || (key->type == KEY_EARLY_STOPPING && flag == VLM_EARLY_STOPPING_NEVER);
  case KEY_SEED:
    return TRUE;
  case KEY_STOP_STRINGS:
    /* each NUL-terminated in its slot and UTF-8, up to the first "" */
    for (int i = 0; i < VLM_MAX_STOP_STRINGS && stops[i][0]; i++)
      if (!memchr (stops[i], '\0', VLM_STOP_STRING_MAX) || !g_utf8_validate (stops[i], -1, NULL))
        return FALSE;
    return TRUE;
  }
  g_assert_not_reached ();
}

gboolean
vlm_gen_params_check (const VlmGenParams *params, GError **error)
{
  for (guint i = 0; i < G_N_ELEMENTS (gen_keys); i++)
    if (!gen_key_valid (params, &gen_keys[i])) {
      g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT, "generation parameters: %s must be %s",
                   gen_keys[i].name, gen_keys[i].expected);
      return FALSE;
    }
  return TRUE;
}

gboolean
vlm_gen_params_parse (VlmGenParams *params, const char *text, GError **error)
{
  VlmGenParams parsed = *params;
  char **items;
  gboolean ok = TRUE;

  if (!text)
    return TRUE;
  items = g_strsplit (text, ",", -1);
  for (char **it = items; ok && *it; it++) {
    char *item = g_strstrip (*it), *eq = strchr (item, '=');
    const VlmGenKey *key;
    if (*item == '\0')
      continue;  /* "a=1," or an empty string */
    if (!eq) {
      g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT,
                   "generation-config: '%s' is not key=value", item);
      ok = FALSE;
      continue;
    }
    *eq = '\0';
    g_strstrip (item);
    const char *value = g_strstrip (eq + 1);
    if (!(key = gen_key_find (item))) {
      g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT,
                   "generation-config: unknown key '%s' (known: max_new_tokens, num_beams, "
                   "length_penalty, early_stopping, do_sample, temperature, top_k, top_p, "
                   "repetition_penalty, seed, stop_strings, no_repeat_ngram_size, forced_bos_token_id, "
                   "forced_eos_token_id)", item);
      ok = FALSE;
    } else if (!gen_key_set (&parsed, key, value)) {
      g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT,
                   "generation-config: bad value '%s' for %s: expected %s", value, item,
                   key->expected);
      ok = FALSE;
    }
  }
  g_strfreev (items);
  if (ok)
    *params = parsed;
  return ok;
}

/* A JSON scalar as the text vlm_gen_params_parse would read; NULL for null,
 * arrays and objects. g_free. */
static char *
json_scalar_text (JsonNode *node)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (!JSON_NODE_HOLDS_VALUE (node))
    return NULL;
  switch (json_node_get_value_type (node)) {
  case G_TYPE_INT64:
    return g_strdup_printf ("%" G_GINT64_FORMAT, json_node_get_int (node));
  case G_TYPE_DOUBLE:
    return g_strdup (g_ascii_dtostr (buf, sizeof buf, json_node_get_double (node)));
  case G_TYPE_BOOLEAN:
    return g_strdup (json_node_get_boolean (node) ? "true" : "false");
  case G_TYPE_STRING:
    return g_strdup (json_node_get_string (node));
  default:
    return NULL;
  }
}

/* Values that do not fit a key (null, or out of range) leave the default:
 * a checkpoint's generation_config.json must not stop the model loading. */
/* HF's stop_strings: one string (not split) or a list of strings. */
static void
apply_json_stop_strings (VlmGenParams *params, JsonNode *node)
{
  const char *strs[VLM_MAX_STOP_STRINGS];
  int n = 0;

  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING) {
    strs[0] = json_node_get_string (node);
    stop_strings_set (params, strs, 1);
  } else if (JSON_NODE_HOLDS_ARRAY (node)) {
    JsonArray *a = json_node_get_array (node);
    if (json_array_get_length (a) > VLM_MAX_STOP_STRINGS)
      return;
    for (guint i = 0; i < json_array_get_length (a); i++) {
      JsonNode *e = json_array_get_element (a, i);
      if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_STRING)
        return;
      strs[n++] = json_node_get_string (e);
    }
    stop_strings_set (params, strs, n);
  }
}

void
vlm_gen_params_apply_json (VlmGenParams *params, JsonObject *config)
{
  for (guint i = 0; i < G_N_ELEMENTS (gen_keys); i++) {
    JsonNode *node = json_object_get_member (config, gen_keys[i].name);
    if (node && gen_keys[i].type == KEY_STOP_STRINGS) {
      apply_json_stop_strings (params, node);
      continue;
    }
    char *text = node ? json_scalar_text (node) : NULL;
    if (text)
      gen_key_set (params, &gen_keys[i], text);
    g_free (text);
  }
}

/* ---------------------------------------------------------------- batched steps */

int
vlm_step_rows (const VlmStepGroup *groups, int n)
{
  int rows = 0;
  for (int g = 0; g < n; g++)
    rows += groups[g].error ? 0 : groups[g].n_beams;
  return rows;
}

float *
vlm_step_logits (VlmStepGroup *groups, int n, int rows, VlmArena *arena, int vocab_size)
{
  if (n == 1)
    return groups[0].logits;
  return vlm_arena_new (arena, float, (size_t) rows * vocab_size);
}

void
vlm_step_logits_scatter (VlmStepGroup *groups, int n, const float *logits, int vocab_size)
{
  if (n == 1)
    return;
  for (int g = 0; g < n; g++) {
    if (groups[g].error)
      continue;
    size_t size = (size_t) groups[g].n_beams * vocab_size;
    memcpy (groups[g].logits, logits, size * sizeof (float));
    logits += size;
  }
}

gboolean
vlm_step_one (gboolean (*step_batch) (VlmStepGroup *groups, int n_groups, VlmArena *arena, GError **error),
              void *self, VlmArena *arena, const int *tokens, int n_beams, int pos, float *logits, GError **error)
{
  VlmStepGroup group = {self, tokens, n_beams, pos, logits, NULL};
  if (!step_batch (&group, 1, arena, error))
    return FALSE;
  if (group.error)
    g_propagate_error (error, group.error);
  return !group.error;
}
