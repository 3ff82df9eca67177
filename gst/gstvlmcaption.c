/* gstvlmcaption.c — captions live video with a vision-language model.
 *
 * Copyright (C) 2025 the vlmcaption authors. LGPL-2.1-or-later.
 */

/**
 * SECTION:element-vlmcaption
 * @title: vlmcaption
 *
 * vlmcaption describes what a video shows, in words, with a HuggingFace
 * vision-language model (a checkpoint folder as `save_pretrained` writes it,
 * no conversion) running on the CPU. It takes a few frames per clip of video
 * by running time, captions each clip on its own thread and emits the
 * captions in four ways:
 *
 * - on `text_src`, as timed subtitles: `text/x-raw` (utf8 or pango-markup)
 *   for textoverlay and matroskamux, or whole WebVTT / SubRip files
 *   (`application/x-subtitle-vtt`, `application/x-subtitle`) for filesink.
 *   Each buffer starts where its clip starts and lasts until the next clip;
 *   GAP events cover spans without a caption;
 * - as a custom meta (`GstVlmCaptionMeta`, see `gstvlmcaption/vlmcaptionmeta.h`)
 *   on the first video buffer pushed after the caption is ready;
 * - as a `vlmcaption` element message on the bus;
 * - through the #GstVlmCaption::caption signal.
 *
 * The video itself goes through untouched: same buffers, same timestamps.
 *
 * In a live pipeline the streaming thread never waits for the model: clips
 * that find the queue full are dropped according to #GstVlmCaption:drop-policy
 * and counted in #GstVlmCaption:dropped-clips, and a caption that misses its
 * deadline (clip end + #GstVlmCaption:latency) is replaced by a GAP on
 * `text_src` so that nothing downstream waits for it. The element adds
 * #GstVlmCaption:clip-duration + #GstVlmCaption:latency to the pipeline
 * latency. With a non-live source every clip is captioned and EOS waits for
 * the last caption.
 *
 * Like tee, the element has two source pads fed from one stream: put a queue
 * on each branch when they end in separate sinks or meet again (textoverlay,
 * a muxer). The video branch's queue must hold a clip span plus the time the
 * model takes (max-size-time).
 *
 * Without #GstVlmCaption:model the element uses its embedded test-card
 * model, a small GIT captioner trained on videotestsrc's patterns.
 *
 * A model that scores clips against text instead of generating it (a
 * LanguageBind video tower with its CLIP text tower) tags each clip with
 * #GstVlmCaption:labels: the caption is then the #GstVlmCaption:top-k
 * labels with their probabilities, e.g. "a dog (0.81); a person walking
 * (0.12)". A model that can do both tags when labels are set.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 -q videotestsrc pattern=smpte num-buffers=90 ! vlmcaption name=c \
 *     c. ! queue ! fakesink  c.text_src ! application/x-subtitle ! queue ! fdsink fd=1
 * ]| Prints the test card's captions as SubRip: "television color bars".
 * |[
 * gst-launch-1.0 videotestsrc pattern=ball is-live=true ! video/x-raw,width=640,height=480 ! \
 *     vlmcaption name=c ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=5000000000 ! \
 *     textoverlay name=o ! videoconvert ! autovideosink  c.text_src ! queue ! o.text_sink
 * ]| Shows a live test card with its captions overlaid.
 * |[
 * gst-launch-1.0 filesrc location=in.mkv ! decodebin ! videoconvert ! \
 *     vlmcaption model=/path/to/git-base-vatex name=c c. ! queue ! fakesink \
 *     c.text_src ! application/x-subtitle-vtt ! queue ! filesink location=out.vtt
 * ]| Writes a WebVTT file of a video's captions with a model from the Hub.
 *
 * ## Messages
 *
 * `vlmcaption` (element message, one per caption): `text` (string), `start`
 * and `end` (guint64, the clip's PTS span), `model` (string), `prompt`
 * (string), `n-tokens` (int), `inference-ms` (double). A tagged clip adds
 * `labels` (array of strings, the top-k by score), `scores` (array of
 * doubles, logit_scale · cosine) and `probs` (array of doubles, the softmax
 * across all labels), with `prompt` "" and `n-tokens` 0. The meta carries
 * the same fields.
 *
 * `vlmcaption-dropped` (element message, one per dropped clip):
 * `dropped-clips` (guint64, total so far), `start`, `end` (guint64),
 * `reason` ("queue-full" or "late").
 */

#include <string.h>

#include <gstvlmcaption/vlmcaptionmeta.h>

#include "gstvlmcaption.h"
#include "gstvlmmodeltable.h"

GST_DEBUG_CATEGORY_STATIC (gst_vlm_caption_debug);
#define GST_CAT_DEFAULT gst_vlm_caption_debug

#define DEFAULT_PROP_MODEL NULL
#define DEFAULT_PROP_PROMPT NULL
#define DEFAULT_PROP_MAX_NEW_TOKENS 0
#define DEFAULT_PROP_NUM_BEAMS 0
#define DEFAULT_PROP_GENERATION_CONFIG NULL
#define DEFAULT_PROP_N_THREADS 0
#define DEFAULT_PROP_LATENCY GST_SECOND
#define DEFAULT_PROP_MODEL_INSTANCE_ID NULL
#define DEFAULT_PROP_PRECISION VLM_PRECISION_AUTO
#define DEFAULT_PROP_BACKEND VLM_BACKEND_ONEDNN
#define DEFAULT_PROP_FRAMES_PER_CLIP 0
#define DEFAULT_PROP_CLIP_DURATION GST_SECOND
#define DEFAULT_PROP_CAPTION_INTERVAL 0
#define DEFAULT_PROP_OVERLAP 0
#define DEFAULT_PROP_DROP_POLICY GST_VLM_CAPTION_DROP_OLDEST
#define DEFAULT_PROP_QUEUE_SIZE 1
#define DEFAULT_PROP_LABELS NULL
#define DEFAULT_PROP_TOP_K 3

enum
{
  PROP_0,
  PROP_MODEL,
  PROP_PROMPT,
  PROP_MAX_NEW_TOKENS,
  PROP_NUM_BEAMS,
  PROP_GENERATION_CONFIG,
  PROP_N_THREADS,
  PROP_LATENCY,
  PROP_MODEL_INSTANCE_ID,
  PROP_PRECISION,
  PROP_BACKEND,
  PROP_FRAMES_PER_CLIP,
  PROP_CLIP_DURATION,
  PROP_CAPTION_INTERVAL,
  PROP_OVERLAP,
  PROP_DROP_POLICY,
  PROP_QUEUE_SIZE,
  PROP_LABELS,
  PROP_TOP_K,
  PROP_DROPPED_CLIPS,
};

enum
{
  SIGNAL_CAPTION,
  LAST_SIGNAL
};

static guint signals[LAST_SIGNAL];

/* The directory of the loaded plugin file, to find an installed model
 * relative to it. Set once in plugin_init. */
static gchar *plugin_dir;

#define VIDEO_CAPS GST_VIDEO_CAPS_MAKE ("{ RGB, RGBx, BGRx, RGBA, BGRA, I420, NV12 }")

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (VIDEO_CAPS));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (VIDEO_CAPS));

static GstStaticPadTemplate text_src_template =
GST_STATIC_PAD_TEMPLATE ("text_src", GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("text/x-raw, format = (string) { utf8, pango-markup }; "
        "application/x-subtitle-vtt; application/x-subtitle"));

/* GstBaseTransform rather than a plain element with three pads: the video
 * path is an in-place transform, and the base class brings segment tracking,
 * caps and allocation forwarding, and state handling for it. The text pad is
 * the only thing added by hand; it is fed by its own task. */
#define gst_vlm_caption_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstVlmCaption, gst_vlm_caption,
    GST_TYPE_BASE_TRANSFORM,
    GST_DEBUG_CATEGORY_INIT (gst_vlm_caption_debug, "vlmcaption", 0,
        "vision-language captioner"));
GST_ELEMENT_REGISTER_DEFINE (vlmcaption, "vlmcaption", GST_RANK_NONE,
    GST_TYPE_VLM_CAPTION);

static void gst_vlm_caption_text_loop (GstVlmCaption * self);

/* ---------------------------------------------------------------- enums */

#define GST_TYPE_VLM_CAPTION_DROP_POLICY (gst_vlm_caption_drop_policy_get_type ())
static GType
gst_vlm_caption_drop_policy_get_type (void)
{
  static gsize type = 0;
  static const GEnumValue values[] = {
    {GST_VLM_CAPTION_DROP_OLDEST, "Drop the oldest waiting clip (freshest "
          "captions)", "drop-oldest"},
    {GST_VLM_CAPTION_DROP_NEWEST, "Drop the clip that finds the queue full",
        "drop-newest"},
    {GST_VLM_CAPTION_BLOCK, "Wait for room, stalling the stream (offline "
          "use)", "block"},
    {0, NULL, NULL}
  };

  if (g_once_init_enter (&type))
    g_once_init_leave (&type,
        g_enum_register_static ("GstVlmCaptionDropPolicy", values));
  return type;
}

#define GST_TYPE_VLM_CAPTION_PRECISION (gst_vlm_caption_precision_get_type ())
static GType
gst_vlm_caption_precision_get_type (void)
{
  static gsize type = 0;
  static const GEnumValue values[] = {
    {VLM_PRECISION_AUTO, "The fastest that keeps captions unchanged", "auto"},
    {VLM_PRECISION_F32, "32-bit float", "f32"},
    {VLM_PRECISION_BF16, "bfloat16 weights; bf16 matmuls where the CPU has "
          "avx512_bf16 or AMX, f32 matmuls elsewhere", "bf16"},
    {VLM_PRECISION_INT8, "8-bit integer matmuls (every CPU)", "int8"},
    {0, NULL, NULL}
  };

  if (g_once_init_enter (&type))
    g_once_init_leave (&type,
        g_enum_register_static ("GstVlmCaptionPrecision", values));
  return type;
}

