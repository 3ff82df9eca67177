/* session.c — the public session API (vlm.h): per-stream run state and
 * the caption pipeline frames → pixel_values → encode → prefill → generate
 * → text, and the tag pipeline of models without a decoder. */
#include "arch.h"
#include "batcher.h"

#include <math.h>

void
vlm_caption_clear (VlmCaption *c)
{
  if (!c)
    return;
  g_free (c->text);
  g_free (c->tokens);
  memset (c, 0, sizeof *c);
}

struct VlmSession {
  VlmModel *model;
  VlmOps *ops;
  void *run;
  int run_beams, run_tokens;    /* capacity the run was made for */
  VlmGenState *gen;
  float *pixels;                /* [frames_per_clip, 3, H, W] */
  void *scratch;                /* image preprocessing */
  size_t scratch_size;
  char *prompt;                 /* the last prompt and its ids, reused while unchanged */
  int *prompt_ids, n_prompt_ids;
  int *out_ids;
  int out_cap;
  char **labels;                /* the labels the run holds embeddings of (tag models) */
  volatile gint cancel;
  VlmBatcher *batcher;          /* NULL: the session computes on its caller's thread */
  const VlmDecoder *inner;      /* batched: the run's decoder, behind `proxy` */
  VlmDecoder proxy;             /* batched: steps handed to the batcher */
};

/* Runs a stage of the pipeline: on the batcher's thread for a batched
 * session (which also takes the ops' error there), here otherwise. */
static gboolean
stage (VlmSession *s, gboolean (*fn) (void *data, GError **error), void *data, GError **error)
{
  if (s->batcher)
    return vlm_batcher_call (s->batcher, fn, data, &s->cancel, error);
  return fn (data, error) && vlm_ops_take_error (s->ops, error);
}

/* (Re)creates the run state when a call needs more beams or tokens than it
 * was sized for: an allocation on a parameter change, never per clip. */
static gboolean
ensure_capacity (VlmSession *s, int beams, int tokens, GError **error)
{
  if (s->run && beams <= s->run_beams && tokens <= s->run_tokens)
    return TRUE;
  const VlmArch *arch = s->model->arch;
  beams = MAX (beams, s->run_beams);
  tokens = MAX (tokens, s->run_tokens);
  g_clear_pointer (&s->run, arch->run_free);
  if (!(s->run = arch->run_new (s->model, s->ops, beams, tokens, error)))
    return FALSE;
  s->run_beams = beams;
  s->run_tokens = tokens;
  vlm_gen_state_free (s->gen);
  s->gen = vlm_gen_state_new (s->model->info.vocab_size, beams, tokens);
  return TRUE;
}

typedef struct {
  VlmSession *s;
  int beams, tokens;
} Capacity;

static gboolean
capacity_stage (void *data, GError **error)
{
  Capacity *c = data;
  return ensure_capacity (c->s, c->beams, c->tokens, error);
}

static VlmSession *
session_new (VlmModel *model, VlmBatcher *batcher, GError **error)
{
  if (!model->tokenizer || !model->processor.out_h) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_NOT_FOUND, "%s: no %s: a model-level checkpoint cannot caption",
                 model->dir, model->tokenizer ? "processor_config.json or preprocessor_config.json" : "tokenizer.json");
    return NULL;
  }
  VlmSession *s = g_new0 (VlmSession, 1);
  s->model = vlm_model_ref (model);
  const VlmImageProcessor *p = &model->processor;
  size_t pixels = (size_t) model->info.frames_per_clip * 3 * p->out_h * p->out_w;
  /* sizes from the folder's configs: an error, not an abort, when too big */
  if (!(s->pixels = g_try_new (float, pixels)))
    g_set_error (error, VLM_ERROR, VLM_ERROR_INFERENCE, "cannot allocate %zu MiB of pixel values", pixels >> 18);
  if (batcher) {
    s->batcher = vlm_batcher_ref (batcher);
    s->ops = vlm_batcher_ops (batcher);
  } else if (s->pixels && (s->ops = vlm_ops_new (model->params.backend, model->params.n_threads, error))) {
    vlm_ops_set_attention_dtype (s->ops, model->weights.dtype);
  }
  Capacity c = {s, MAX (model->gen_defaults.num_beams, 1), 64};
  if (!s->pixels || !s->ops || !stage (s, capacity_stage, &c, error)) {
    vlm_session_free (s);
    return NULL;
  }
  return s;
}

