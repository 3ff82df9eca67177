/* test_batch.c — the batcher (vlm.h "batching"): several sessions of one
 * model captioning at once on one batcher give each the caption a private
 * session gives it — ids exact — whatever else is in flight, with each
 * stream's own prompt, beams, sampling and length; steps are really
 * shared (the batcher's stats); a cancelled or failing stream costs the
 * others nothing. (Tag models through a batcher: test_languagebind.) */
#include "arch.h"
#include "batcher.h"
#include "git.h"
#include "imgcap.h"
#include "llava.h"
#include "testutil.h"

#include <vlm/vlm.h>

#define N_STREAMS 4
#define N_CLIPS 3

typedef struct {
  const char *name;
  const char *dir;          /* under ../shared, or the project root with a leading '@' */
  const char *captioner;    /* vt_captioner_folder's fixture instead of dir */
  const char *prompt;       /* a user prompt (the chat models'); NULL: the plain caption */
} Model;

static const Model models[] = {
  {"testcard", "@models/testcard-git", NULL, NULL},
  {"git-video-tiny", "fixtures/git-video-tiny", NULL, NULL},
  {"video-llava-tiny", "fixtures/video-llava-tiny", NULL, "What is happening in the video?"},
  {"llava-onevision-tiny", "fixtures/llava-onevision-qwen2-tiny", NULL, "Describe the video."},
  {"blip-tiny", NULL, "blip-tiny", NULL},
  {"vit-gpt2-tiny", NULL, "vit-gpt2-tiny", NULL},
};

static char *
model_dir (const Model *m)
{
  if (m->captioner)
    return vt_captioner_folder (m->captioner, 120);
  return m->dir[0] == '@' ? vt_project_path (m->dir + 1) : vt_shared_path (m->dir);
}

/* ---------------------------------------------------------------- clips */

#define W 64
#define H 48
#define F 4

/* Clip c of stream s: moving colour bars, a different phase and tint per
 * stream and clip, so every caption has its own input. */
typedef struct {
  guint8 rgb[F][H * W * 3];
  VlmFrame frames[F];
} Clip;

static void
clip_init (Clip *clip, int stream, int c)
{
  for (int f = 0; f < F; f++) {
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++) {
        guint8 *p = clip->rgb[f] + (y * W + x) * 3;
        int bar = ((x + 5 * f + 11 * c) * 7 / W + stream) % 7;
        p[0] = bar & 1 ? 230 : 20 + 40 * stream;
        p[1] = bar & 2 ? 220 : 30 + 25 * c;
        p[2] = bar & 4 ? 210 : (y * 255) / H;
      }
    clip->frames[f] = (VlmFrame) {VLM_PIXEL_RGB, W, H, {clip->rgb[f]}, {W * 3}};
  }
}

/* Stream s's generation settings: greedy, beam search, sampling, short greedy. */
static VlmGenParams
stream_params (VlmModel *model, int s)
{
  VlmGenParams p = vlm_gen_default_params (model);
  static const char *const settings[N_STREAMS] = {
    "max_new_tokens=8,num_beams=1",
    "max_new_tokens=6,num_beams=3",
    "max_new_tokens=10,do_sample=true,temperature=1.3,top_k=20,seed=7",
    "max_new_tokens=3,num_beams=1",
  };
  GError *error = NULL;
  g_assert_true (vlm_gen_params_parse (&p, settings[s], &error));
  g_assert_no_error (error);
  return p;
}

/* ---------------------------------------------------------------- streams */

/* The batcher's thread held until every stream has set off, so that their
 * first clips wait together and their captions overlap from the start
 * (started together but unheld, on a loaded machine the four streams'
 * captions of a tiny model were seen to run one after another: no step
 * with two captions). */
typedef struct {
  GMutex lock;
  GCond cond;
  int ready, n;
  gboolean holding;
  VlmBatcher *batcher;
} Hold;

static gboolean
hold_run (void *data, GError **error)
{
  Hold *h = data;
  g_mutex_lock (&h->lock);
  h->holding = TRUE;
  g_cond_broadcast (&h->cond);
  while (h->ready < h->n)
    g_cond_wait (&h->cond, &h->lock);
  g_mutex_unlock (&h->lock);
  g_usleep (50 * 1000);   /* for their first encodes to reach the queue */
  return TRUE;
}

