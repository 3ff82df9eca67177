/* model.c — the public API (vlm.h): errors, logging, weights, model loading
 * by architecture, sessions and the caption pipeline
 * frames → pixel_values → encode → prefill → generate → text. */
#include "model.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

G_DEFINE_QUARK (vlm-error-quark, vlm_error)

/* ---------------------------------------------------------------- logging */

static VlmLogFunc log_func;
static void *log_data;

void
vlm_set_log_func (VlmLogFunc func, void *user_data)
{
  log_func = func;
  log_data = user_data;
}

void vlm_log (VlmLogLevel level, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

void
vlm_log (VlmLogLevel level, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  static const GLogLevelFlags glib_level[] = {G_LOG_LEVEL_CRITICAL, G_LOG_LEVEL_WARNING,
                                              G_LOG_LEVEL_INFO, G_LOG_LEVEL_DEBUG};
  if (log_func)
    log_func (level, msg, log_data);
  else
    g_log ("vlm", level == VLM_LOG_ERROR ? G_LOG_LEVEL_WARNING : glib_level[level], "%s", msg);
}

/* ---------------------------------------------------------------- weights */

static const VlmTensor *
weights_vtensor (VlmWeights *w, GError **error, int ndim, const int64_t *shape, const char *fmt, va_list ap)
{
  g_autofree char *name = g_strdup_vprintf (fmt, ap);
  const VlmTensor *t = vlm_safetensors_get (w->st, name, ndim, shape, error);
  if (t && t->dtype != VLM_DTYPE_F32 && t->dtype != VLM_DTYPE_BF16 && t->dtype != VLM_DTYPE_F16) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_SHAPE, "%s: tensor '%s' has dtype %s, expected a float type",
                 vlm_safetensors_path (w->st), name, vlm_dtype_name (t->dtype));
    return NULL;
  }
  return t;
}

const VlmTensor *
vlm_weights_tensor (VlmWeights *w, GError **error, int ndim, const int64_t *shape, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  const VlmTensor *t = weights_vtensor (w, error, ndim, shape, fmt, ap);
  va_end (ap);
  return t;
}

const float *
vlm_weights_f32 (VlmWeights *w, GError **error, int ndim, const int64_t *shape, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  const VlmTensor *t = weights_vtensor (w, error, ndim, shape, fmt, ap);
  va_end (ap);
  if (!t || t->dtype == VLM_DTYPE_F32)
    return t ? t->data : NULL;
  float *f = g_new (float, vlm_tensor_numel (t));
  vlm_tensor_to_f32 (t, f);
  g_ptr_array_add (w->owned, f);
  return f;
}

gboolean
vlm_weights_linear (VlmWeights *w, VlmLinearW *lin, gboolean has_bias, int n, int k, GError **error,
                    const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *prefix = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  int64_t ws[] = {n, k}, bs[] = {n};
  g_autofree char *wname = g_strconcat (prefix, ".weight", NULL);
  g_autofree char *bname = g_strconcat (prefix, ".bias", NULL);
  const VlmTensor *wt = vlm_safetensors_get (w->st, wname, 2, ws, error);
  const VlmTensor *bt = NULL;
  if (!wt || (has_bias && !(bt = vlm_safetensors_get (w->st, bname, 1, bs, error))) ||
      !vlm_linear_init (lin, wname, wt, bt, error))
    return FALSE;
  /* int8 is for the big matmuls: output heads (rows 1) keep the logits in
   * the best float the CPU runs fast */
  VlmDType dtype = w->dtype == VLM_DTYPE_I8 && w->rows == 1
                       ? vlm_precision_dtype (VLM_BACKEND_ONEDNN, VLM_PRECISION_AUTO) : w->dtype;
  if (w->pack && !vlm_linear_pack (lin, wt, dtype, w->rows > 0 ? w->rows : VLM_PACK_ROWS, error)) {
    g_prefix_error (error, "%s: ", wname);
    return FALSE;
  }
  return TRUE;
}

gboolean
vlm_weights_check_count (VlmWeights *w, int n, const char *what, GError **error)
{
  int held = vlm_safetensors_count (w->st);
  if (n <= held)
    return TRUE;
  g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "config.json: %s is %d, but the checkpoint %s holds only %d tensors",
               what, n, vlm_safetensors_path (w->st), held);
  return FALSE;
}

gboolean
vlm_weights_has (VlmWeights *w, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *name = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  return vlm_safetensors_find (w->st, name) != NULL;
}