#define GST_TYPE_VLM_CAPTION_BACKEND (gst_vlm_caption_backend_get_type ())
static GType
gst_vlm_caption_backend_get_type (void)
{
  static gsize type = 0;
  static const GEnumValue values[] = {
    {VLM_BACKEND_ONEDNN, "oneDNN primitives", "onednn"},
    {VLM_BACKEND_BLAS, "OpenBLAS reference path", "blas"},
    {0, NULL, NULL}
  };

  if (g_once_init_enter (&type))
    g_once_init_leave (&type,
        g_enum_register_static ("GstVlmCaptionBackend", values));
  return type;
}

/* ---------------------------------------------------------------- meta */

static const GstMetaInfo *
gst_vlm_caption_meta_get_info (void)
{
  static const GstMetaInfo *info = NULL;

  if (g_once_init_enter ((GstMetaInfo **) & info)) {
    /* No tags: the caption does not depend on the pixels' layout, so
     * converters and scalers keep the meta. */
    const gchar *tags[] = { NULL };
    const GstMetaInfo *registered =
        gst_meta_register_custom (GST_VLM_CAPTION_META_NAME, tags, NULL, NULL,
        NULL);

    g_once_init_leave ((GstMetaInfo **) & info, (GstMetaInfo *) registered);
  }
  return info;
}

static gboolean
copy_field (GQuark field, const GValue * value, gpointer user_data)
{
  gst_structure_id_set_value (user_data, field, value);
  return TRUE;
}

/* Streaming thread: hands the captions that became ready to `buffer`. */
static void
attach_metas (GstVlmCaption * self, GstBuffer * buffer)
{
  GList *metas, *l;

  g_mutex_lock (&self->lock);
  metas = g_list_reverse (self->pending_metas);
  self->pending_metas = NULL;
  g_mutex_unlock (&self->lock);

  for (l = metas; l; l = l->next) {
    GstCustomMeta *meta = gst_buffer_add_custom_meta (buffer,
        GST_VLM_CAPTION_META_NAME);

    gst_structure_foreach (l->data, copy_field,
        gst_custom_meta_get_structure (meta));
  }
  g_list_free_full (metas, (GDestroyNotify) gst_structure_free);
}

/* ---------------------------------------------------------------- text queue */

/* One entry of the text_src queue: an event to forward, or a clip whose
 * caption (or GAP) goes out once it is resolved. */
typedef struct
{
  GstEvent *event;
  GstVlmClip *clip;
} OutItem;

static OutItem *
out_item_new (GstEvent * event, GstVlmClip * clip)
{
  OutItem *item = g_new (OutItem, 1);

  item->event = event;
  item->clip = clip;
  return item;
}

static void
out_item_free (OutItem * item)
{
  gst_clear_event (&item->event);
  gst_vlm_clip_unref (item->clip);
  g_free (item);
}

/* Called with the lock held. */
static void
wake_locked (GstVlmCaption * self)
{
  g_cond_broadcast (&self->cond);
  if (self->text_clock_id)
    gst_clock_id_unschedule (self->text_clock_id);
}

static void
queue_text_event (GstVlmCaption * self, GstEvent * event)
{
  g_mutex_lock (&self->lock);
  g_queue_push_tail (&self->out, out_item_new (event, NULL));
  wake_locked (self);
  g_mutex_unlock (&self->lock);
}

/* Called with the lock held. */
static void
flush_queues_locked (GstVlmCaption * self)
{
  g_queue_clear_full (&self->work, (GDestroyNotify) gst_vlm_clip_unref);
  g_queue_clear_full (&self->out, (GDestroyNotify) out_item_free);
  g_list_free_full (self->pending_metas, (GDestroyNotify) gst_structure_free);
  self->pending_metas = NULL;
}

/* ---------------------------------------------------------------- properties */

static void
gst_vlm_caption_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstVlmCaption *self = GST_VLM_CAPTION (object);
  gboolean latency_grew = FALSE;

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_free (self->model_dir);
      self->model_dir = g_value_dup_string (value);
      break;
    case PROP_PROMPT:
      g_free (self->prompt);
      self->prompt = g_value_dup_string (value);
      break;
    case PROP_MAX_NEW_TOKENS:
      self->max_new_tokens = g_value_get_uint (value);
      break;
    case PROP_NUM_BEAMS:
      self->num_beams = g_value_get_uint (value);
      break;
    case PROP_GENERATION_CONFIG:
      g_free (self->generation_config);
      self->generation_config = g_value_dup_string (value);
      self->generation_config_warned = FALSE;
      break;
    case PROP_N_THREADS:
      self->n_threads = g_value_get_int (value);
      break;
    case PROP_LATENCY:{
      GstClockTime latency = g_value_get_uint64 (value);

      latency_grew = latency > self->latency;
      self->latency = latency;
      break;
    }
    case PROP_MODEL_INSTANCE_ID:
      g_free (self->model_instance_id);
      self->model_instance_id = g_value_dup_string (value);
      break;
    case PROP_PRECISION:
      self->precision = g_value_get_enum (value);
      break;
    case PROP_BACKEND:
      self->backend = g_value_get_enum (value);
      break;
    case PROP_FRAMES_PER_CLIP:
      self->frames_per_clip = g_value_get_uint (value);
      break;
    case PROP_CLIP_DURATION:
      self->clip_duration = g_value_get_uint64 (value);
      break;
    case PROP_CAPTION_INTERVAL:
      self->caption_interval = g_value_get_uint64 (value);
      break;
    case PROP_OVERLAP:
      self->overlap = g_value_get_uint64 (value);
      break;
    case PROP_DROP_POLICY:
      self->drop_policy = g_value_get_enum (value);
      break;
    case PROP_QUEUE_SIZE:
      self->queue_size = g_value_get_uint (value);
      break;
    case PROP_LABELS:
      g_free (self->labels);
      self->labels = g_value_dup_string (value);
      self->labels_changed = TRUE;
      break;
    case PROP_TOP_K:
      self->top_k = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);

  /* A bigger budget raises the latency we report: have the pipeline ask. */
  if (latency_grew)
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_latency (GST_OBJECT (self)));
}

static void
gst_vlm_caption_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstVlmCaption *self = GST_VLM_CAPTION (object);

  if (prop_id == PROP_DROPPED_CLIPS) {
    g_mutex_lock (&self->lock);
    g_value_set_uint64 (value, self->dropped);
    g_mutex_unlock (&self->lock);
    return;
  }

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value, self->model_dir);
      break;
    case PROP_PROMPT:
      g_value_set_string (value, self->prompt);
      break;
    case PROP_MAX_NEW_TOKENS:
      g_value_set_uint (value, self->max_new_tokens);
      break;
    case PROP_NUM_BEAMS:
      g_value_set_uint (value, self->num_beams);
      break;
    case PROP_GENERATION_CONFIG:
      g_value_set_string (value, self->generation_config);
      break;
    case PROP_N_THREADS:
      g_value_set_int (value, self->n_threads);
      break;
    case PROP_LATENCY:
      g_value_set_uint64 (value, self->latency);
      break;
    case PROP_MODEL_INSTANCE_ID:
      g_value_set_string (value, self->model_instance_id);
      break;
    case PROP_PRECISION:
      g_value_set_enum (value, self->precision);
      break;
    case PROP_BACKEND:
      g_value_set_enum (value, self->backend);
      break;
    case PROP_FRAMES_PER_CLIP:
      g_value_set_uint (value, self->frames_per_clip);
      break;
    case PROP_CLIP_DURATION:
      g_value_set_uint64 (value, self->clip_duration);
      break;
    case PROP_CAPTION_INTERVAL:
      g_value_set_uint64 (value, self->caption_interval);
      break;
    case PROP_OVERLAP:
      g_value_set_uint64 (value, self->overlap);
      break;
    case PROP_DROP_POLICY:
      g_value_set_enum (value, self->drop_policy);
      break;
    case PROP_QUEUE_SIZE:
      g_value_set_uint (value, self->queue_size);
      break;
    case PROP_LABELS:
      g_value_set_string (value, self->labels);
      break;
    case PROP_TOP_K:
      g_value_set_uint (value, self->top_k);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* The model's generation defaults, then generation-config, then the
 * max-new-tokens and num-beams overrides. On a bad generation-config the
 * result still holds the defaults and overrides. */
static gboolean
build_gen_params (GstVlmCaption * self, VlmGenParams * params, GError ** error)
{
  gchar *config;
  guint max_new_tokens, num_beams;
  gboolean ok = TRUE;

  GST_OBJECT_LOCK (self);
  config = g_strdup (self->generation_config);
  max_new_tokens = self->max_new_tokens;
  num_beams = self->num_beams;
  GST_OBJECT_UNLOCK (self);

  *params = vlm_gen_default_params (self->model);
  if (config && *config && !vlm_gen_params_parse (params, config, error)) {
    *params = vlm_gen_default_params (self->model);
    ok = FALSE;
  }
  if (max_new_tokens > 0)
    params->max_new_tokens = max_new_tokens;
  if (num_beams > 0)
    params->num_beams = num_beams;
  g_free (config);
  return ok;
}

/* "a dog; a person walking;" -> { "a dog", "a person walking" }: blanks
 * around a label and empty labels are typing slips, not labels. */
static gchar **
split_labels (const gchar * text)
{
  gchar **parts = g_strsplit (text ? text : "", ";", -1);
  GPtrArray *labels = g_ptr_array_new ();
  gchar **p;

  for (p = parts; *p; p++) {
    g_strstrip (*p);
    if (**p)
      g_ptr_array_add (labels, g_strdup (*p));
  }
  g_strfreev (parts);
  g_ptr_array_add (labels, NULL);
  return (gchar **) g_ptr_array_free (labels, FALSE);
}