static gpointer
holder_run (gpointer data)
{
  Hold *h = data;
  GError *error = NULL;
  g_assert_true (vlm_batcher_call (h->batcher, hold_run, h, NULL, &error));
  g_assert_no_error (error);
  return NULL;
}

typedef struct {
  VlmSession *session;
  const Model *m;
  VlmGenParams params;
  int stream;
  GMutex *start_lock;
  GCond *start;
  gboolean *go;
  Hold *hold;
  VlmCaption out[N_CLIPS];
  GError *error;
} Stream;

static gpointer
stream_run (gpointer data)
{
  Stream *st = data;
  g_mutex_lock (st->start_lock);
  while (!*st->go)
    g_cond_wait (st->start, st->start_lock);
  g_mutex_unlock (st->start_lock);
  if (st->hold) {
    g_mutex_lock (&st->hold->lock);
    st->hold->ready++;
    g_cond_broadcast (&st->hold->cond);
    g_mutex_unlock (&st->hold->lock);
  }
  Clip *clip = g_new (Clip, 1);
  for (int c = 0; c < N_CLIPS && !st->error; c++) {
    clip_init (clip, st->stream, c);
    vlm_session_caption (st->session, clip->frames, F, st->m->prompt, &st->params, NULL, NULL, &st->out[c],
                         &st->error);
  }
  g_free (clip);
  return NULL;
}

/* The caption of stream s's clip c from a private session. */
static void
private_caption (VlmSession *s, const Model *m, const VlmGenParams *p, int stream, int c, VlmCaption *out)
{
  Clip *clip = g_new (Clip, 1);
  GError *error = NULL;
  clip_init (clip, stream, c);
  g_assert_true (vlm_session_caption (s, clip->frames, F, m->prompt, p, NULL, NULL, out, &error));
  g_assert_no_error (error);
  g_free (clip);
}

/* want[s][c]: every clip of streams 0..n-1 captioned by one private session. */
static void
private_captions (VlmModel *model, const Model *m, int n, VlmCaption want[][N_CLIPS])
{
  GError *error = NULL;
  VlmSession *priv = vlm_session_new (model, &error);
  g_assert_no_error (error);
  for (int s = 0; s < n; s++) {
    VlmGenParams p = stream_params (model, s);
    for (int c = 0; c < N_CLIPS; c++)
      private_caption (priv, m, &p, s, c, &want[s][c]);
  }
  vlm_session_free (priv);
}

/* A batcher for `model` and streams 0..n-1, each with a session on it and its settings. */
static VlmBatcher *
batched_streams (VlmModel *model, const Model *m, Stream *streams, int n)
{
  GError *error = NULL;
  VlmBatcher *b = vlm_batcher_new (model, &error);
  g_assert_no_error (error);
  for (int s = 0; s < n; s++) {
    streams[s] = (Stream) {vlm_session_new_batched (b, &error), m, stream_params (model, s), s};
    g_assert_no_error (error);
  }
  return b;
}

static void
assert_same_caption (const char *what, const VlmCaption *got, const VlmCaption *want)
{
  g_test_message ("%s: \"%s\" (%d tokens)", what, got->text, got->n_tokens);
  g_assert_cmpint (got->n_tokens, ==, want->n_tokens);
  for (int i = 0; i < want->n_tokens; i++)
    g_assert_cmpint (got->tokens[i], ==, want->tokens[i]);
  g_assert_cmpstr (got->text, ==, want->text);
}

/* Runs `n` streams (sessions[i] for stream i) at once, all starting
 * together; with `hold`, batcher b's thread is held until all have set off. */
static void
run_streams (Stream *streams, int n, VlmBatcher *hold)
{
  GMutex lock;
  GCond start;
  gboolean go = FALSE;
  Hold h = {.n = n, .batcher = hold};
  GThread *holder = NULL;
  g_mutex_init (&lock);
  g_cond_init (&start);
  g_mutex_init (&h.lock);
  g_cond_init (&h.cond);
  if (hold) {
    holder = g_thread_new ("holder", holder_run, &h);
    g_mutex_lock (&h.lock);
    while (!h.holding)
      g_cond_wait (&h.cond, &h.lock);
    g_mutex_unlock (&h.lock);
  }
  GThread *threads[N_STREAMS];
  for (int i = 0; i < n; i++) {
    streams[i].start_lock = &lock;
    streams[i].start = &start;
    streams[i].go = &go;
    streams[i].hold = hold ? &h : NULL;
    threads[i] = g_thread_new ("stream", stream_run, &streams[i]);
  }
  g_mutex_lock (&lock);
  go = TRUE;
  g_cond_broadcast (&start);
  g_mutex_unlock (&lock);
  for (int i = 0; i < n; i++)
    g_thread_join (threads[i]);
  if (holder)
    g_thread_join (holder);
  g_mutex_clear (&lock);
  g_cond_clear (&start);
  g_mutex_clear (&h.lock);
  g_cond_clear (&h.cond);
}