/* ---------------------------------------------------------------- model */

static const VlmArch *const architectures[] = {
  &vlm_arch_git, &vlm_arch_video_llava, &vlm_arch_llava_onevision,
  &vlm_arch_smolvlm, &vlm_arch_languagebind_video,
};

VlmModelParams
vlm_model_default_params (void)
{
  return (VlmModelParams) {VLM_BACKEND_ONEDNN, VLM_PRECISION_AUTO, 0};
}

static const VlmArch *
find_arch (JsonObject *config, const char *file, GError **error)
{
  /* node by node: json-glib's typed getters are criticals on another type */
  JsonNode *list = json_object_get_member (config, "architectures");
  JsonArray *a = list && JSON_NODE_HOLDS_ARRAY (list) ? json_node_get_array (list) : NULL;
  JsonNode *first = a && json_array_get_length (a) ? json_array_get_element (a, 0) : NULL;
  const char *name = first && JSON_NODE_HOLDS_VALUE (first) ? json_node_get_string (first) : NULL;
  if (!name) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: no \"architectures\" list", file);
    return NULL;
  }
  GString *known = g_string_new (NULL);
  for (guint i = 0; i < G_N_ELEMENTS (architectures); i++) {
    if (strcmp (architectures[i]->name, name) == 0) {
      g_string_free (known, TRUE);
      return architectures[i];
    }
    g_string_append_printf (known, "%s%s", i ? ", " : "", architectures[i]->name);
  }
  g_set_error (error, VLM_ERROR, VLM_ERROR_UNSUPPORTED_ARCHITECTURE,
               "%s: architecture \"%s\" is not supported (supported: %s)", file, name, known->str);
  g_string_free (known, TRUE);
  return NULL;
}

/* Generation defaults and special ids: config.json, then generation_config.json. */
static gboolean
load_generation (VlmModel *m, JsonObject *config, GError **error)
{
  vlm_gen_params_init (&m->gen_defaults);
  m->bos_id = vlm_json_int (config, "bos_token_id", 0);
  m->pad_id = vlm_json_int (config, "pad_token_id", 0);
  m->n_eos = vlm_json_int_list (config, "eos_token_id", m->eos_ids, G_N_ELEMENTS (m->eos_ids));
  g_autofree char *path = g_build_filename (m->dir, "generation_config.json", NULL);
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    return TRUE;
  JsonParser *parser = NULL;
  JsonObject *gen = vlm_json_load (path, &parser, error);
  if (!gen)
    return FALSE;
  vlm_gen_params_apply_json (&m->gen_defaults, gen);
  m->bos_id = vlm_json_int (gen, "bos_token_id", m->bos_id);
  m->pad_id = vlm_json_int (gen, "pad_token_id", m->pad_id);
  int n = vlm_json_int_list (gen, "eos_token_id", m->eos_ids, G_N_ELEMENTS (m->eos_ids));
  if (n)
    m->n_eos = n;
  g_object_unref (parser);
  return TRUE;
}

static gboolean
has_file (const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  return g_file_test (path, G_FILE_TEST_EXISTS);
}

/* The tower reads image_size × image_size pixels a channel, whatever its
 * patch grid covers (SigLIP's 384 / 14 leaves 6 unread): smaller frames it
 * would read past, larger ones it would read wrongly. */
static gboolean
check_frame_size (const VlmModel *m, GError **error)
{
  const VlmImageProcessor *p = &m->processor;
  if (!p->out_h || !m->image_size || (p->out_h == m->image_size && p->out_w == m->image_size))
    return TRUE;
  g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG,
               "%s/%s: the processor makes %dx%d frames, but the vision tower reads %dx%d "
               "(config.json vision_config.image_size)",
               m->dir, p->file, p->out_h, p->out_w, m->image_size, m->image_size);
  return FALSE;
}

/* A folder without tokenizer.json or a processor config (a model-level
 * checkpoint, as some fixtures are) loads for direct use of its
 * architecture; vlm_session_new then refuses it, naming the file. */