/* ---------------------------------------------------------------- start/stop */

/* The embedded test-card model: next to an installed (possibly relocated)
 * plugin, at the configured datadir, or in the source tree for a build that
 * runs uninstalled. */
static gchar *
default_model_dir (void)
{
  gchar *relative = plugin_dir ?
      g_build_filename (plugin_dir, VLM_MODEL_RELATIVE_DIR, NULL) : NULL;
  const gchar *candidates[] = { relative, VLM_MODEL_INSTALL_DIR,
    VLM_SOURCE_MODEL_DIR
  };
  gchar *found = NULL;
  guint i;

  for (i = 0; i < G_N_ELEMENTS (candidates) && !found; i++) {
    gchar *config;

    if (!candidates[i])
      continue;
    config = g_build_filename (candidates[i], "config.json", NULL);
    if (g_file_test (config, G_FILE_TEST_IS_REGULAR))
      found = g_canonicalize_filename (candidates[i], NULL);
    g_free (config);
  }
  g_free (relative);
  /* Nothing found: let the load fail naming the installed location. */
  return found ? found : g_strdup (VLM_MODEL_INSTALL_DIR);
}

static void
post_load_error (GstVlmCaption * self, const gchar * dir, const GError * error)
{
  if (g_error_matches (error, VLM_ERROR, VLM_ERROR_NOT_FOUND))
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("Could not load the model in %s: %s", dir, error->message), (NULL));
  else if (g_error_matches (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT))
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("Could not use the model in %s: %s", dir, error->message), (NULL));
  else
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ,
        ("Could not load the model in %s: %s", dir, error->message), (NULL));
}

static gpointer gst_vlm_caption_worker (gpointer data);

/* READY->PAUSED: loads the model (or shares it by model-instance-id), makes
 * the session and starts the inference thread. */
static gboolean
gst_vlm_caption_start (GstBaseTransform * trans)
{
  GstVlmCaption *self = GST_VLM_CAPTION (trans);
  VlmModelParams params = vlm_model_default_params ();
  VlmGenParams gen;
  GError *error = NULL;
  gchar *dir, *instance, **labels;
  guint n_frames;
  GstClockTime duration, interval, overlap;

  GST_OBJECT_LOCK (self);
  /* the worker starts without labels: it splits them on its first clip */
  self->labels_changed = TRUE;
  labels = split_labels (self->labels);
  dir = g_strdup (self->model_dir);
  instance = g_strdup (self->model_instance_id);
  params.backend = self->backend;
  params.precision = self->precision;
  params.n_threads = self->n_threads;
  n_frames = self->frames_per_clip;
  duration = self->clip_duration;
  interval = self->caption_interval;
  overlap = self->overlap;
  GST_OBJECT_UNLOCK (self);

  if (!interval && overlap >= duration)
    goto bad_overlap;
  if (!dir)
    dir = default_model_dir ();

  GST_INFO_OBJECT (self, "loading model %s", dir);
  self->model = gst_vlm_model_table_acquire (instance, dir, &params, &error);
  if (!self->model)
    goto load_failed;
  self->model_instance = g_steal_pointer (&instance);
  self->session = vlm_session_new (self->model, &error);
  if (!self->session)
    goto load_failed;
  self->can_generate = vlm_model_can_generate (self->model);
  if (!self->can_generate && !labels[0])
    goto no_labels;
  /* A typo in generation-config fails the state change, not every clip. */
  if (!build_gen_params (self, &gen, &error))
    goto bad_generation_config;

  if (!n_frames)
    n_frames = MAX (vlm_model_get_frames_per_clip (self->model), 1);
  self->clip_span = duration;
  self->clip_stride = interval ? interval : duration - overlap;
  gst_vlm_sampler_init (&self->sampler, n_frames, duration, self->clip_stride);
  self->latency_known = FALSE;
  GST_INFO_OBJECT (self, "%s: %u frames per clip of %" GST_TIME_FORMAT
      " every %" GST_TIME_FORMAT, vlm_model_get_name (self->model), n_frames,
      GST_TIME_ARGS (duration), GST_TIME_ARGS (self->clip_stride));
  {
    GEnumValue *p = g_enum_get_value (g_type_class_peek
        (GST_TYPE_VLM_CAPTION_PRECISION),
        vlm_model_get_precision (self->model));
    gchar *kernels = vlm_model_describe_kernels (self->model);
    GST_INFO_OBJECT (self, "precision %s; %s", p ? p->value_nick : "?",
        kernels);
    g_free (kernels);
  }

  g_mutex_lock (&self->lock);
  self->flushing = FALSE;
  self->quit = FALSE;
  self->live = FALSE;
  self->upstream_min = 0;
  self->dropped = 0;
  g_mutex_unlock (&self->lock);
  self->worker = g_thread_new ("vlmcaption", gst_vlm_caption_worker, self);

  g_strfreev (labels);
  g_free (dir);
  return TRUE;

bad_overlap:
  GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("overlap (%" GST_TIME_FORMAT
          ") must be shorter than clip-duration (%" GST_TIME_FORMAT ")",
          GST_TIME_ARGS (overlap), GST_TIME_ARGS (duration)), (NULL));
  goto failed;
load_failed:
  post_load_error (self, dir, error);
  goto failed;
no_labels:
  GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
      ("The model in %s (%s) tags clips instead of captioning them: set "
          "labels, e.g. labels=\"a dog;a person walking\"", dir,
          vlm_model_get_architecture (self->model)), (NULL));
  goto failed;
bad_generation_config:
  GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
      ("Invalid generation-config: %s", error->message), (NULL));
  goto failed;
failed:
  g_clear_error (&error);
  g_clear_pointer (&self->session, vlm_session_free);
  gst_vlm_model_table_release (self->model_instance, self->model);
  self->model = NULL;
  g_clear_pointer (&self->model_instance, g_free);
  g_strfreev (labels);
  g_free (instance);
  g_free (dir);
  return FALSE;
}

/* PAUSED->READY, after the pads are deactivated. */
static gboolean
gst_vlm_caption_stop (GstBaseTransform * trans)
{
  GstVlmCaption *self = GST_VLM_CAPTION (trans);

  g_mutex_lock (&self->lock);
  self->quit = TRUE;
  self->flushing = TRUE;
  flush_queues_locked (self);
  wake_locked (self);
  g_mutex_unlock (&self->lock);

  if (self->session)
    vlm_session_cancel (self->session);
  if (self->worker)
    g_thread_join (self->worker);
  self->worker = NULL;

  gst_vlm_sampler_reset (&self->sampler);
  g_clear_pointer (&self->tag_labels, g_strfreev);
  self->tag_unsupported = FALSE;
  g_clear_pointer (&self->session, vlm_session_free);
  gst_vlm_model_table_release (self->model_instance, self->model);
  self->model = NULL;
  g_clear_pointer (&self->model_instance, g_free);
  return TRUE;
}

static GstStateChangeReturn
gst_vlm_caption_change_state (GstElement * element, GstStateChange transition)
{
  GstVlmCaption *self = GST_VLM_CAPTION (element);

  switch (transition) {
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      /* Deactivating the pads waits for their stream locks: first wake a
       * streaming thread waiting for queue room or a drain, and the text
       * task waiting for a caption. */
      g_mutex_lock (&self->lock);
      self->flushing = TRUE;
      self->text_flushing = TRUE;
      wake_locked (self);
      g_mutex_unlock (&self->lock);
      if (self->session)
        vlm_session_cancel (self->session);
      break;
    default:
      break;
  }
  return GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
}

/* ---------------------------------------------------------------- sampling */

static void
query_upstream_latency (GstVlmCaption * self)
{
  GstQuery *query = gst_query_new_latency ();
  gboolean live;
  GstClockTime min;

  if (gst_pad_peer_query (GST_BASE_TRANSFORM_SINK_PAD (self), query)) {
    gst_query_parse_latency (query, &live, &min, NULL);
    g_mutex_lock (&self->lock);
    self->live = live;
    self->upstream_min = min;
    g_mutex_unlock (&self->lock);
    GST_DEBUG_OBJECT (self, "upstream is %slive, min latency %" GST_TIME_FORMAT,
        live ? "" : "not ", GST_TIME_ARGS (min));
  }
  self->latency_known = TRUE;
  gst_query_unref (query);
}

static GstMessage *
drop_message_new (GstVlmCaption * self, GstVlmClip * clip, const gchar * reason)
{
  return gst_message_new_element (GST_OBJECT (self),
      gst_structure_new ("vlmcaption-dropped",
          "dropped-clips", G_TYPE_UINT64, self->dropped,
          "start", G_TYPE_UINT64, clip->pts,
          "end", G_TYPE_UINT64, clip->end_pts,
          "reason", G_TYPE_STRING, reason, NULL));
}

static void
post_messages (GstVlmCaption * self, GList * messages)
{
  GList *l;

  for (l = messages; l; l = l->next)
    gst_element_post_message (GST_ELEMENT (self), l->data);
  g_list_free (messages);
}

/* Streaming thread: places the finished clips of `done` on the text_src
 * timeline and hands them to the worker. In live mode a full queue drops a
 * clip by policy; otherwise (or with the block policy) this waits for room.
 * Returns GST_FLOW_FLUSHING when a flush or shutdown interrupts it. */