VlmSession *
vlm_session_new (VlmModel *model, GError **error)
{
  return session_new (model, NULL, error);
}

VlmSession *
vlm_session_new_batched (VlmBatcher *batcher, GError **error)
{
  return session_new (vlm_batcher_model (batcher), batcher, error);
}

void
vlm_session_free (VlmSession *s)
{
  if (!s)
    return;
  if (s->run)
    s->model->arch->run_free (s->run);
  vlm_gen_state_free (s->gen);
  if (!s->batcher)
    vlm_ops_free (s->ops);
  vlm_batcher_unref (s->batcher);
  g_free (s->pixels);
  g_free (s->scratch);
  g_free (s->prompt);
  g_free (s->prompt_ids);
  g_free (s->out_ids);
  g_strfreev (s->labels);
  vlm_model_unref (s->model);
  g_free (s);
}

void
vlm_session_cancel (VlmSession *s)
{
  g_atomic_int_set (&s->cancel, 1);
}

/* Frames → pixel_values for exactly frames_per_clip frames, picking evenly
 * spaced frames (the first and the last among them) when the clip has
 * another count; a one-image model (BLIP, ViT-GPT2, single-image GIT) sees
 * the clip's middle frame, (n - 1) / 2. */
static gboolean
preprocess (VlmSession *s, const VlmFrame *frames, int n_frames, GError **error)
{
  const VlmImageProcessor *p = &s->model->processor;
  int F = s->model->info.frames_per_clip;
  size_t frame_floats = (size_t) 3 * p->out_h * p->out_w;
  for (int f = 0; f < F; f++) {
    const VlmFrame *fr = &frames[F > 1 ? (int) ((gint64) f * (n_frames - 1) / (F - 1)) : (n_frames - 1) / 2];
    size_t need = vlm_image_scratch_size (p, fr->width, fr->height);
    if (need > s->scratch_size) {   /* grows only when a larger frame size appears */
      g_free (s->scratch);
      s->scratch_size = 0;
      if (!(s->scratch = g_try_malloc (need))) {
        g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_FRAME, "cannot allocate %zu MiB to preprocess a %dx%d frame",
                     need >> 20, fr->width, fr->height);
        return FALSE;
      }
      s->scratch_size = need;
    }
    if (!vlm_image_preprocess (p, fr, s->pixels + f * frame_floats, s->scratch, error))
      return FALSE;
  }
  return TRUE;
}

static const int *
prompt_ids (VlmSession *s, const char *prompt, int *n, GError **error)
{
  prompt = prompt ? prompt : "";
  if (!s->prompt || strcmp (s->prompt, prompt) != 0) {
    int k = 0;
    int *ids = s->model->arch->prompt_ids (s->model, prompt, &k, error);
    if (!ids)
      return NULL;
    g_free (s->prompt_ids);
    g_free (s->prompt);
    s->prompt_ids = ids;
    s->n_prompt_ids = k;
    s->prompt = g_strdup (prompt);
  }
  *n = s->n_prompt_ids;
  return s->prompt_ids;
}

/* Streams each token to the caller with the text it adds: the caption is
 * decoded again after every token and the new suffix handed on. Used only
 * when a caller asked for streaming: otherwise tokens are not decoded. */
typedef struct {
  VlmSession *s;
  VlmTokenFunc func;
  void *data;
  int n;             /* tokens so far, kept in s->out_ids */
  char *text;        /* their decoded text */
} TokenStream;

static gboolean
stream_token (int id, const char *piece, void *user_data)
{
  TokenStream *ts = user_data;
  ts->s->out_ids[ts->n++] = id;   /* the same ids vlm_generate is writing there */
  char *text = vlm_tokenizer_decode (ts->s->model->tokenizer, ts->s->out_ids, ts->n, TRUE);
  const char *prev = ts->text ? ts->text : "";
  size_t old = strlen (prev);
  /* A completed multi-byte character may rewrite the old tail: hand on only a clean suffix. */
  gboolean go = ts->func (id, strncmp (text, prev, old) == 0 ? text + old : "", ts->data);
  g_free (ts->text);
  ts->text = text;
  return go;
}

/* HF StopStringCriteria for vlm_generate, on the decoded text of the
 * generated ids: as it is asked after every token of a sequence, the
 * first text holding a stop string is the one whose last token completed
 * it (HF matches the string ending inside the last token). HF also looks
 * into the prompt's last tokens; we match the generated text only, so a
 * stop string cannot straddle the prompt and the caption. The whole text
 * is checked: a completed character may rewrite its tail. */