VlmModel *
vlm_model_load (const char *dir, const VlmModelParams *params, GError **error)
{
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_NOT_FOUND, "%s: no such model folder", dir);
    return NULL;
  }
  VlmModel *m = g_new0 (VlmModel, 1);
  m->ref_count = 1;
  m->dir = g_canonicalize_filename (dir, NULL);
  m->name = g_path_get_basename (m->dir);
  m->params = params ? *params : vlm_model_default_params ();
  m->weights.owned = g_ptr_array_new_with_free_func (g_free);
  m->weights.pack = m->params.backend == VLM_BACKEND_ONEDNN;
  m->weights.dtype = vlm_precision_dtype (m->params.backend, m->params.precision);

  g_autofree char *cfg_path = g_build_filename (m->dir, "config.json", NULL);
  JsonParser *parser = NULL;
  JsonObject *config = vlm_json_load (cfg_path, &parser, error);
  gint64 t0 = g_get_monotonic_time ();
  if (!config || !(m->arch = find_arch (config, cfg_path, error)))
    goto fail;
  m->architecture = g_strdup (m->arch->name);
  if (!(m->weights.st = vlm_safetensors_open (m->dir, error)) ||
      (has_file (m->dir, "tokenizer.json") && !(m->tokenizer = vlm_tokenizer_load (m->dir, error))) ||
      !(m->impl = m->arch->load (m, config, error)) ||
      ((has_file (m->dir, "processor_config.json") || has_file (m->dir, "preprocessor_config.json") ||
        has_file (m->dir, "video_preprocessor_config.json")) &&
       !vlm_image_processor_load (&m->processor, m->dir, m->processor_section, error)) ||
      !check_frame_size (m, error) || !load_generation (m, config, error))
    goto fail;
  /* a video processor's own frame cap (SmolVLM2's video_sampling.max_frames) */
  if (m->processor.video_max_frames > 0)
    m->frames_per_clip = MIN (m->frames_per_clip, m->processor.video_max_frames);
  g_object_unref (parser);
  vlm_log (VLM_LOG_INFO, "loaded %s (%s) from %s in %.0f ms", m->name, m->architecture, m->dir,
           (g_get_monotonic_time () - t0) / 1000.0);
  return m;
fail:
  if (parser)
    g_object_unref (parser);
  vlm_model_unref (m);
  return NULL;
}

VlmModel *
vlm_model_ref (VlmModel *model)
{
  g_atomic_int_inc (&model->ref_count);
  return model;
}

void
vlm_model_unref (VlmModel *m)
{
  if (!m || !g_atomic_int_dec_and_test (&m->ref_count))
    return;
  if (m->impl)
    m->arch->free (m->impl);
  vlm_tokenizer_free (m->tokenizer);
  vlm_safetensors_free (m->weights.st);
  g_ptr_array_free (m->weights.owned, TRUE);
  g_free (m->dir);
  g_free (m->name);
  g_free (m->architecture);
  g_free (m);
}

const char *vlm_model_get_architecture (const VlmModel *m) { return m->architecture; }
const char *vlm_model_get_name (const VlmModel *m) { return m->name; }
int vlm_model_get_frames_per_clip (const VlmModel *m) { return m->frames_per_clip; }
char *
vlm_model_describe_kernels (const VlmModel *m)
{
  g_autofree char *k = vlm_ops_describe (m->params.backend, m->weights.dtype);
  return g_strdup_printf ("CPU tier %s; %s", vlm_cpu_describe (), k);
}

VlmPrecision
vlm_model_get_precision (const VlmModel *m)
{
  return m->weights.dtype == VLM_DTYPE_BF16 ? VLM_PRECISION_BF16
         : m->weights.dtype == VLM_DTYPE_I8 ? VLM_PRECISION_INT8 : VLM_PRECISION_F32;
}
gboolean vlm_model_can_generate (const VlmModel *m) { return m->arch->decoder != NULL; }
gboolean vlm_model_can_tag (const VlmModel *m) { return m->arch->tag != NULL; }

VlmGenParams
vlm_gen_default_params (const VlmModel *model)
{
  return model->gen_defaults;
}

void
vlm_caption_clear (VlmCaption *c)
{
  if (!c)
    return;
  g_free (c->text);
  g_free (c->tokens);
  memset (c, 0, sizeof *c);
}

/* ---------------------------------------------------------------- session */

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
};

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
  s->gen = vlm_gen_state_new (s->model->vocab_size, beams, tokens);
  return TRUE;
}