static GstFlowReturn
queue_clips (GstVlmCaption * self, GQueue * done)
{
  const GstSegment *segment = &GST_BASE_TRANSFORM (self)->segment;
  GstClockTime shown = MIN (self->clip_stride, self->clip_span);
  GstVlmCaptionDropPolicy policy;
  GstClockTime budget, shown_end, text_end;
  guint queue_size;
  GList *messages = NULL;
  GstFlowReturn ret = GST_FLOW_OK;
  GstVlmClip *clip;

  if (g_queue_is_empty (done))
    return GST_FLOW_OK;

  GST_OBJECT_LOCK (self);
  policy = self->drop_policy;
  queue_size = self->queue_size;
  budget = self->latency;
  GST_OBJECT_UNLOCK (self);

  g_mutex_lock (&self->lock);
  while ((clip = g_queue_pop_head (done))) {
    clip->epoch = self->epoch;
    clip->pts = gst_segment_position_from_running_time (segment,
        GST_FORMAT_TIME, clip->start_rt);
    clip->end_pts = gst_segment_position_from_running_time (segment,
        GST_FORMAT_TIME, clip->end_rt);
    shown_end = gst_vlm_clock_add (clip->start_rt, shown);
    text_end = gst_segment_position_from_running_time (segment,
        GST_FORMAT_TIME, shown_end);
    /* A clip that never ends (clip-duration near G_MAXUINT64) shows its
     * caption for an unknown duration. */
    if (GST_CLOCK_TIME_IS_VALID (clip->pts) && (GST_CLOCK_TIME_IS_VALID (text_end)
            || !GST_CLOCK_TIME_IS_VALID (shown_end))) {
      clip->text_pts = clip->pts;
      clip->text_duration = GST_CLOCK_TIME_IS_VALID (text_end) ?
          text_end - clip->pts : GST_CLOCK_TIME_NONE;
    }
    if (self->live)
      clip->deadline_rt = gst_vlm_clock_add (gst_vlm_clock_add (clip->end_rt,
              self->upstream_min), budget);

    if (self->flushing) {
      gst_vlm_clip_unref (clip);
      ret = GST_FLOW_FLUSHING;
      continue;
    }
    g_queue_push_tail (&self->out, out_item_new (NULL, gst_vlm_clip_ref (clip)));

    if (self->work.length >= queue_size && self->live
        && policy != GST_VLM_CAPTION_BLOCK) {
      GstVlmClip *victim = policy == GST_VLM_CAPTION_DROP_OLDEST ?
          g_queue_pop_head (&self->work) : gst_vlm_clip_ref (clip);

      victim->state = GST_VLM_CLIP_DROPPED;
      self->dropped++;
      GST_DEBUG_OBJECT (self, "queue full, dropped clip at %" GST_TIME_FORMAT
          " (%" G_GUINT64_FORMAT " so far)", GST_TIME_ARGS (victim->pts),
          self->dropped);
      messages = g_list_append (messages,
          drop_message_new (self, victim, "queue-full"));
      gst_vlm_clip_unref (victim);
      if (victim == clip) {
        gst_vlm_clip_unref (clip);
        continue;
      }
    }
    while (self->work.length >= queue_size && !self->flushing)
      g_cond_wait (&self->cond, &self->lock);
    if (self->flushing) {
      gst_vlm_clip_unref (clip);
      ret = GST_FLOW_FLUSHING;
      continue;
    }
    g_queue_push_tail (&self->work, clip);
  }
  wake_locked (self);
  g_mutex_unlock (&self->lock);

  post_messages (self, messages);
  return ret;
}

static GstFlowReturn
gst_vlm_caption_transform_ip (GstBaseTransform * trans, GstBuffer * buffer)
{
  GstVlmCaption *self = GST_VLM_CAPTION (trans);
  GQueue done = G_QUEUE_INIT;
  GstClockTime rt = GST_CLOCK_TIME_NONE;
  GstFlowReturn ret;

  if (!self->latency_known)
    query_upstream_latency (self);

  if (trans->segment.format == GST_FORMAT_TIME)
    rt = gst_segment_to_running_time (&trans->segment, GST_FORMAT_TIME,
        GST_BUFFER_PTS (buffer));
  if (GST_CLOCK_TIME_IS_VALID (rt))
    gst_vlm_sampler_push (&self->sampler, rt, buffer, &self->vinfo, &done);
  else
    GST_LOG_OBJECT (self, "buffer without running time, not sampled");

  ret = queue_clips (self, &done);
  attach_metas (self, buffer);
  return ret;
}

static gboolean
gst_vlm_caption_set_caps (GstBaseTransform * trans, GstCaps * incaps,
    GstCaps * outcaps)
{
  GstVlmCaption *self = GST_VLM_CAPTION (trans);

  /* Sampled frames keep the layout they were taken with, so clips that
   * span a caps change need nothing more than the new info. */
  return gst_video_info_from_caps (&self->vinfo, incaps);
}

/* ---------------------------------------------------------------- inference */

static const struct
{
  GstVideoFormat gst;
  VlmPixelFormat vlm;
} pixel_formats[] = {
  {GST_VIDEO_FORMAT_RGB, VLM_PIXEL_RGB},
  {GST_VIDEO_FORMAT_RGBx, VLM_PIXEL_RGBX},
  {GST_VIDEO_FORMAT_BGRx, VLM_PIXEL_BGRX},
  {GST_VIDEO_FORMAT_RGBA, VLM_PIXEL_RGBA},
  {GST_VIDEO_FORMAT_BGRA, VLM_PIXEL_BGRA},
  {GST_VIDEO_FORMAT_I420, VLM_PIXEL_I420},
  {GST_VIDEO_FORMAT_NV12, VLM_PIXEL_NV12},
};

static void
vlm_frame_from_video_frame (const GstVideoFrame * vframe, VlmFrame * frame)
{
  const GstVideoInfo *info = &vframe->info;
  guint i;

  memset (frame, 0, sizeof (*frame));
  for (i = 0; i < G_N_ELEMENTS (pixel_formats); i++)
    if (pixel_formats[i].gst == GST_VIDEO_INFO_FORMAT (info))
      frame->format = pixel_formats[i].vlm;
  frame->width = GST_VIDEO_INFO_WIDTH (info);
  frame->height = GST_VIDEO_INFO_HEIGHT (info);
  for (i = 0; i < GST_VIDEO_FRAME_N_PLANES (vframe); i++) {
    frame->planes[i] = GST_VIDEO_FRAME_PLANE_DATA (vframe, i);
    frame->strides[i] = GST_VIDEO_FRAME_PLANE_STRIDE (vframe, i);
  }
  frame->yuv_matrix = info->colorimetry.matrix == GST_VIDEO_COLOR_MATRIX_BT709 ?
      VLM_YUV_BT709 : VLM_YUV_BT601;
  frame->yuv_full_range = info->colorimetry.range == GST_VIDEO_COLOR_RANGE_0_255;
}

typedef struct
{
  GstVlmCaption *self;
  guint64 epoch;
} TokenContext;

/* Stops generation early once a flush or shutdown made the clip moot. */
static gboolean
on_token (int token_id, const char *piece, void *user_data)
{
  TokenContext *ctx = user_data;
  gboolean go_on;

  g_mutex_lock (&ctx->self->lock);
  go_on = !ctx->self->quit && ctx->epoch == ctx->self->epoch;
  g_mutex_unlock (&ctx->self->lock);
  return go_on;
}

/* Worker thread: the caption of `n_frames` mapped frames of `clip` as the
 * message structure, or NULL with `error` set. */
static GstStructure *
caption_frames (GstVlmCaption * self, GstVlmClip * clip,
    const VlmFrame * frames, guint n_frames, GError ** error)
{
  TokenContext ctx = { self, clip->epoch };
  VlmCaption caption = { 0 };
  VlmGenParams params;
  GstStructure *s = NULL;
  GError *config_error = NULL;
  gboolean warn_config;
  gchar *prompt;

  GST_OBJECT_LOCK (self);
  prompt = g_strdup (self->prompt);
  GST_OBJECT_UNLOCK (self);

  if (!build_gen_params (self, &params, &config_error)) {
    GST_OBJECT_LOCK (self);
    warn_config = !self->generation_config_warned;
    self->generation_config_warned = TRUE;
    GST_OBJECT_UNLOCK (self);
    if (warn_config)
      GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
          ("Ignoring generation-config: %s", config_error->message), (NULL));
    g_clear_error (&config_error);
  }

  if (vlm_session_caption (self->session, frames, n_frames, prompt, &params,
          on_token, &ctx, &caption, error))
    s = gst_structure_new ("vlmcaption",
        "text", G_TYPE_STRING, caption.text ? caption.text : "",
        "start", G_TYPE_UINT64, clip->pts,
        "end", G_TYPE_UINT64, clip->end_pts,
        "model", G_TYPE_STRING, vlm_model_get_name (self->model),
        "prompt", G_TYPE_STRING, prompt ? prompt : "",
        "n-tokens", G_TYPE_INT, caption.n_tokens,
        "inference-ms", G_TYPE_DOUBLE, caption.total_ms, NULL);
  vlm_caption_clear (&caption);
  g_free (prompt);
  return s;
}

/* Worker thread: splits the labels property anew when it changed, so that
 * clips in between score the very same label array (the engine embeds the
 * labels once per set). */
static void
refresh_labels (GstVlmCaption * self)
{
  gchar *labels;

  GST_OBJECT_LOCK (self);
  if (!self->labels_changed) {
    GST_OBJECT_UNLOCK (self);
    return;
  }
  self->labels_changed = FALSE;
  labels = g_strdup (self->labels);
  GST_OBJECT_UNLOCK (self);

  g_strfreev (self->tag_labels);
  self->tag_labels = split_labels (labels);
  /* a new set deserves a new try on a model that captions too */
  self->tag_unsupported = FALSE;
  g_free (labels);
}

/* Worker thread: the zero-shot tags of `n_frames` mapped frames of `clip`
 * as the message structure (the top-k labels by score, as text and arrays),
 * or NULL with `error` set. */