/* Four streams on one batcher, each its own settings and clips: every
 * caption equals the private session's, and steps were shared. */
typedef struct {
  const Model *m;
  const VtBackend *be;
} Case;

static void
test_parity (gconstpointer data)
{
  const Case *cs = data;
  const Model *m = cs->m;
  g_autofree char *dir = model_dir (m);
  VlmModel *model = vt_load_model (dir, cs->be);
  VlmCaption want[N_STREAMS][N_CLIPS];
  private_captions (model, m, N_STREAMS, want);
  Stream streams[N_STREAMS] = {0};
  VlmBatcher *b = batched_streams (model, m, streams, N_STREAMS);
  run_streams (streams, N_STREAMS, b);
  guint64 tokens = 0;
  for (int s = 0; s < N_STREAMS; s++) {
    g_assert_no_error (streams[s].error);
    for (int c = 0; c < N_CLIPS; c++) {
      g_autofree char *what = g_strdup_printf ("%s stream %d clip %d", m->name, s, c);
      assert_same_caption (what, &streams[s].out[c], &want[s][c]);
      tokens += streams[s].out[c].n_tokens;
      vlm_caption_clear (&streams[s].out[c]);
      vlm_caption_clear (&want[s][c]);
    }
    vlm_session_free (streams[s].session);
  }
  VlmBatcherStats st;
  vlm_batcher_get_stats (b, &st);
  g_test_message ("%s: %" G_GUINT64_FORMAT " steps for %" G_GUINT64_FORMAT " caption steps (%" G_GUINT64_FORMAT
                  " rows), at most %d captions a step; %" G_GUINT64_FORMAT " clips in %" G_GUINT64_FORMAT
                  " tower calls", m->name, st.steps, st.step_captions, st.step_rows, st.max_step_captions,
                  st.encodes, st.encode_batches);
  g_assert_cmpuint (st.encodes, ==, N_STREAMS * N_CLIPS);
  g_assert_cmpuint (st.prefills, ==, N_STREAMS * N_CLIPS);
  /* every generated token but each caption's first (from the prefill) is one caption step */
  g_assert_cmpuint (st.step_captions, <=, tokens);
  g_assert_cmpuint (st.step_captions, >=, tokens - N_STREAMS * N_CLIPS);
  g_assert_cmpint (st.max_step_captions, >=, 2);
  g_assert_cmpuint (st.steps, <, st.step_captions);
  vlm_batcher_unref (b);
  vlm_model_unref (model);
  if (m->captioner)
    vt_remove_folder (dir);
}

/* ---------------------------------------------------------------- failures */

typedef struct {
  VlmSession *session;
  int *n_tokens;
} Canceller;

static gboolean
cancel_after_two (int id, const char *piece, void *data)
{
  Canceller *c = data;
  (void) id, (void) piece;
  if (++*c->n_tokens == 2)
    vlm_session_cancel (c->session);
  return TRUE;
}

typedef struct {
  VlmSession *session;
  VlmGenParams params;
  Canceller canceller;
  int n_tokens;
  GError *error;
  VlmCaption out;
} Victim;

static gpointer
victim_run (gpointer data)
{
  Victim *v = data;
  Clip *clip = g_new (Clip, 1);
  clip_init (clip, 3, 0);
  v->canceller = (Canceller) {v->session, &v->n_tokens};
  vlm_session_caption (v->session, clip->frames, F, NULL, &v->params, cancel_after_two, &v->canceller, &v->out,
                       &v->error);
  g_free (clip);
  return NULL;
}

/* While three streams caption, a fourth is cancelled after two tokens and
 * then asks for an impossible caption: it gets CANCELLED, then the error;
 * the three get the private captions. */