typedef struct {
  const VlmTokenizer *tok;
  const VlmGenParams *params;
} StopStrings;

static gboolean
hits_stop_string (void *data, const int *ids, int n)
{
  const StopStrings *ss = data;
  char *text = vlm_tokenizer_decode (ss->tok, ids, n, TRUE);
  gboolean hit = FALSE;
  for (int i = 0; i < VLM_MAX_STOP_STRINGS && ss->params->stop_strings[i][0] && !hit; i++)
    hit = strstr (text, ss->params->stop_strings[i]) != NULL;
  g_free (text);
  return hit;
}

static double
ms_since (gint64 *t)
{
  gint64 now = g_get_monotonic_time ();
  double ms = (now - *t) / 1000.0;
  *t = now;
  return ms;
}

static gboolean
encode (VlmSession *s, GError **error)
{
  const VlmModel *m = s->model;
  if (s->batcher)
    return vlm_batcher_encode (s->batcher, s->run, s->pixels, &s->cancel, error);
  return m->arch->encode (s->run, s->pixels, m->info.frames_per_clip, error) && vlm_ops_take_error (s->ops, error);
}

typedef struct {
  VlmSession *s;
  const int *ids;
  int n, pos;            /* out: the cache length after the prompt */
  const float *logits;   /* out: the last position's */
} Prefill;

static gboolean
prefill_stage (void *data, GError **error)
{
  Prefill *p = data;
  return (p->logits = p->s->model->arch->prefill (p->s->run, p->ids, p->n, &p->pos, error)) != NULL;
}

/* A batched session's decoder: steps go to the batcher, reorders (its own
 * cache's rows, between its steps) run here. */
static gboolean
proxy_step (void *self, const int *tokens, int n_beams, int pos, float *logits, GError **error)
{
  VlmSession *s = self;
  return vlm_batcher_step (s->batcher, s->inner, tokens, n_beams, pos, logits, error);
}

static void
proxy_reorder (void *self, const int *src, int n_beams, int len)
{
  VlmSession *s = self;
  s->inner->reorder (s->inner->self, src, n_beams, len);
}

gboolean
vlm_session_caption (VlmSession *s, const VlmFrame *frames, int n_frames, const char *prompt,
                     const VlmGenParams *params, VlmTokenFunc on_token, void *user_data,
                     VlmCaption *out, GError **error)
{
  VlmModel *m = s->model;
  const VlmArch *arch = m->arch;
  VlmGenParams gp = params ? *params : m->gen_defaults;
  memset (out, 0, sizeof *out);
  g_atomic_int_set (&s->cancel, 0);
  if (!arch->decoder) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT, "%s (%s) does not generate text; use vlm_session_tag",
                 m->name, m->architecture);
    return FALSE;
  }
  if (n_frames < 1 || !frames) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT, "a clip needs at least one frame (got %d)", n_frames);
    return FALSE;
  }
  /* before anything is sized by them */
  if (!vlm_gen_params_check (&gp, error))
    return FALSE;
  if (!s->batcher)
    vlm_ops_bind_thread (s->ops);
  gint64 t = g_get_monotonic_time (), t_start = t;
  int n_prompt = 0;
  const int *ids;
  if (!preprocess (s, frames, n_frames, error))
    return FALSE;
  out->preprocess_ms = ms_since (&t);
  if (!(ids = prompt_ids (s, prompt, &n_prompt, error)))
    return FALSE;
  if (n_prompt >= m->info.max_positions) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT, "the prompt is %d tokens; %s holds %d positions",
                 n_prompt, m->name, m->info.max_positions);
    return FALSE;
  }
  /* As HF would fail past the position table, stop where it ends. */
  gp.max_new_tokens = MIN (gp.max_new_tokens, m->info.max_positions - n_prompt);
  Capacity c = {s, gp.num_beams, n_prompt + gp.max_new_tokens};
  if (!stage (s, capacity_stage, &c, error) || !encode (s, error))
    return FALSE;
  out->vision_ms = ms_since (&t);
  Prefill pf = {s, ids, n_prompt, 0, NULL};
  if (!stage (s, prefill_stage, &pf, error))
    return FALSE;
  out->prefill_ms = ms_since (&t);
  if (gp.max_new_tokens > s->out_cap) {
    g_free (s->out_ids);
    s->out_ids = g_new (int, gp.max_new_tokens);
    s->out_cap = gp.max_new_tokens;
  }
  if (arch->decoder_prompt)
    ids = arch->decoder_prompt (s->run, &n_prompt);
  StopStrings stops = {m->tokenizer, &gp};
  VlmGenInput in = {ids, n_prompt, pf.pos, pf.logits, m->eos_ids, m->n_eos, m->pad_id, &s->cancel,
                    gp.stop_strings[0][0] ? hits_stop_string : NULL, &stops};
  int n_out = 0;
  TokenStream stream = {s, on_token, user_data, 0, NULL};
  const VlmDecoder *dec = arch->decoder (s->run);
  if (s->batcher) {   /* each step joins the other captions' on the batcher */
    s->inner = dec;
    s->proxy = (VlmDecoder) {s, dec->vocab_size, proxy_step, proxy_reorder};
    dec = &s->proxy;
    vlm_batcher_decoding (s->batcher, +1);
  }
  gboolean ok = vlm_generate (s->gen, dec, &in, &gp, on_token ? stream_token : NULL, &stream, s->out_ids, &n_out,
                              error);
  if (s->batcher)
    vlm_batcher_decoding (s->batcher, -1);
  g_free (stream.text);
  if (!ok || (!s->batcher && !vlm_ops_take_error (s->ops, error)))
    return FALSE;
  out->decode_ms = ms_since (&t);
  out->tokens = g_memdup2 (s->out_ids, n_out * sizeof (int));
  out->n_tokens = n_out;
  out->text = vlm_tokenizer_decode (m->tokenizer, s->out_ids, n_out, TRUE);
  out->total_ms = (g_get_monotonic_time () - t_start) / 1000.0;
  return TRUE;
}