static GstStructure *
tag_frames (GstVlmCaption * self, GstVlmClip * clip, const VlmFrame * frames,
    guint n_frames, GError ** error)
{
  guint n = g_strv_length (self->tag_labels), top_k, i, j;
  GValue labels = G_VALUE_INIT, scores = G_VALUE_INIT, probs = G_VALUE_INIT;
  gint64 started = g_get_monotonic_time ();
  gfloat *score, *prob;
  guint *order;
  GString *text;
  GstStructure *s;

  if (!n) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT,
        "no labels to score: set the labels property");
    return NULL;
  }
  GST_OBJECT_LOCK (self);
  top_k = MIN (self->top_k, n);
  GST_OBJECT_UNLOCK (self);

  score = g_new (gfloat, n);
  prob = g_new (gfloat, n);
  if (!vlm_session_tag (self->session, frames, n_frames,
          (const char *const *) self->tag_labels, n, score, prob, error)) {
    g_free (score);
    g_free (prob);
    return NULL;
  }

  /* best first; insertion sort, as label sets are short */
  order = g_new (guint, n);
  for (i = 0; i < n; i++) {
    for (j = i; j > 0 && score[order[j - 1]] < score[i]; j--)
      order[j] = order[j - 1];
    order[j] = i;
  }

  text = g_string_new (NULL);
  gst_value_array_init (&labels, top_k);
  gst_value_array_init (&scores, top_k);
  gst_value_array_init (&probs, top_k);
  for (i = 0; i < top_k; i++) {
    GValue v = G_VALUE_INIT;
    guint k = order[i];

    g_string_append_printf (text, "%s%s (%.2f)", i ? "; " : "",
        self->tag_labels[k], prob[k]);
    g_value_init (&v, G_TYPE_STRING);
    g_value_set_string (&v, self->tag_labels[k]);
    gst_value_array_append_and_take_value (&labels, &v);
    g_value_init (&v, G_TYPE_DOUBLE);
    g_value_set_double (&v, score[k]);
    gst_value_array_append_and_take_value (&scores, &v);
    g_value_init (&v, G_TYPE_DOUBLE);
    g_value_set_double (&v, prob[k]);
    gst_value_array_append_and_take_value (&probs, &v);
  }

  s = gst_structure_new ("vlmcaption",
      "text", G_TYPE_STRING, text->str,
      "start", G_TYPE_UINT64, clip->pts,
      "end", G_TYPE_UINT64, clip->end_pts,
      "model", G_TYPE_STRING, vlm_model_get_name (self->model),
      "prompt", G_TYPE_STRING, "",
      "n-tokens", G_TYPE_INT, 0,
      "inference-ms", G_TYPE_DOUBLE,
      (g_get_monotonic_time () - started) / 1000.0, NULL);
  gst_structure_take_value (s, "labels", &labels);
  gst_structure_take_value (s, "scores", &scores);
  gst_structure_take_value (s, "probs", &probs);
  g_string_free (text, TRUE);
  g_free (order);
  g_free (score);
  g_free (prob);
  return s;
}

/* Worker thread: tags when the model cannot caption, or when labels are set
 * and the model scores them; captions otherwise. */
static GstStructure *
infer_frames (GstVlmCaption * self, GstVlmClip * clip, const VlmFrame * frames,
    guint n_frames, GError ** error)
{
  GstStructure *s;

  refresh_labels (self);
  if (self->can_generate && (!self->tag_labels[0] || self->tag_unsupported))
    return caption_frames (self, clip, frames, n_frames, error);

  s = tag_frames (self, clip, frames, n_frames, error);
  /* With frames and labels given, BAD_ARGUMENT means the model has no text
   * tower: say so once and caption, until the labels change. */
  if (!s && self->can_generate
      && g_error_matches (*error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT)) {
    GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
        ("Ignoring labels: %s", (*error)->message), (NULL));
    g_clear_error (error);
    self->tag_unsupported = TRUE;
    s = caption_frames (self, clip, frames, n_frames, error);
  }
  return s;
}

/* Worker thread: captions (or tags) one clip and publishes the result. */
static void
caption_clip (GstVlmCaption * self, GstVlmClip * clip)
{
  GstVideoFrame *vframes = g_new0 (GstVideoFrame, clip->n_filled);
  VlmFrame *frames = g_new0 (VlmFrame, clip->n_filled);
  GstStructure *s = NULL;
  GError *error = NULL;
  gboolean stale;
  gdouble ms = 0;
  const gchar *text = NULL;
  guint i, n_mapped;

  for (n_mapped = 0; n_mapped < clip->n_filled; n_mapped++) {
    GstVlmFrame *slot = &clip->slots[n_mapped];

    if (!gst_video_frame_map (&vframes[n_mapped], &slot->info, slot->buffer,
            GST_MAP_READ))
      break;
    vlm_frame_from_video_frame (&vframes[n_mapped], &frames[n_mapped]);
  }
  GST_DEBUG_OBJECT (self, "inferring %u frames at %" GST_TIME_FORMAT,
      n_mapped, GST_TIME_ARGS (clip->pts));
  if (n_mapped > 0)
    s = infer_frames (self, clip, frames, n_mapped, &error);
  for (i = 0; i < n_mapped; i++)
    gst_video_frame_unmap (&vframes[i]);
  if (s) {
    text = gst_structure_get_string (s, "text");
    gst_structure_get_double (s, "inference-ms", &ms);
  }

  /* The meta goes first and the text last: an application that sees the
   * message finds the meta on the next video buffer, and the message and
   * signal come before the caption's text buffer and a drained EOS. */
  g_mutex_lock (&self->lock);
  stale = clip->epoch != self->epoch || self->flushing;
  if (!stale && s)
    self->pending_metas = g_list_prepend (self->pending_metas,
        gst_structure_copy (s));
  g_mutex_unlock (&self->lock);
  if (stale) {
    GST_DEBUG_OBJECT (self, "discarding the caption of a flushed clip");
    goto done;
  }
  if (s) {
    GST_INFO_OBJECT (self, "%" GST_TIME_FORMAT ": \"%s\" (%.1f ms)",
        GST_TIME_ARGS (clip->pts), text, ms);
    g_signal_emit (self, signals[SIGNAL_CAPTION], 0, text, clip->pts,
        clip->end_pts);
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_element (GST_OBJECT (self), gst_structure_copy (s)));
  } else if (!g_error_matches (error, VLM_ERROR, VLM_ERROR_CANCELLED)) {
    GST_ELEMENT_WARNING (self, STREAM, FAILED,
        ("Could not caption the clip at %" GST_TIME_FORMAT ": %s",
            GST_TIME_ARGS (clip->pts), error ? error->message : "no frames"),
        (NULL));
  }

  g_mutex_lock (&self->lock);
  if (clip->epoch == self->epoch && !self->flushing) {
    if (clip->state == GST_VLM_CLIP_QUEUED) {
      clip->state = s ? GST_VLM_CLIP_DONE : GST_VLM_CLIP_FAILED;
      clip->text = g_strdup (text);
    }
    wake_locked (self);
  }
  g_mutex_unlock (&self->lock);

done:
  if (s)
    gst_structure_free (s);
  g_clear_error (&error);
  g_free (frames);
  g_free (vframes);
}

/* The inference thread: owns the session, takes clips in order. */
static gpointer
gst_vlm_caption_worker (gpointer data)
{
  GstVlmCaption *self = data;
  GstVlmClip *clip;

  g_mutex_lock (&self->lock);
  for (;;) {
    while (!self->quit && g_queue_is_empty (&self->work))
      g_cond_wait (&self->cond, &self->lock);
    if (self->quit)
      break;
    clip = g_queue_pop_head (&self->work);
    wake_locked (self);

    /* Its text already went out as a GAP: the caption would be too late. */
    if (clip->state == GST_VLM_CLIP_LATE) {
      GstMessage *message;

      self->dropped++;
      message = drop_message_new (self, clip, "late");
      g_mutex_unlock (&self->lock);
      GST_DEBUG_OBJECT (self, "skipping clip at %" GST_TIME_FORMAT
          ", past its deadline", GST_TIME_ARGS (clip->pts));
      gst_element_post_message (GST_ELEMENT (self), message);
    } else {
      g_mutex_unlock (&self->lock);
      caption_clip (self, clip);
    }
    gst_vlm_clip_unref (clip);
    g_mutex_lock (&self->lock);
  }
  g_mutex_unlock (&self->lock);
  return NULL;
}

/* ---------------------------------------------------------------- text_src */

static gboolean
negotiate_text (GstVlmCaption * self)
{
  GstCaps *templ = gst_pad_get_pad_template_caps (self->text_srcpad);
  GstCaps *caps = gst_pad_peer_query_caps (self->text_srcpad, templ);
  GstStructure *s;

  gst_caps_unref (templ);
  if (gst_caps_is_empty (caps)) {
    gst_caps_unref (caps);
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL),
        ("downstream of text_src accepts no subtitle format"));
    return FALSE;
  }
  caps = gst_caps_fixate (caps);
  s = gst_caps_get_structure (caps, 0);
  if (gst_structure_has_name (s, "application/x-subtitle-vtt"))
    self->text_format = GST_VLM_CAPTION_TEXT_VTT;
  else if (gst_structure_has_name (s, "application/x-subtitle"))
    self->text_format = GST_VLM_CAPTION_TEXT_SRT;
  else if (!g_strcmp0 (gst_structure_get_string (s, "format"), "pango-markup"))
    self->text_format = GST_VLM_CAPTION_TEXT_PANGO;
  else
    self->text_format = GST_VLM_CAPTION_TEXT_UTF8;
  GST_DEBUG_OBJECT (self, "text caps %" GST_PTR_FORMAT, caps);
  gst_pad_push_event (self->text_srcpad, gst_event_new_caps (caps));
  gst_caps_unref (caps);
  self->text_caps_set = TRUE;
  return TRUE;
}