static void
test_cancel_and_errors (void)
{
  const Model *m = &models[0];
  g_autofree char *dir = model_dir (m);
  VlmModel *model = vt_load_model (dir, &vt_backends[0]);
  GError *error = NULL;
  VlmCaption want[N_STREAMS][N_CLIPS];
  private_captions (model, m, 3, want);
  Stream streams[3] = {0};
  VlmBatcher *b = batched_streams (model, m, streams, 3);
  Victim v = {vlm_session_new_batched (b, &error), vlm_gen_default_params (model)};
  g_assert_no_error (error);
  g_assert_true (vlm_gen_params_parse (&v.params, "max_new_tokens=12,num_beams=1", NULL));
  GThread *victim = g_thread_new ("victim", victim_run, &v);
  run_streams (streams, 3, NULL);
  g_thread_join (victim);
  g_assert_error (v.error, VLM_ERROR, VLM_ERROR_CANCELLED);
  g_assert_cmpint (v.n_tokens, ==, 2);
  g_clear_error (&v.error);

  /* a prompt longer than the model's positions: an error for this stream only */
  GString *prompt = g_string_new (NULL);
  for (int i = 0; i < 64; i++)
    g_string_append (prompt, "red ball ");
  Clip *clip = g_new (Clip, 1);
  clip_init (clip, 3, 1);
  g_assert_false (vlm_session_caption (v.session, clip->frames, F, prompt->str, NULL, NULL, NULL, &v.out, &error));
  g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT);
  g_test_message ("an over-long prompt: %s", error->message);
  g_clear_error (&error);
  /* and the session still captions afterwards */
  g_assert_true (vlm_session_caption (v.session, clip->frames, F, NULL, NULL, NULL, NULL, &v.out, &error));
  g_assert_no_error (error);
  g_assert_cmpint (v.out.n_tokens, >, 0);
  vlm_caption_clear (&v.out);
  g_string_free (prompt, TRUE);
  g_free (clip);

  for (int s = 0; s < 3; s++) {
    g_assert_no_error (streams[s].error);
    for (int c = 0; c < N_CLIPS; c++) {
      g_autofree char *what = g_strdup_printf ("stream %d clip %d", s, c);
      assert_same_caption (what, &streams[s].out[c], &want[s][c]);
      vlm_caption_clear (&streams[s].out[c]);
      vlm_caption_clear (&want[s][c]);
    }
  }
  /* sessions and the batcher go in any order: the batcher lives until its last session */
  vlm_batcher_unref (b);
  for (int s = 0; s < 3; s++)
    vlm_session_free (streams[s].session);
  vlm_session_free (v.session);
  vlm_model_unref (model);
}

/* ---------------------------------------------------------------- churn */

/* Six threads, 40 captions each on one batcher, drawn at random: a stream's
 * settings, clip and prompt, a cancel after k tokens, a session freed and
 * made again. Every caption that ends is the private caption of its
 * inputs; a cancelled one ends CANCELLED; nothing hangs (the test's own
 * timeout) or leaks (under LeakSanitizer in tools/test.sh). */
#define CHURN_THREADS 6
#define CHURN_CAPTIONS 40

typedef struct {
  VlmBatcher *b;
  const Model *m;
  VlmModel *model;
  const VlmCaption (*want)[N_CLIPS];
  guint32 seed;
  int done, cancelled, remade;
} Churn;

typedef struct {
  VlmSession *session;
  int n, at;
} CancelAt;

static gboolean
cancel_at (int id, const char *piece, void *data)
{
  CancelAt *c = data;
  (void) id, (void) piece;
  if (++c->n == c->at)
    vlm_session_cancel (c->session);
  return TRUE;
}

static guint32
churn_rand (Churn *c, guint32 n)
{
  c->seed = c->seed * 1664525u + 1013904223u;
  return (c->seed >> 8) % n;
}

