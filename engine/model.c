/* model.c — the public model API (vlm.h): a folder loaded as the
 * architecture its config.json names (registry.c), with its tokenizer,
 * image processor and generation defaults. Sessions are in session.c. */
#include "arch.h"
#include "error.h"

VlmModelParams
vlm_model_default_params (void)
{
  return (VlmModelParams) {VLM_BACKEND_ONEDNN, VLM_PRECISION_AUTO, 0};
}

/* Generation defaults and special ids: config.json, then generation_config.json. */
static gboolean
load_generation (VlmModel *m, JsonObject *config, GError **error)
{
  vlm_gen_params_init (&m->gen_defaults);
  m->bos_id = vlm_json_int (config, "bos_token_id", 0);
  m->pad_id = vlm_json_int (config, "pad_token_id", 0);
  m->n_eos = vlm_json_int_list (config, "eos_token_id", m->eos_ids, G_N_ELEMENTS (m->eos_ids));
  m->decoder_start_id = vlm_json_int (config, "decoder_start_token_id", -1);
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
  m->decoder_start_id = vlm_json_int (gen, "decoder_start_token_id", m->decoder_start_id);
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
  if (!p->out_h || !m->info.image_size || (p->out_h == m->info.image_size && p->out_w == m->info.image_size))
    return TRUE;
  g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG,
               "%s/%s: the processor makes %dx%d frames, but the vision tower reads %dx%d "
               "(config.json vision_config.image_size)",
               m->dir, p->file, p->out_h, p->out_w, m->info.image_size, m->info.image_size);
  return FALSE;
}

/* A folder without tokenizer.json or a processor config (a model-level
 * checkpoint, as some fixtures are) loads for direct use of its
 * architecture; vlm_session_new then refuses it, naming the file. */
static VlmModel *
model_load (const char *dir, const VlmModelParams *params, GError **error)
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

  g_autofree char *cfg_path = g_build_filename (m->dir, "config.json", NULL);
  JsonParser *parser = NULL;
  JsonObject *config = vlm_json_load (cfg_path, &parser, error);
  gint64 t0 = g_get_monotonic_time ();
  if (!config || !(m->arch = vlm_arch_find (config, cfg_path, error)))
    goto fail;
  m->architecture = g_strdup (m->arch->name);
  if (!vlm_weights_open (&m->weights, m->dir, m->params.backend, m->params.precision, error) ||
      (has_file (m->dir, "tokenizer.json") && !(m->tokenizer = vlm_tokenizer_load (m->dir, error))) ||
      !(m->impl = m->arch->load (m->arch->variant, &m->weights, config, cfg_path, &m->info, error)) ||
      ((has_file (m->dir, "processor_config.json") || has_file (m->dir, "preprocessor_config.json") ||
        has_file (m->dir, "video_preprocessor_config.json")) &&
       !vlm_image_processor_load (&m->processor, m->dir, m->info.processor_section, error)) ||
      !check_frame_size (m, error) || !load_generation (m, config, error))
    goto fail;
  if (m->info.has_eos) {   /* what the architecture's generate() stops on */
    m->eos_ids[0] = m->info.eos_id;
    m->n_eos = 1;
  }
  /* a video processor's own frame cap (SmolVLM2's video_sampling.max_frames) */
  if (m->processor.video_max_frames > 0)
    m->info.frames_per_clip = MIN (m->info.frames_per_clip, m->processor.video_max_frames);
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

typedef struct {
  const char *dir;
  const VlmModelParams *params;
  VlmModel *model;
  GError *error;
} Load;

static gpointer
load_main (gpointer data)
{
  Load *l = data;
  l->model = model_load (l->dir, l->params, &l->error);
  return NULL;
}

/* The load runs on a thread of its own, which ends with it: the OpenMP team
 * its weight reorders start goes with that thread. Left on the caller's
 * thread (an application's, or the element's state change), the idle team
 * stays counted by libgomp, and with more threads in teams than cores every
 * team's workers stop spinning after ~1000 rounds and sleep: each parallel
 * region of a decode step then pays a futex wake-up (ViT-GPT2's batched step
 * of 3.7 captions on this project's Zen 5 VM: 12.4–12.7 ms vs 10.6–11.9 ms
 * with the load on its own thread, alternated). */
VlmModel *
vlm_model_load (const char *dir, const VlmModelParams *params, GError **error)
{
  Load l = {dir, params};
  GThread *thread = g_thread_try_new ("vlm-load", load_main, &l, NULL);
  if (!thread)
    return model_load (dir, params, error);
  g_thread_join (thread);
  if (l.error)
    g_propagate_error (error, l.error);
  return l.model;
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
  vlm_weights_clear (&m->weights);
  g_free (m->dir);
  g_free (m->name);
  g_free (m->architecture);
  g_free (m);
}

const char *vlm_model_get_architecture (const VlmModel *m) { return m->architecture; }
const char *vlm_model_get_name (const VlmModel *m) { return m->name; }
int vlm_model_get_frames_per_clip (const VlmModel *m) { return m->info.frames_per_clip; }
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