static gboolean
ensure_text_caps (GstVlmCaption * self)
{
  if (gst_pad_check_reconfigure (self->text_srcpad) || !self->text_caps_set)
    return negotiate_text (self);
  return TRUE;
}

/* HH:MM:SS.mmm (WebVTT) or HH:MM:SS,mmm (SubRip) in stream time. */
static void
append_cue_time (GString * out, GstVlmCaption * self, GstClockTime pts,
    gchar separator)
{
  GstClockTime t = gst_segment_to_stream_time (&self->text_segment,
      GST_FORMAT_TIME, pts);
  guint64 ms;

  if (!GST_CLOCK_TIME_IS_VALID (t))
    t = pts;
  ms = t / GST_MSECOND;
  g_string_append_printf (out, "%02" G_GUINT64_FORMAT ":%02u:%02u%c%03u",
      ms / 3600000, (guint) (ms / 60000 % 60), (guint) (ms / 1000 % 60),
      separator, (guint) (ms % 1000));
}

static GstBuffer *
text_buffer_new (GstVlmCaption * self, const gchar * text, GstClockTime pts,
    GstClockTime duration)
{
  GString *out = g_string_new (NULL);
  GstBuffer *buffer;
  gsize len;

  switch (self->text_format) {
    case GST_VLM_CAPTION_TEXT_UTF8:
      g_string_append (out, text);
      break;
    case GST_VLM_CAPTION_TEXT_PANGO:{
      gchar *escaped = g_markup_escape_text (text, -1);

      g_string_append (out, escaped);
      g_free (escaped);
      break;
    }
    case GST_VLM_CAPTION_TEXT_VTT:
      /* The stream is a WebVTT file: its header rides on the first cue. */
      if (!self->vtt_header_sent)
        g_string_append (out, "WEBVTT\n\n");
      self->vtt_header_sent = TRUE;
      append_cue_time (out, self, pts, '.');
      g_string_append (out, " --> ");
      append_cue_time (out, self, gst_vlm_clock_add (pts, duration), '.');
      g_string_append_printf (out, "\n%s\n\n", text);
      break;
    case GST_VLM_CAPTION_TEXT_SRT:
      g_string_append_printf (out, "%u\n", ++self->srt_index);
      append_cue_time (out, self, pts, ',');
      g_string_append (out, " --> ");
      append_cue_time (out, self, gst_vlm_clock_add (pts, duration), ',');
      g_string_append_printf (out, "\n%s\n\n", text);
      break;
  }
  len = out->len;
  buffer = gst_buffer_new_wrapped (g_string_free (out, FALSE), len);
  GST_BUFFER_PTS (buffer) = pts;
  GST_BUFFER_DURATION (buffer) = duration;
  return buffer;
}

/* Text task: the caption of `clip` (or a GAP for it), after a GAP for any
 * hole since the previous clip. */
static GstFlowReturn
push_text_clip (GstVlmCaption * self, GstVlmClip * clip, const gchar * text)
{
  GstClockTime pts = clip->text_pts, duration = clip->text_duration;
  GstFlowReturn ret = GST_FLOW_OK;

  if (!GST_CLOCK_TIME_IS_VALID (pts))
    return GST_FLOW_OK;
  if (!ensure_text_caps (self))
    return GST_FLOW_NOT_NEGOTIATED;

  if (GST_CLOCK_TIME_IS_VALID (self->text_position)
      && pts > self->text_position)
    gst_pad_push_event (self->text_srcpad,
        gst_event_new_gap (self->text_position, pts - self->text_position));

  if (text && *text)
    ret = gst_pad_push (self->text_srcpad,
        text_buffer_new (self, text, pts, duration));
  else
    gst_pad_push_event (self->text_srcpad, gst_event_new_gap (pts, duration));
  self->text_position = gst_vlm_clock_add (pts, duration);
  return ret;
}

/* Text task: forwards a serialized event in its place in the stream. */
static GstFlowReturn
push_text_event (GstVlmCaption * self, GstEvent * event)
{
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_STREAM_START:
      self->vtt_header_sent = FALSE;
      self->srt_index = 0;
      self->text_preroll_gap = TRUE;
      break;
    case GST_EVENT_SEGMENT:
      /* caps must precede the segment */
      if (!ensure_text_caps (self)) {
        gst_event_unref (event);
        return GST_FLOW_NOT_NEGOTIATED;
      }
      gst_event_copy_segment (event, &self->text_segment);
      self->text_position = GST_CLOCK_TIME_NONE;
      gst_pad_push_event (self->text_srcpad, event);
      /* An empty GAP lets sinks on the text branch preroll now: the first
       * caption needs a clip of video, which a sink on the video branch
       * waiting for the whole pipeline to preroll would never let through. */
      if (self->text_preroll_gap)
        gst_pad_push_event (self->text_srcpad,
            gst_event_new_gap (self->text_segment.start, 0));
      self->text_preroll_gap = FALSE;
      return GST_FLOW_OK;
    case GST_EVENT_EOS:
      gst_pad_push_event (self->text_srcpad, event);
      g_mutex_lock (&self->lock);
      self->text_eos = TRUE;
      wake_locked (self);
      g_mutex_unlock (&self->lock);
      return GST_FLOW_OK;
    default:
      break;
  }
  gst_pad_push_event (self->text_srcpad, event);
  return GST_FLOW_OK;
}

/* Waits until the head of the text queue may go out: an event, a resolved
 * clip, or, live, a clip whose deadline passed (marked LATE: a GAP goes out
 * so that nothing downstream waits for it). FALSE when flushing.
 * Called with the lock held. */
static gboolean
wait_for_text_item_locked (GstVlmCaption * self)
{
  for (;;) {
    OutItem *head;
    GstClock *clock;
    GstClockID id;
    GstClockReturn res;
    GstClockTime at;

    if (self->text_flushing)
      return FALSE;
    head = g_queue_peek_head (&self->out);
    if (head && (head->event || head->clip->state != GST_VLM_CLIP_QUEUED))
      return TRUE;
    /* no deadline, or one past the clock's range: wait for the caption */
    at = head ? gst_vlm_clock_add (gst_element_get_base_time (GST_ELEMENT
            (self)), head->clip->deadline_rt) : GST_CLOCK_TIME_NONE;
    if (!GST_CLOCK_TIME_IS_VALID (at)
        || !(clock = gst_element_get_clock (GST_ELEMENT (self)))) {
      g_cond_wait (&self->cond, &self->lock);
      continue;
    }

    id = gst_clock_new_single_shot_id (clock, at);
    gst_object_unref (clock);
    self->text_clock_id = id;
    g_mutex_unlock (&self->lock);
    res = gst_clock_id_wait (id, NULL);
    g_mutex_lock (&self->lock);
    self->text_clock_id = NULL;
    gst_clock_id_unref (id);

    /* A flush cannot free `head` meanwhile: FLUSH_STOP waits for this task. */
    if (res != GST_CLOCK_UNSCHEDULED && !self->text_flushing
        && head->clip->state == GST_VLM_CLIP_QUEUED) {
      GST_DEBUG_OBJECT (self, "caption at %" GST_TIME_FORMAT " missed its "
          "deadline", GST_TIME_ARGS (head->clip->pts));
      head->clip->state = GST_VLM_CLIP_LATE;
      return TRUE;
    }
  }
}

static void
gst_vlm_caption_text_loop (GstVlmCaption * self)
{
  OutItem *item;
  gchar *text = NULL;
  GstFlowReturn ret;

  g_mutex_lock (&self->lock);
  if (!wait_for_text_item_locked (self)) {
    g_mutex_unlock (&self->lock);
    goto pause;
  }
  item = g_queue_pop_head (&self->out);
  if (item->clip && item->clip->state == GST_VLM_CLIP_DONE)
    text = g_strdup (item->clip->text);
  g_mutex_unlock (&self->lock);

  if (item->event)
    ret = push_text_event (self, g_steal_pointer (&item->event));
  else
    ret = push_text_clip (self, item->clip, text);
  out_item_free (item);
  g_free (text);

  /* An unlinked text_src is normal: the video is what must flow. */
  if (ret == GST_FLOW_OK || ret == GST_FLOW_NOT_LINKED || ret == GST_FLOW_EOS)
    return;
  if (ret != GST_FLOW_FLUSHING)
    GST_ELEMENT_FLOW_ERROR (self, ret);
  g_mutex_lock (&self->lock);
  self->text_stopped = TRUE;
  wake_locked (self);
  g_mutex_unlock (&self->lock);

pause:
  GST_DEBUG_OBJECT (self, "pausing the text task");
  gst_pad_pause_task (self->text_srcpad);
}

static gboolean
gst_vlm_caption_text_activate_mode (GstPad * pad, GstObject * parent,
    GstPadMode mode, gboolean active)
{
  GstVlmCaption *self = GST_VLM_CAPTION (parent);

  if (mode != GST_PAD_MODE_PUSH)
    return FALSE;

  if (active) {
    /* sticky events went with the deactivation */
    self->text_caps_set = FALSE;
    self->vtt_header_sent = FALSE;
    self->srt_index = 0;
    self->text_position = GST_CLOCK_TIME_NONE;
    self->text_preroll_gap = TRUE;
    gst_segment_init (&self->text_segment, GST_FORMAT_TIME);
    g_mutex_lock (&self->lock);
    self->text_flushing = FALSE;
    self->text_stopped = FALSE;
    self->text_eos = FALSE;
    g_mutex_unlock (&self->lock);
    return gst_pad_start_task (pad, (GstTaskFunction) gst_vlm_caption_text_loop,
        self, NULL);
  }

  g_mutex_lock (&self->lock);
  self->text_flushing = TRUE;
  wake_locked (self);
  g_mutex_unlock (&self->lock);
  return gst_pad_stop_task (pad);
}