static gboolean
same_labels (char **held, const char *const *labels, int n)
{
  if (!held || g_strv_length (held) != (guint) n)
    return FALSE;
  for (int i = 0; i < n; i++)
    if (strcmp (held[i], labels[i]) != 0)
      return FALSE;
  return TRUE;
}

typedef struct {
  VlmSession *s;
  const char *const *labels;
  int n_labels;
  float *scores;
} Tag;

/* Label embeddings (once per label set), the clip, its scores. */
static gboolean
tag_stage (void *data, GError **error)
{
  Tag *t = data;
  VlmSession *s = t->s;
  const VlmArch *arch = s->model->arch;
  if (!same_labels (s->labels, t->labels, t->n_labels)) {
    g_clear_pointer (&s->labels, g_strfreev);
    if (!arch->set_labels (s->run, t->labels, t->n_labels, error))
      return FALSE;
    s->labels = g_new0 (char *, t->n_labels + 1);
    for (int i = 0; i < t->n_labels; i++)
      s->labels[i] = g_strdup (t->labels[i]);
  }
  if (!arch->encode (s->run, s->pixels, s->model->info.frames_per_clip, error))
    return FALSE;
  arch->tag (s->run, t->scores);
  return TRUE;
}

gboolean
vlm_session_tag (VlmSession *s, const VlmFrame *frames, int n_frames, const char *const *labels,
                 int n_labels, float *scores, float *probs, GError **error)
{
  VlmModel *m = s->model;
  const VlmArch *arch = m->arch;
  if (!arch->tag) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT, "%s (%s) does not score labels", m->name, m->architecture);
    return FALSE;
  }
  if (n_frames < 1 || !frames || n_labels < 1 || !labels || !scores) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT, "tagging needs frames (got %d) and labels (got %d)",
                 n_frames, n_labels);
    return FALSE;
  }
  g_atomic_int_set (&s->cancel, 0);
  if (!s->batcher)
    vlm_ops_bind_thread (s->ops);
  Tag t = {s, labels, n_labels, scores};
  if (!preprocess (s, frames, n_frames, error) || !stage (s, tag_stage, &t, error))
    return FALSE;
  if (probs) {   /* softmax across the labels */
    float top = scores[0];
    double sum = 0;
    for (int i = 1; i < n_labels; i++)
      top = MAX (top, scores[i]);
    for (int i = 0; i < n_labels; i++)
      sum += probs[i] = expf (scores[i] - top);
    for (int i = 0; i < n_labels; i++)
      probs[i] = (float) (probs[i] / sum);
  }
  return TRUE;
}