VlmSession *
vlm_session_new (VlmModel *model, GError **error)
{
  if (!model->tokenizer || !model->processor.out_h) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_NOT_FOUND, "%s: no %s: a model-level checkpoint cannot caption",
                 model->dir, model->tokenizer ? "processor_config.json or preprocessor_config.json" : "tokenizer.json");
    return NULL;
  }
  VlmSession *s = g_new0 (VlmSession, 1);
  s->model = vlm_model_ref (model);
  const VlmImageProcessor *p = &model->processor;
  size_t pixels = (size_t) model->frames_per_clip * 3 * p->out_h * p->out_w;
  /* sizes from the folder's configs: an error, not an abort, when too big */
  if (!(s->pixels = g_try_new (float, pixels)))
    g_set_error (error, VLM_ERROR, VLM_ERROR_INFERENCE, "cannot allocate %zu MiB of pixel values", pixels >> 18);
  if (!s->pixels || !(s->ops = vlm_ops_new (model->params.backend, model->params.n_threads, error)) ||
      !ensure_capacity (s, MAX (model->gen_defaults.num_beams, 1), 64, error)) {
    vlm_session_free (s);
    return NULL;
  }
  vlm_ops_set_attention_dtype (s->ops, model->weights.dtype);
  return s;
}

void
vlm_session_free (VlmSession *s)
{
  if (!s)
    return;
  if (s->run)
    s->model->arch->run_free (s->run);
  vlm_gen_state_free (s->gen);
  vlm_ops_free (s->ops);
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
 * spaced frames when the clip has another count. */
static gboolean
preprocess (VlmSession *s, const VlmFrame *frames, int n_frames, GError **error)
{
  const VlmImageProcessor *p = &s->model->processor;
  int F = s->model->frames_per_clip;
  size_t frame_floats = (size_t) 3 * p->out_h * p->out_w;
  for (int f = 0; f < F; f++) {
    const VlmFrame *fr = &frames[F > 1 ? (int) ((gint64) f * (n_frames - 1) / (F - 1)) : 0];
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
  vlm_ops_bind_thread (s->ops);
  gint64 t = g_get_monotonic_time (), t_start = t;
  int n_prompt = 0;
  const int *ids;
  if (!preprocess (s, frames, n_frames, error))
    return FALSE;
  out->preprocess_ms = ms_since (&t);
  if (!(ids = prompt_ids (s, prompt, &n_prompt, error)))
    return FALSE;
  if (n_prompt >= m->max_positions) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT, "the prompt is %d tokens; %s holds %d positions",
                 n_prompt, m->name, m->max_positions);
    return FALSE;
  }
  /* As HF would fail past the position table, stop where it ends. */
  gp.max_new_tokens = MIN (gp.max_new_tokens, m->max_positions - n_prompt);
  if (!ensure_capacity (s, gp.num_beams, n_prompt + gp.max_new_tokens, error) ||
      !arch->encode (s->run, s->pixels, m->frames_per_clip, error) || !vlm_ops_take_error (s->ops, error))
    return FALSE;
  out->vision_ms = ms_since (&t);
  int pos = 0;
  const float *logits = arch->prefill (s->run, ids, n_prompt, &pos, error);
  if (!logits || !vlm_ops_take_error (s->ops, error))
    return FALSE;
  out->prefill_ms = ms_since (&t);
  if (gp.max_new_tokens > s->out_cap) {
    g_free (s->out_ids);
    s->out_ids = g_new (int, gp.max_new_tokens);
    s->out_cap = gp.max_new_tokens;
  }
  StopStrings stops = {m->tokenizer, &gp};
  VlmGenInput in = {ids, n_prompt, pos, logits, m->eos_ids, m->n_eos, m->pad_id, &s->cancel,
                    gp.stop_strings[0][0] ? hits_stop_string : NULL, &stops};
  int n_out = 0;
  TokenStream stream = {s, on_token, user_data, 0, NULL};
  gboolean ok = vlm_generate (s->gen, arch->decoder (s->run), &in, &gp, on_token ? stream_token : NULL,
                              &stream, s->out_ids, &n_out, error);
  g_free (stream.text);
  if (!ok || !vlm_ops_take_error (s->ops, error))
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
  vlm_ops_bind_thread (s->ops);
  if (!same_labels (s->labels, labels, n_labels)) {   /* label embeddings: once per label set */
    g_clear_pointer (&s->labels, g_strfreev);
    if (!arch->set_labels (s->run, labels, n_labels, error))
      return FALSE;
    s->labels = g_new0 (char *, n_labels + 1);
    for (int i = 0; i < n_labels; i++)
      s->labels[i] = g_strdup (labels[i]);
  }
  if (!preprocess (s, frames, n_frames, error) || !arch->encode (s->run, s->pixels, m->frames_per_clip, error))
    return FALSE;
  arch->tag (s->run, scores);
  if (!vlm_ops_take_error (s->ops, error))
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