/* ---------------------------------------------------------------- events */

static GstEvent *
text_stream_start_new (GstEvent * upstream)
{
  const gchar *upstream_id;
  GstEvent *event;
  gchar *id;
  guint group_id;

  gst_event_parse_stream_start (upstream, &upstream_id);
  id = g_strconcat (upstream_id, "/vlmcaption-text", NULL);
  event = gst_event_new_stream_start (id);
  if (gst_event_parse_group_id (upstream, &group_id))
    gst_event_set_group_id (event, group_id);
  gst_event_set_stream_flags (event, GST_STREAM_FLAG_SPARSE);
  g_free (id);
  return event;
}

static void
flush_start (GstVlmCaption * self, GstEvent * event)
{
  g_mutex_lock (&self->lock);
  self->flushing = TRUE;
  self->text_flushing = TRUE;
  flush_queues_locked (self);
  wake_locked (self);
  g_mutex_unlock (&self->lock);
  if (self->session)
    vlm_session_cancel (self->session);
  gst_pad_push_event (self->text_srcpad, gst_event_ref (event));
}

static void
flush_stop (GstVlmCaption * self, GstEvent * event)
{
  /* Taking the stream lock waits for the text task to have paused. */
  GST_PAD_STREAM_LOCK (self->text_srcpad);
  gst_pad_push_event (self->text_srcpad, gst_event_ref (event));
  self->text_position = GST_CLOCK_TIME_NONE;
  self->text_preroll_gap = TRUE;    /* sinks preroll again after a flush */
  gst_vlm_sampler_reset (&self->sampler);
  self->latency_known = FALSE;
  g_mutex_lock (&self->lock);
  self->epoch++;
  self->flushing = FALSE;
  self->text_flushing = FALSE;
  self->text_stopped = FALSE;
  self->text_eos = FALSE;
  g_mutex_unlock (&self->lock);
  gst_pad_start_task (self->text_srcpad,
      (GstTaskFunction) gst_vlm_caption_text_loop, self, NULL);
  GST_PAD_STREAM_UNLOCK (self->text_srcpad);
}

/* EOS: caption what is left and wait until text_src pushed its EOS. */
static void
drain (GstVlmCaption * self)
{
  GQueue done = G_QUEUE_INIT;

  gst_vlm_sampler_drain (&self->sampler, &done);
  queue_clips (self, &done);

  g_mutex_lock (&self->lock);
  self->text_eos = FALSE;
  g_queue_push_tail (&self->out, out_item_new (gst_event_new_eos (), NULL));
  wake_locked (self);
  while (!self->text_eos && !self->text_flushing && !self->text_stopped)
    g_cond_wait (&self->cond, &self->lock);
  g_mutex_unlock (&self->lock);
  GST_DEBUG_OBJECT (self, "drained");
}

static gboolean
gst_vlm_caption_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  GstVlmCaption *self = GST_VLM_CAPTION (trans);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_STREAM_START:
      queue_text_event (self, text_stream_start_new (event));
      break;
    case GST_EVENT_SEGMENT:
      queue_text_event (self, gst_event_ref (event));
      break;
    case GST_EVENT_GAP:{
      GstClockTime ts, duration, rt = GST_CLOCK_TIME_NONE;
      GQueue done = G_QUEUE_INIT;

      /* No frames until the end of the gap: clips that end in it close. */
      gst_event_parse_gap (event, &ts, &duration);
      if (trans->segment.format == GST_FORMAT_TIME)
        rt = gst_segment_to_running_time (&trans->segment, GST_FORMAT_TIME,
            ts + (GST_CLOCK_TIME_IS_VALID (duration) ? duration : 0));
      if (GST_CLOCK_TIME_IS_VALID (rt)) {
        gst_vlm_sampler_advance (&self->sampler, rt, &done);
        queue_clips (self, &done);
      }
      break;
    }
    case GST_EVENT_EOS:
      drain (self);
      break;
    case GST_EVENT_FLUSH_START:
      flush_start (self, event);
      break;
    case GST_EVENT_FLUSH_STOP:
      flush_stop (self, event);
      break;
    default:
      break;
  }
  return GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (trans, event);
}

/* A seek reaches us from both source pads (the pipeline sends it to every
 * sink); forward each seek upstream once. */
static gboolean
forward_seek (GstVlmCaption * self, GstEvent * event)
{
  guint32 seqnum = gst_event_get_seqnum (event);
  gboolean seen;

  GST_OBJECT_LOCK (self);
  seen = seqnum == self->last_seek_seqnum;
  self->last_seek_seqnum = seqnum;
  GST_OBJECT_UNLOCK (self);

  if (seen) {
    gst_event_unref (event);
    return TRUE;
  }
  return gst_pad_push_event (GST_BASE_TRANSFORM_SINK_PAD (self), event);
}

static gboolean
gst_vlm_caption_src_event (GstBaseTransform * trans, GstEvent * event)
{
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_SEEK:
      return forward_seek (GST_VLM_CAPTION (trans), event);
    default:
      return GST_BASE_TRANSFORM_CLASS (parent_class)->src_event (trans, event);
  }
}

static gboolean
gst_vlm_caption_text_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_SEEK:
      return forward_seek (GST_VLM_CAPTION (parent), event);
    case GST_EVENT_RECONFIGURE:
      /* The text task renegotiates (the core flagged the pad); the video
       * upstream has nothing to change. */
    case GST_EVENT_QOS:
      /* Captions are cheap to render: QoS concerns the video branch. */
    case GST_EVENT_NAVIGATION:
      gst_event_unref (event);
      return TRUE;
    default:
      return gst_pad_event_default (pad, parent, event);
  }
}

/* ---------------------------------------------------------------- queries */

/* Upstream's latency plus, when live, the clip span and the inference
 * budget: a caption leaves at most that long after its clip started. */
static gboolean
latency_query (GstVlmCaption * self, GstQuery * query)
{
  GstClockTime min, max, ours;
  gboolean live;

  if (!gst_pad_peer_query (GST_BASE_TRANSFORM_SINK_PAD (self), query))
    return FALSE;
  gst_query_parse_latency (query, &live, &min, &max);
  g_mutex_lock (&self->lock);
  self->live = live;
  self->upstream_min = min;
  g_mutex_unlock (&self->lock);

  if (live) {
    GST_OBJECT_LOCK (self);
    ours = gst_vlm_clock_add (self->clip_duration, self->latency);
    GST_OBJECT_UNLOCK (self);
    /* min must stay a valid time; max saturates to "unbounded" */
    min = MIN (gst_vlm_clock_add (min, ours), GST_CLOCK_TIME_NONE - 1);
    max = gst_vlm_clock_add (max, ours);
    gst_query_set_latency (query, live, min, max);
  }
  GST_DEBUG_OBJECT (self, "latency: live %d, min %" GST_TIME_FORMAT ", max %"
      GST_TIME_FORMAT, live, GST_TIME_ARGS (min), GST_TIME_ARGS (max));
  return TRUE;
}

static gboolean
gst_vlm_caption_query (GstBaseTransform * trans, GstPadDirection direction,
    GstQuery * query)
{
  switch (GST_QUERY_TYPE (query)) {
    case GST_QUERY_LATENCY:
      if (direction == GST_PAD_SRC)
        return latency_query (GST_VLM_CAPTION (trans), query);
      break;
    default:
      break;
  }
  return GST_BASE_TRANSFORM_CLASS (parent_class)->query (trans, direction,
      query);
}

static gboolean
gst_vlm_caption_text_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  switch (GST_QUERY_TYPE (query)) {
    case GST_QUERY_LATENCY:
      return latency_query (GST_VLM_CAPTION (parent), query);
    default:
      return gst_pad_query_default (pad, parent, query);
  }
}

/* ---------------------------------------------------------------- class */