static gpointer
churn_run (gpointer data)
{
  Churn *c = data;
  GError *error = NULL;
  VlmSession *s = vlm_session_new_batched (c->b, &error);
  g_assert_no_error (error);
  Clip *clip = g_new (Clip, 1);
  for (int i = 0; i < CHURN_CAPTIONS; i++) {
    int stream = churn_rand (c, N_STREAMS), k = churn_rand (c, N_CLIPS);
    VlmGenParams p = stream_params (c->model, stream);
    clip_init (clip, stream, k);
    VlmCaption out;
    gboolean cancel = churn_rand (c, 4) == 0, streamed = cancel || churn_rand (c, 2);
    CancelAt at = {s, 0, cancel ? 1 + (int) churn_rand (c, 2) : -1};
    gboolean ok = vlm_session_caption (s, clip->frames, F, c->m->prompt, &p, streamed ? cancel_at : NULL, &at, &out,
                                       &error);
    if (cancel && p.num_beams == 1 && at.n >= at.at && !ok) {   /* beam search streams no tokens */
      g_assert_error (error, VLM_ERROR, VLM_ERROR_CANCELLED);
      g_clear_error (&error);
      c->cancelled++;
    } else {
      g_assert_no_error (error);
      g_assert_true (ok);
      g_assert_cmpint (out.n_tokens, ==, c->want[stream][k].n_tokens);
      for (int t = 0; t < out.n_tokens; t++)
        g_assert_cmpint (out.tokens[t], ==, c->want[stream][k].tokens[t]);
      vlm_caption_clear (&out);
      c->done++;
    }
    if (churn_rand (c, 8) == 0) {   /* a stream goes and another comes */
      vlm_session_free (s);
      s = vlm_session_new_batched (c->b, &error);
      g_assert_no_error (error);
      c->remade++;
    }
  }
  vlm_session_free (s);
  g_free (clip);
  return NULL;
}

static void
test_churn (void)
{
  const Model *m = &models[0];
  g_autofree char *dir = model_dir (m);
  VlmModel *model = vt_load_model (dir, &vt_backends[0]);
  VlmCaption want[N_STREAMS][N_CLIPS];
  private_captions (model, m, N_STREAMS, want);
  GError *error = NULL;
  VlmBatcher *b = vlm_batcher_new (model, &error);
  g_assert_no_error (error);
  Churn churn[CHURN_THREADS];
  GThread *threads[CHURN_THREADS];
  for (int i = 0; i < CHURN_THREADS; i++) {
    churn[i] = (Churn) {b, m, model, (const VlmCaption (*)[N_CLIPS]) want, 977u * (i + 1)};
    threads[i] = g_thread_new ("churn", churn_run, &churn[i]);
  }
  int done = 0, cancelled = 0, remade = 0;
  for (int i = 0; i < CHURN_THREADS; i++) {
    g_thread_join (threads[i]);
    done += churn[i].done;
    cancelled += churn[i].cancelled;
    remade += churn[i].remade;
  }
  VlmBatcherStats st;
  vlm_batcher_get_stats (b, &st);
  g_test_message ("%d captions equal to the private ones, %d cancelled, %d sessions remade; %" G_GUINT64_FORMAT
                  " steps, at most %d captions a step, %" G_GUINT64_FORMAT " clips in %" G_GUINT64_FORMAT
                  " tower calls", done, cancelled, remade, st.steps, st.max_step_captions, st.encodes,
                  st.encode_batches);
  g_assert_cmpint (done + cancelled, ==, CHURN_THREADS * CHURN_CAPTIONS);
  g_assert_cmpint (cancelled, >, 0);
  g_assert_cmpint (st.max_step_captions, >=, 2);
  for (int s = 0; s < N_STREAMS; s++)
    for (int c = 0; c < N_CLIPS; c++)
      vlm_caption_clear (&want[s][c]);
  vlm_batcher_unref (b);
  vlm_model_unref (model);
}

/* ---------------------------------------------------------------- towers */

/* The batched tower (VlmArch encode_batch, what the batcher runs when clips
 * wait together): three clips in one call give each run the stage outputs
 * three encode() calls give, to the last bit or within 1e-5 of range where
 * the longer matmuls round differently. */