static void
gst_vlm_caption_finalize (GObject * object)
{
  GstVlmCaption *self = GST_VLM_CAPTION (object);

  g_free (self->model_dir);
  g_free (self->prompt);
  g_free (self->generation_config);
  g_free (self->model_instance_id);
  g_free (self->labels);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_vlm_caption_init (GstVlmCaption * self)
{
  GstBaseTransform *trans = GST_BASE_TRANSFORM (self);

  /* In place, not passthrough: the pixels are never touched, but adding the
   * caption meta needs a writable buffer. When the incoming buffer is
   * shared, the base class copies the GstBuffer, never the memory. */
  gst_base_transform_set_in_place (trans, TRUE);
  gst_base_transform_set_passthrough (trans, FALSE);

  self->text_srcpad =
      gst_pad_new_from_static_template (&text_src_template, "text_src");
  gst_pad_set_event_function (self->text_srcpad, gst_vlm_caption_text_event);
  gst_pad_set_query_function (self->text_srcpad, gst_vlm_caption_text_query);
  gst_pad_set_activatemode_function (self->text_srcpad,
      gst_vlm_caption_text_activate_mode);
  gst_element_add_pad (GST_ELEMENT (self), self->text_srcpad);

  self->model_dir = g_strdup (DEFAULT_PROP_MODEL);
  self->prompt = g_strdup (DEFAULT_PROP_PROMPT);
  self->max_new_tokens = DEFAULT_PROP_MAX_NEW_TOKENS;
  self->num_beams = DEFAULT_PROP_NUM_BEAMS;
  self->generation_config = g_strdup (DEFAULT_PROP_GENERATION_CONFIG);
  self->n_threads = DEFAULT_PROP_N_THREADS;
  self->latency = DEFAULT_PROP_LATENCY;
  self->model_instance_id = g_strdup (DEFAULT_PROP_MODEL_INSTANCE_ID);
  self->precision = DEFAULT_PROP_PRECISION;
  self->backend = DEFAULT_PROP_BACKEND;
  self->frames_per_clip = DEFAULT_PROP_FRAMES_PER_CLIP;
  self->clip_duration = DEFAULT_PROP_CLIP_DURATION;
  self->caption_interval = DEFAULT_PROP_CAPTION_INTERVAL;
  self->overlap = DEFAULT_PROP_OVERLAP;
  self->drop_policy = DEFAULT_PROP_DROP_POLICY;
  self->queue_size = DEFAULT_PROP_QUEUE_SIZE;
  self->labels = g_strdup (DEFAULT_PROP_LABELS);
  self->top_k = DEFAULT_PROP_TOP_K;

  gst_video_info_init (&self->vinfo);
  g_queue_init (&self->sampler.open);
  gst_segment_init (&self->text_segment, GST_FORMAT_TIME);
  self->text_position = GST_CLOCK_TIME_NONE;
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  g_queue_init (&self->work);
  g_queue_init (&self->out);
  self->flushing = TRUE;
  self->text_flushing = TRUE;
}

static void
gst_vlm_caption_class_init (GstVlmCaptionClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);

  gobject_class->set_property = gst_vlm_caption_set_property;
  gobject_class->get_property = gst_vlm_caption_get_property;
  gobject_class->finalize = gst_vlm_caption_finalize;

  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model",
          "HuggingFace checkpoint folder (config.json, model.safetensors, "
          "tokenizer.json, ...); NULL: the embedded test-card model",
          DEFAULT_PROP_MODEL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_PROMPT,
      g_param_spec_string ("prompt", "Prompt",
          "Text the caption continues or answers; NULL or empty: the model's "
          "plain captioning prompt. Applies from the next clip",
          DEFAULT_PROP_PROMPT,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_MAX_NEW_TOKENS,
      g_param_spec_uint ("max-new-tokens", "Max new tokens",
          "Most tokens generated per caption; 0: the model's "
          "generation_config.json", 0, 4096, DEFAULT_PROP_MAX_NEW_TOKENS,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_NUM_BEAMS,
      g_param_spec_uint ("num-beams", "Beams",
          "Beam search width (1: greedy); 0: the model's "
          "generation_config.json", 0, 64, DEFAULT_PROP_NUM_BEAMS,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_GENERATION_CONFIG,
      g_param_spec_string ("generation-config", "Generation config",
          "HF generation settings as \"key=value,key=value\" (max_new_tokens, "
          "num_beams, length_penalty, early_stopping, do_sample, temperature, "
          "top_k, top_p, repetition_penalty, seed); max-new-tokens and "
          "num-beams override it", DEFAULT_PROP_GENERATION_CONFIG,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_N_THREADS,
      g_param_spec_int ("n-threads", "Threads",
          "CPU threads for inference; 0: all cores", 0, 1024,
          DEFAULT_PROP_N_THREADS,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_LATENCY,
      g_param_spec_uint64 ("latency", "Latency",
          "Time budget for captioning a clip once it ended, in nanoseconds. "
          "Live, the element reports clip-duration + latency and a caption "
          "later than that becomes a GAP on text_src", 0, G_MAXUINT64,
          DEFAULT_PROP_LATENCY,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_MODEL_INSTANCE_ID,
      g_param_spec_string ("model-instance-id", "Model instance id",
          "Elements with the same id share one loaded model (each keeps its "
          "own inference state); NULL: a private model",
          DEFAULT_PROP_MODEL_INSTANCE_ID,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_PRECISION,
      g_param_spec_enum ("precision", "Precision",
          "Numeric precision of the matmuls", GST_TYPE_VLM_CAPTION_PRECISION,
          DEFAULT_PROP_PRECISION,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_BACKEND,
      g_param_spec_enum ("backend", "Backend", "Compute library",
          GST_TYPE_VLM_CAPTION_BACKEND, DEFAULT_PROP_BACKEND,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_FRAMES_PER_CLIP,
      g_param_spec_uint ("frames-per-clip", "Frames per clip",
          "Frames sampled from each clip, evenly in running time; 0: what the "
          "model was trained with", 0, 256, DEFAULT_PROP_FRAMES_PER_CLIP,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_CLIP_DURATION,
      g_param_spec_uint64 ("clip-duration", "Clip duration",
          "Span of video one caption describes, in nanoseconds; a span past "
          "the clock's range (e.g. 18446744073709551615) never ends: its clip "
          "closes at EOS and its caption has no duration",
          GST_MSECOND, G_MAXUINT64, DEFAULT_PROP_CLIP_DURATION,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_CAPTION_INTERVAL,
      g_param_spec_uint64 ("caption-interval", "Caption interval",
          "Time between the starts of consecutive clips, in nanoseconds; "
          "longer than clip-duration leaves uncaptioned gaps; one past the "
          "clock's range (e.g. 18446744073709551615) opens one clip only. "
          "0: clip-duration - overlap", 0, G_MAXUINT64,
          DEFAULT_PROP_CAPTION_INTERVAL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_OVERLAP,
      g_param_spec_uint64 ("overlap", "Overlap",
          "Time consecutive clips share, in nanoseconds, when "
          "caption-interval is 0; must be shorter than clip-duration",
          0, G_MAXUINT64, DEFAULT_PROP_OVERLAP,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_DROP_POLICY,
      g_param_spec_enum ("drop-policy", "Drop policy",
          "What a live stream does with a clip when queue-size clips already "
          "wait for the model (a non-live stream always waits)",
          GST_TYPE_VLM_CAPTION_DROP_POLICY, DEFAULT_PROP_DROP_POLICY,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_QUEUE_SIZE,
      g_param_spec_uint ("queue-size", "Queue size",
          "Clips that may wait while the model captions another", 1, 64,
          DEFAULT_PROP_QUEUE_SIZE,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_LABELS,
      g_param_spec_string ("labels", "Labels",
          "Text labels to score each clip against, separated by ';' (e.g. "
          "\"a dog;a person walking;an empty room\"), for models that tag "
          "clips (zero-shot) instead of, or as well as, captioning them. "
          "Applies from the next clip; NULL or empty: caption (a model that "
          "only tags then refuses to start)",
          DEFAULT_PROP_LABELS,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_TOP_K,
      g_param_spec_uint ("top-k", "Top k",
          "Best-scoring labels reported per tagged clip (text, meta and "
          "message). Applies from the next clip", 1, G_MAXUINT,
          DEFAULT_PROP_TOP_K,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_DROPPED_CLIPS,
      g_param_spec_uint64 ("dropped-clips", "Dropped clips",
          "Clips left uncaptioned since the element started: dropped from "
          "a full queue, or skipped past their deadline (live only)",
          0, G_MAXUINT64, 0, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  /**
   * GstVlmCaption::caption:
   * @vlmcaption: the element
   * @text: the caption, UTF-8
   * @start: PTS where the captioned clip starts, in nanoseconds
   * @end: PTS where it ends, in nanoseconds
   *
   * Emitted from the inference thread each time a clip is captioned, as soon
   * as the caption is ready (before it reaches text_src or a video buffer).
   * Handlers must not block.
   */
  signals[SIGNAL_CAPTION] = g_signal_new ("caption",
      G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
      G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_UINT64, G_TYPE_UINT64);

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_add_static_pad_template (element_class,
      &text_src_template);
  gst_element_class_set_static_metadata (element_class,
      "Vision-language captioner", "Filter/Analyzer/Video",
      "Captions clips of video with a HuggingFace vision-language model on "
      "the CPU: subtitles on text_src, meta, bus messages and a signal",
      "vlmcaption authors");

  element_class->change_state = gst_vlm_caption_change_state;

  trans_class->passthrough_on_same_caps = FALSE;
  trans_class->start = gst_vlm_caption_start;
  trans_class->stop = gst_vlm_caption_stop;
  trans_class->set_caps = gst_vlm_caption_set_caps;
  trans_class->transform_ip = gst_vlm_caption_transform_ip;
  trans_class->sink_event = gst_vlm_caption_sink_event;
  trans_class->src_event = gst_vlm_caption_src_event;
  trans_class->query = gst_vlm_caption_query;

  gst_type_mark_as_plugin_api (GST_TYPE_VLM_CAPTION_DROP_POLICY, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_VLM_CAPTION_PRECISION, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_VLM_CAPTION_BACKEND, 0);
  gst_vlm_caption_meta_get_info ();
}

/* ---------------------------------------------------------------- plugin */

static void
log_to_gst (VlmLogLevel level, const char *message, void *user_data)
{
  static const GstDebugLevel levels[] = {
    [VLM_LOG_ERROR] = GST_LEVEL_ERROR,
    [VLM_LOG_WARNING] = GST_LEVEL_WARNING,
    [VLM_LOG_INFO] = GST_LEVEL_INFO,
    [VLM_LOG_DEBUG] = GST_LEVEL_DEBUG,
  };

  GST_CAT_LEVEL_LOG (gst_vlm_caption_debug, levels[level], NULL, "%s",
      message);
}

static gboolean
plugin_init (GstPlugin * plugin)
{
  const gchar *filename = gst_plugin_get_filename (plugin);

  if (filename && !plugin_dir)
    plugin_dir = g_path_get_dirname (filename);
  if (!GST_ELEMENT_REGISTER (vlmcaption, plugin))
    return FALSE;
  /* After registering: the element's type init made the debug category. */
  vlm_set_log_func (log_to_gst, NULL);
  return TRUE;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, vlmcaption,
    "Captions video with vision-language models on the CPU", plugin_init,
    VERSION, "LGPL", PACKAGE, "Unknown package origin")