static void
test_tower_batch (gconstpointer data)
{
  const Model *m = data;
  g_autofree char *dir = model_dir (m);
  VlmModel *model = vt_load_model (dir, &vt_backends[0]);
  const VlmArch *arch = model->arch;
  g_assert_nonnull (arch->encode_batch);
  VlmOps *ops = vt_ops_new (&vt_backends[0]);
  int nf = model->info.frames_per_clip, S = model->info.image_size, n = 3;
  size_t clip = (size_t) nf * 3 * S * S;
  guint32 seed = 12345;
  float *pixels[3];
  void *one[3], *batch[3];
  GError *error = NULL;
  for (int i = 0; i < n; i++) {
    pixels[i] = g_new (float, clip);
    for (size_t j = 0; j < clip; j++)
      pixels[i][j] = (float) ((seed = seed * 1664525u + 1013904223u) >> 8) / (1 << 23) - 1.0f;
    one[i] = arch->run_new (model, ops, 1, 16, &error);
    batch[i] = arch->run_new (model, ops, 1, 16, &error);
    g_assert_no_error (error);
    g_assert_true (arch->encode (one[i], pixels[i], nf, &error));
  }
  VlmArena arena;
  g_assert_true (vlm_arena_init (&arena, arch->encode_batch_bytes (model, n)));
  g_assert_true (arch->encode_batch (batch, (const float *const *) pixels, n, &arena, &error));
  g_assert_true (vlm_ops_take_error (ops, &error));
  g_assert_cmpuint (arena.used, ==, 0);
  /* what each architecture keeps of a clip: the tower's output and what the decoder reads */
  const char *names[2] = {NULL, NULL};
  size_t counts[2] = {0, 0};
  if (arch->stage (one[0], "vision_out")) {
    const Git *g = model->impl;
    size_t rows = (size_t) nf * g->vision.cfg.n_tokens;
    names[0] = "vision_out", counts[0] = rows * g->vision.cfg.hidden_size;
    names[1] = "visual_tokens", counts[1] = rows * g->text.hidden_size;
  } else if (arch->stage (one[0], "image_embeds")) {
    const VlmImageCaptioner *ic = model->impl;
    names[0] = "image_embeds", counts[0] = (size_t) ic->vision.cfg.n_tokens * ic->vision.cfg.hidden_size;
    names[1] = "memory", counts[1] = (size_t) ic->vision.cfg.n_tokens * ic->text.cfg.hidden_size;
  } else {
    const Llava *lv = model->impl;
    names[0] = "video_tokens", counts[0] = (size_t) lv->n_video_tokens * lv->projector.linear_2.n;
  }
  for (int i = 0; i < n; i++)
    for (int k = 0; k < 2 && names[k]; k++) {
      const float *want = arch->stage (one[i], names[k]), *got = arch->stage (batch[i], names[k]);
      g_autofree char *what = g_strdup_printf ("%s clip %d %s", m->name, i, names[k]);
      if (memcmp (got, want, counts[k] * sizeof (float)) == 0)
        g_test_message ("%s: bitwise equal", what);
      else
        vt_assert_close (what, got, want, (int64_t) counts[k], 1e-5);
    }
  vlm_arena_clear (&arena);
  for (int i = 0; i < n; i++) {
    arch->run_free (one[i]);
    arch->run_free (batch[i]);
    g_free (pixels[i]);
  }
  vlm_ops_free (ops);
  vlm_model_unref (model);
  if (m->captioner)
    vt_remove_folder (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_message ("CPU tier: %s", vlm_cpu_describe ());
  /* every model in f32 on oneDNN; the GIT and LLaVA ones in bf16 and int8 too */
  static Case cases[G_N_ELEMENTS (models) * 3];
  int n = 0;
  for (guint i = 0; i < G_N_ELEMENTS (models); i++) {
    const VtBackend *bes[3] = {&vt_backends[0], i < 4 ? &vt_backends[2] : NULL, i < 4 ? &vt_int8 : NULL};
    for (int k = 0; k < 3 && bes[k]; k++) {
      cases[n] = (Case) {&models[i], bes[k]};
      g_autofree char *path = g_strdup_printf ("/batch/parity/%s/%s", bes[k]->name, models[i].name);
      g_test_add_data_func (path, &cases[n++], test_parity);
    }
  }
  g_test_add_func ("/batch/cancel-and-errors", test_cancel_and_errors);
  g_test_add_func ("/batch/churn", test_churn);
  g_test_add_data_func ("/batch/tower/testcard", &models[0], test_tower_batch);
  g_test_add_data_func ("/batch/tower/git-video-tiny", &models[1], test_tower_batch);
  g_test_add_data_func ("/batch/tower/blip-tiny", &models[4], test_tower_batch);
  g_test_add_data_func ("/batch/tower/video-llava-tiny", &models[2], test_tower_batch);
  g_test_add_data_func ("/batch/tower/llava-onevision-tiny", &models[3], test_tower_batch);
  return g_test_run ();
}
