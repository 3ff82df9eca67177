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
 *   (`application/x-subtitle-vtt`, `application/x-subtitle`: escaped, one
 *   header, numbering and cue times that go on across segments and seeks)
 *   for filesink. Each buffer starts where its clip starts and lasts until
 *   the next clip; GAP events cover spans without a caption;
 * - as a custom meta (`GstVlmCaptionMeta`, see `gstvlmcaption/vlmcaptionmeta.h`)
 *   on the first frame of the captioned clip;
 * - as a `vlmcaption` element message on the bus;
 * - through the #GstVlmCaption::caption signal.
 *
 * The video itself goes through untouched: same buffers, same timestamps.
 * With #GstVlmCaption:alignment aligned (the default) it waits in the
 * element until text_src has sent the text that covers it, so each caption
 * goes out before its frames and textoverlay needs no queue; immediate lets
 * it pass at once (the meta then rides on the first buffer after the
 * caption).
 *
 * In a live pipeline the streaming thread never waits for the model: clips
 * that find the queue full are dropped according to #GstVlmCaption:drop-policy
 * and counted in #GstVlmCaption:dropped-clips, and a caption that misses its
 * deadline (clip end + #GstVlmCaption:latency) is replaced by a GAP on
 * `text_src` so that nothing downstream waits for it; it is still posted,
 * and counted in #GstVlmCaption:late-captions. The element adds
 * #GstVlmCaption:clip-duration + #GstVlmCaption:latency to the pipeline
 * latency, which is also the longest it holds video live. With a non-live
 * source every clip is captioned and EOS waits for the last caption; the
 * last clip ends with the last frame.
 *
 * Like tee, the element has two source pads fed from one stream: put a queue
 * on each branch when they end in separate sinks or a muxer. docs/element.md
 * has a launch line per output and the memory held.
 *
 * Without #GstVlmCaption:model the element uses its embedded test-card
 * model, a small GIT captioner trained on videotestsrc's patterns.
 *
 * With #GstVlmCaption:server set the element loads no model: each clip's
 * sampled frames go as base64 JPEG data URLs, with the prompt, to that
 * OpenAI-compatible endpoint's /v1/chat/completions (vLLM, OpenVINO Model
 * Server, llama.cpp's server, or vlm-server from this project), and the
 * answer is the caption, given out as above. The request runs on the
 * inference thread: a slow, failing or lost server costs captions (counted
 * and warned about), never video (docs/scaling.md).
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
 *     vlmcaption name=c ! textoverlay name=o ! videoconvert ! autovideosink  c.text_src ! o.text_sink
 * ]| Shows a live test card with its captions overlaid.
 * |[
 * gst-launch-1.0 filesrc location=in.mkv ! decodebin ! videoconvert ! \
 *     vlmcaption model=/path/to/git-base-vatex name=c c. ! queue ! fakesink \
 *     c.text_src ! application/x-subtitle-vtt ! queue ! filesink location=out.vtt
 * ]| Writes a WebVTT file of a video's captions with a model from the Hub.
 * |[
 * OPENAI_API_KEY=... gst-launch-1.0 v4l2src ! videoconvert ! vlmcaption name=c \
 *     server=http://gpu-box:8000 server-model=Qwen/Qwen2-VL-2B-Instruct \
 *     api-key-env=OPENAI_API_KEY prompt="Describe this clip in one sentence." \
 *     ! videoconvert ! textoverlay name=o ! autovideosink  c.text_src ! o.text_sink
 * ]| Captions a camera with a model served by vLLM on another machine.
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
 * `vlmcaption-dropped` (element message, one per clip without a caption):
 * `dropped-clips` (guint64, total so far), `start`, `end` (guint64),
 * `reason` ("queue-full", "late": past its deadline before inference, or
 * "failed").
 *
 * `vlmcaption-late` (element message, one per caption past its deadline):
 * `late-captions` (guint64, total so far), `start`, `end` (guint64),
 * `lateness` (guint64, ns past the deadline), `text` (string).
 *
 * Captions on time + dropped-clips + late-captions = clips.
 */

#include <gstvlmcaption/vlmcaptionmeta.h>

#include "gstvlmcaption.h"
#include "gstvlmmodeltable.h"

GST_DEBUG_CATEGORY (gst_vlm_caption_debug);
#define GST_CAT_DEFAULT gst_vlm_caption_debug

#define DEFAULT_PROP_MODEL NULL
#define DEFAULT_PROP_PROMPT NULL
#define DEFAULT_PROP_MAX_NEW_TOKENS 0
#define DEFAULT_PROP_NUM_BEAMS 0
#define DEFAULT_PROP_GENERATION_CONFIG NULL
#define DEFAULT_PROP_N_THREADS 0
#define DEFAULT_PROP_LATENCY GST_SECOND
#define DEFAULT_PROP_MODEL_INSTANCE_ID NULL
#define DEFAULT_PROP_SCHEDULER GST_VLM_CAPTION_SCHEDULER_SHARED
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
#define DEFAULT_PROP_ALIGNMENT GST_VLM_CAPTION_ALIGNED
#define DEFAULT_PROP_CLOSED_CAPTIONS GST_VLM_CC_NONE
#define DEFAULT_PROP_SERVER NULL
#define DEFAULT_PROP_API_KEY_ENV NULL
#define DEFAULT_PROP_SERVER_MODEL NULL
#define DEFAULT_PROP_SERVER_TIMEOUT (10 * GST_SECOND)
#define DEFAULT_PROP_SERVER_RETRIES 1
#define DEFAULT_PROP_SERVER_STREAM FALSE
#define DEFAULT_PROP_JPEG_QUALITY 90
/* frames per clip sent to a server when frames-per-clip is 0: the element
 * cannot know what the served model wants */
#define DEFAULT_REMOTE_FRAMES 8

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
  PROP_ALIGNMENT,
  PROP_CLOSED_CAPTIONS,
  PROP_LATE_CAPTIONS,
  PROP_SERVER,
  PROP_API_KEY_ENV,
  PROP_SERVER_MODEL,
  PROP_SERVER_TIMEOUT,
  PROP_SERVER_RETRIES,
  PROP_SERVER_STREAM,
  PROP_JPEG_QUALITY,
  PROP_SCHEDULER,
  PROP_SCHEDULER_STATS,
};

guint gst_vlm_caption_signals[GST_VLM_CAPTION_LAST_SIGNAL];

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
        "application/x-subtitle-vtt; application/x-subtitle; "
        "application/x-json"));

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

#define GST_TYPE_VLM_CAPTION_SCHEDULER (gst_vlm_caption_scheduler_get_type ())
static GType
gst_vlm_caption_scheduler_get_type (void)
{
  static gsize type = 0;
  static const GEnumValue values[] = {
    {GST_VLM_CAPTION_SCHEDULER_SHARED, "One inference thread for every "
          "element of the model-instance-id; their decode steps run as one "
          "batch", "shared"},
    {GST_VLM_CAPTION_SCHEDULER_PRIVATE, "Each element runs its own forward "
          "passes on its own thread (the weights are still shared)",
        "private"},
    {0, NULL, NULL}
  };

  if (g_once_init_enter (&type))
    g_once_init_leave (&type,
        g_enum_register_static ("GstVlmCaptionScheduler", values));
  return type;
}

#define GST_TYPE_VLM_CAPTION_ALIGNMENT (gst_vlm_caption_alignment_get_type ())
static GType
gst_vlm_caption_alignment_get_type (void)
{
  static gsize type = 0;
  static const GEnumValue values[] = {
    {GST_VLM_CAPTION_ALIGNED, "Video waits until text_src sent the text that "
          "covers it (live: at most the reported latency); the meta rides on "
          "the first frame of its clip", "aligned"},
    {GST_VLM_CAPTION_IMMEDIATE, "Video passes at once; the meta rides on the "
          "first buffer after the caption is ready", "immediate"},
    {0, NULL, NULL}
  };

  if (g_once_init_enter (&type))
    g_once_init_leave (&type,
        g_enum_register_static ("GstVlmCaptionAlignment", values));
  return type;
}

#define GST_TYPE_VLM_CAPTION_CLOSED_CAPTIONS \
    (gst_vlm_caption_closed_captions_get_type ())
static GType
gst_vlm_caption_closed_captions_get_type (void)
{
  static gsize type = 0;
  static const GEnumValue values[] = {
    {GST_VLM_CC_NONE, "No closed captions", "none"},
    {GST_VLM_CC_POP_ON, "CEA-608 pop-on: each caption loaded off screen, "
          "then shown whole (pages of up to 4 rows)", "pop-on"},
    {GST_VLM_CC_ROLL_UP, "CEA-608 roll-up: 3 rows scrolling on the bottom "
          "row as the text arrives", "roll-up"},
    {0, NULL, NULL}
  };

  if (g_once_init_enter (&type))
    g_once_init_leave (&type,
        g_enum_register_static ("GstVlmCaptionClosedCaptions", values));
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
    case PROP_SCHEDULER:
      self->scheduler = g_value_get_enum (value);
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
    case PROP_ALIGNMENT:
      self->alignment = g_value_get_enum (value);
      break;
    case PROP_CLOSED_CAPTIONS:
      self->closed_captions = g_value_get_enum (value);
      break;
    case PROP_SERVER:
      g_free (self->server);
      self->server = g_value_dup_string (value);
      break;
    case PROP_API_KEY_ENV:
      g_free (self->api_key_env);
      self->api_key_env = g_value_dup_string (value);
      break;
    case PROP_SERVER_MODEL:
      g_free (self->server_model);
      self->server_model = g_value_dup_string (value);
      break;
    case PROP_SERVER_TIMEOUT:
      self->server_timeout = g_value_get_uint64 (value);
      break;
    case PROP_SERVER_RETRIES:
      self->server_retries = g_value_get_uint (value);
      break;
    case PROP_SERVER_STREAM:
      self->server_stream = g_value_get_boolean (value);
      break;
    case PROP_JPEG_QUALITY:
      self->jpeg_quality = g_value_get_uint (value);
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

/* The shared scheduler's counters as the scheduler-stats structure; NULL
 * when the element has none (private, remote, stopped). The batcher is set
 * in start() and cleared in stop(), which the state lock keeps apart from
 * property reads on the application's side only loosely: take the
 * reference under the object lock. */
static GstStructure *
scheduler_stats (GstVlmCaption * self)
{
  VlmBatcherStats st;
  VlmBatcher *batcher;

  GST_OBJECT_LOCK (self);
  batcher = self->batcher ? vlm_batcher_ref (self->batcher) : NULL;
  GST_OBJECT_UNLOCK (self);
  if (!batcher)
    return NULL;
  vlm_batcher_get_stats (batcher, &st);
  vlm_batcher_unref (batcher);
  return gst_structure_new ("vlmcaption-scheduler",
      "steps", G_TYPE_UINT64, st.steps,
      "step-captions", G_TYPE_UINT64, st.step_captions,
      "step-rows", G_TYPE_UINT64, st.step_rows,
      "max-step-captions", G_TYPE_INT, st.max_step_captions,
      "mean-batch", G_TYPE_DOUBLE, st.steps ?
      (gdouble) st.step_captions / st.steps : 0.0,
      "encodes", G_TYPE_UINT64, st.encodes,
      "encode-batches", G_TYPE_UINT64, st.encode_batches,
      "prefills", G_TYPE_UINT64, st.prefills, NULL);
}

static void
gst_vlm_caption_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstVlmCaption *self = GST_VLM_CAPTION (object);

  if (prop_id == PROP_DROPPED_CLIPS || prop_id == PROP_LATE_CAPTIONS) {
    g_mutex_lock (&self->lock);
    g_value_set_uint64 (value, prop_id == PROP_DROPPED_CLIPS ? self->dropped :
        self->late);
    g_mutex_unlock (&self->lock);
    return;
  }
  if (prop_id == PROP_SCHEDULER_STATS) {
    g_value_take_boxed (value, scheduler_stats (self));
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
    case PROP_SCHEDULER:
      g_value_set_enum (value, self->scheduler);
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
    case PROP_ALIGNMENT:
      g_value_set_enum (value, self->alignment);
      break;
    case PROP_CLOSED_CAPTIONS:
      g_value_set_enum (value, self->closed_captions);
      break;
    case PROP_SERVER:
      g_value_set_string (value, self->server);
      break;
    case PROP_API_KEY_ENV:
      g_value_set_string (value, self->api_key_env);
      break;
    case PROP_SERVER_MODEL:
      g_value_set_string (value, self->server_model);
      break;
    case PROP_SERVER_TIMEOUT:
      g_value_set_uint64 (value, self->server_timeout);
      break;
    case PROP_SERVER_RETRIES:
      g_value_set_uint (value, self->server_retries);
      break;
    case PROP_SERVER_STREAM:
      g_value_set_boolean (value, self->server_stream);
      break;
    case PROP_JPEG_QUALITY:
      g_value_set_uint (value, self->jpeg_quality);
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
gboolean
gst_vlm_caption_build_gen_params (GstVlmCaption * self, VlmGenParams * params, GError ** error)
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
gchar **
gst_vlm_caption_split_labels (const gchar * text)
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

/* READY->PAUSED with a server: the client instead of a model. The key is
 * read from the environment here, once, and goes nowhere but the client. */
static gboolean
start_remote (GstVlmCaption * self, const gchar * server)
{
  GstVlmRemoteSettings settings = { 0 };
  GstVlmRemoteGen gen;
  GError *error = NULL;
  gchar *key_env, *model, *config;
  guint max_new_tokens;
  gboolean ok = FALSE;

  GST_OBJECT_LOCK (self);
  key_env = g_strdup (self->api_key_env);
  model = g_strdup (self->server_model);
  config = g_strdup (self->generation_config);
  max_new_tokens = self->max_new_tokens;
  settings.timeout_ms = self->server_timeout / GST_MSECOND;
  settings.retries = self->server_retries;
  settings.stream = self->server_stream;
  settings.jpeg_quality = self->jpeg_quality;
  GST_OBJECT_UNLOCK (self);

  settings.url = server;
  settings.model = model;
  if (key_env && *key_env) {
    settings.api_key = g_getenv (key_env);
    if (!settings.api_key || !*settings.api_key) {
      GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
          ("api-key-env names %s, which is not set in the environment",
              key_env), (NULL));
      goto out;
    }
  }
  if (!gst_vlm_remote_gen_parse (&gen, config, max_new_tokens, &error)) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("Invalid generation-config: %s", error->message), (NULL));
    goto out;
  }
  self->remote = gst_vlm_remote_new (&settings, &error);
  if (!self->remote) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("Invalid server: %s",
            error->message), (NULL));
    goto out;
  }
  self->can_generate = TRUE;
  self->can_tag = FALSE;
  GST_INFO_OBJECT (self, "captioning through %s, model %s%s",
      gst_vlm_remote_get_endpoint (self->remote), model ? model : "(none)",
      settings.api_key ? ", with an API key" : "");
  ok = TRUE;
out:
  g_clear_error (&error);
  g_free (key_env);
  g_free (model);
  g_free (config);
  return ok;
}

/* Drops the session, then the model and the shared scheduler (the session
 * holds the batcher too: it must go first). Says what the scheduler ran,
 * counted over all of its streams since it was made. */
static void
release_model (GstVlmCaption * self)
{
  VlmBatcher *batcher;

  GST_OBJECT_LOCK (self);
  batcher = g_steal_pointer (&self->batcher);
  GST_OBJECT_UNLOCK (self);
  if (batcher) {
    VlmBatcherStats st;

    vlm_batcher_get_stats (batcher, &st);
    GST_INFO_OBJECT (self, "shared scheduler %s: %" G_GUINT64_FORMAT
        " decode steps, mean batch %.2f captions (max %d), %" G_GUINT64_FORMAT
        " clips encoded in %" G_GUINT64_FORMAT " tower calls",
        self->model_instance, st.steps, st.steps ?
        (gdouble) st.step_captions / st.steps : 0.0, st.max_step_captions,
        st.encodes, st.encode_batches);
  }
  g_clear_pointer (&self->session, vlm_session_free);
  gst_vlm_model_table_release (self->model_instance, self->model, batcher);
  self->model = NULL;
  g_clear_pointer (&self->model_instance, g_free);
}

/* READY->PAUSED: loads the model (or shares it by model-instance-id), makes
 * the session and starts the inference thread; with a server, makes the
 * client instead. */
static gboolean
gst_vlm_caption_start (GstBaseTransform * trans)
{
  GstVlmCaption *self = GST_VLM_CAPTION (trans);
  VlmModelParams params = vlm_model_default_params ();
  VlmGenParams gen;
  GError *error = NULL;
  gchar *dir, *instance, **labels, *server;
  VlmBatcher *batcher = NULL;
  gboolean shared;
  guint n_frames;
  GstClockTime duration, interval, overlap;

  GST_OBJECT_LOCK (self);
  /* the worker starts without labels: it splits them on its first clip */
  self->labels_changed = TRUE;
  labels = gst_vlm_caption_split_labels (self->labels);
  dir = g_strdup (self->model_dir);
  server = self->server && *self->server ? g_strdup (self->server) : NULL;
  instance = g_strdup (self->model_instance_id);
  shared = instance && *instance
      && self->scheduler == GST_VLM_CAPTION_SCHEDULER_SHARED;
  params.backend = self->backend;
  params.precision = self->precision;
  params.n_threads = self->n_threads;
  n_frames = self->frames_per_clip;
  duration = self->clip_duration;
  interval = self->caption_interval;
  overlap = self->overlap;
  self->aligned = self->alignment == GST_VLM_CAPTION_ALIGNED;
  gst_vlm_cc608_init (&self->cc, self->closed_captions);
  GST_OBJECT_UNLOCK (self);

  if (!interval && overlap >= duration)
    goto bad_overlap;
  if (server) {
    if (!start_remote (self, server))
      goto failed;
    if (!n_frames)
      n_frames = DEFAULT_REMOTE_FRAMES;
    goto sampler;
  }
  if (!dir)
    dir = default_model_dir ();

  GST_INFO_OBJECT (self, "loading model %s", dir);
  self->model = gst_vlm_model_table_acquire (instance, dir, &params,
      shared ? &batcher : NULL, &error);
  if (!self->model)
    goto load_failed;
  self->model_instance = g_steal_pointer (&instance);
  GST_OBJECT_LOCK (self);
  self->batcher = batcher;
  GST_OBJECT_UNLOCK (self);
  self->session = batcher ? vlm_session_new_batched (batcher, &error) :
      vlm_session_new (self->model, &error);
  if (!self->session)
    goto load_failed;
  GST_INFO_OBJECT (self, "scheduler %s%s", batcher ? "shared: model-instance-id "
      : "private", batcher ? self->model_instance : "");
  self->can_generate = vlm_model_can_generate (self->model);
  self->can_tag = vlm_model_can_tag (self->model);
  if (!self->can_generate && !labels[0])
    goto no_labels;
  /* A typo in generation-config fails the state change, not every clip. */
  if (!gst_vlm_caption_build_gen_params (self, &gen, &error))
    goto bad_generation_config;

  if (!n_frames)
    n_frames = MAX (vlm_model_get_frames_per_clip (self->model), 1);
  {
    GEnumValue *p = g_enum_get_value (g_type_class_peek
        (GST_TYPE_VLM_CAPTION_PRECISION),
        vlm_model_get_precision (self->model));
    gchar *kernels = vlm_model_describe_kernels (self->model);
    GST_INFO_OBJECT (self, "precision %s; %s", p ? p->value_nick : "?",
        kernels);
    g_free (kernels);
  }

sampler:
  self->clip_span = duration;
  self->clip_stride = interval ? interval : duration - overlap;
  gst_vlm_sampler_init (&self->sampler, n_frames, duration, self->clip_stride);
  self->latency_known = FALSE;
  GST_INFO_OBJECT (self, "%s: %u frames per clip of %" GST_TIME_FORMAT
      " every %" GST_TIME_FORMAT, self->model ? vlm_model_get_name
      (self->model) : server, n_frames, GST_TIME_ARGS (duration),
      GST_TIME_ARGS (self->clip_stride));

  g_mutex_lock (&self->lock);
  self->flushing = FALSE;
  self->quit = FALSE;
  self->live = FALSE;
  self->upstream_min = 0;
  self->dropped = 0;
  self->late = 0;
  self->eos_drop = FALSE;
  self->text_done_rt = 0;
  g_mutex_unlock (&self->lock);
  self->worker = g_thread_new ("vlmcaption", gst_vlm_caption_worker, self);

  g_strfreev (labels);
  g_free (server);
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
  g_clear_pointer (&self->remote, gst_vlm_remote_free);
  release_model (self);
  g_strfreev (labels);
  g_free (server);
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
  gst_vlm_caption_flush_queues_locked (self);
  gst_vlm_caption_wake_locked (self);
  g_mutex_unlock (&self->lock);

  gst_vlm_caption_cancel_inference (self);
  if (self->worker)
    g_thread_join (self->worker);
  self->worker = NULL;

  gst_vlm_sampler_reset (&self->sampler);
  gst_vlm_caption_clear_held (self);
  gst_vlm_cc608_clear (&self->cc);
  g_clear_pointer (&self->tag_labels, g_strfreev);
  g_clear_pointer (&self->stream_prompt, g_free);
  self->labels_warned = FALSE;
  g_clear_pointer (&self->remote, gst_vlm_remote_free);
  release_model (self);
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
      gst_vlm_caption_wake_locked (self);
      g_mutex_unlock (&self->lock);
      gst_vlm_caption_cancel_inference (self);
      break;
    default:
      break;
  }
  return GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
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
  g_free (self->stream_prompt);
  g_free (self->server);
  g_free (self->api_key_env);
  g_free (self->server_model);
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
  self->scheduler = DEFAULT_PROP_SCHEDULER;
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
  self->alignment = DEFAULT_PROP_ALIGNMENT;
  self->closed_captions = DEFAULT_PROP_CLOSED_CAPTIONS;
  gst_vlm_cc608_init (&self->cc, GST_VLM_CC_NONE);
  self->server = g_strdup (DEFAULT_PROP_SERVER);
  self->api_key_env = g_strdup (DEFAULT_PROP_API_KEY_ENV);
  self->server_model = g_strdup (DEFAULT_PROP_SERVER_MODEL);
  self->server_timeout = DEFAULT_PROP_SERVER_TIMEOUT;
  self->server_retries = DEFAULT_PROP_SERVER_RETRIES;
  self->server_stream = DEFAULT_PROP_SERVER_STREAM;
  self->jpeg_quality = DEFAULT_PROP_JPEG_QUALITY;
  g_queue_init (&self->held);

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
          "plain captioning prompt; Florence-2 takes its task tokens "
          "(<CAPTION>, <DETAILED_CAPTION>, <MORE_DETAILED_CAPTION>, <OCR>). "
          "{start}, {end}, {duration} (s), {frames} "
          "and {labels} are filled in per clip; a vlmcaption-prompt event "
          "overrides it for one stream. Applies from the next clip",
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
          "top_k, top_p, repetition_penalty, seed, stop_strings, "
          "no_repeat_ngram_size, forced_bos_token_id, forced_eos_token_id); "
          "max-new-tokens and "
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
  g_object_class_install_property (gobject_class, PROP_SCHEDULER,
      g_param_spec_enum ("scheduler", "Scheduler",
          "With model-instance-id: shared runs the forward passes of every "
          "element of that id on one inference thread, the decode steps of "
          "their captions as one batch (each element keeps its own prompt, "
          "generation settings, drop policy and latency); private gives "
          "each element its own inference on its own thread, contending for "
          "the cores. Without model-instance-id the model is private anyway",
          GST_TYPE_VLM_CAPTION_SCHEDULER, DEFAULT_PROP_SCHEDULER,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_SCHEDULER_STATS,
      g_param_spec_boxed ("scheduler-stats", "Scheduler stats",
          "What the shared scheduler ran for all its elements since it was "
          "made: a vlmcaption-scheduler structure with steps, step-captions, "
          "step-rows, max-step-captions, mean-batch (captions per decode "
          "step), encodes, encode-batches, prefills; NULL when the element "
          "has no shared scheduler or is stopped", GST_TYPE_STRUCTURE,
          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
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
          "model was trained with (8 with a server)", 0, 256, DEFAULT_PROP_FRAMES_PER_CLIP,
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
  g_object_class_install_property (gobject_class, PROP_ALIGNMENT,
      g_param_spec_enum ("alignment", "Alignment",
          "How the video waits for its captions. aligned: each caption leaves "
          "text_src before the frames it describes and its meta rides on the "
          "first of them, so textoverlay needs no queue; the element holds "
          "(references to) the video for up to the latency it reports live, "
          "until the clip is captioned otherwise (at most queue-size + 2 clip "
          "spans). immediate: video passes at once, the meta rides on the "
          "first buffer after the caption is ready",
          GST_TYPE_VLM_CAPTION_ALIGNMENT, DEFAULT_PROP_ALIGNMENT,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_CLOSED_CAPTIONS,
      g_param_spec_enum ("closed-captions", "Closed captions",
          "Also send each caption as CEA-608 closed captions (CC1, field 1) "
          "in a GstVideoCaptionMeta (s334-1a) on the video buffers, one byte "
          "pair per 1/29.97 s, for ccextractor, ccconverter, cccombiner and "
          "encoders that carry 608/708. With alignment=aligned a caption "
          "starts loading on the first frame of its clip",
          GST_TYPE_VLM_CAPTION_CLOSED_CAPTIONS, DEFAULT_PROP_CLOSED_CAPTIONS,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_DROPPED_CLIPS,
      g_param_spec_uint64 ("dropped-clips", "Dropped clips",
          "Clips left uncaptioned since the element started: dropped from "
          "a full queue, skipped past their deadline (live only), or whose "
          "inference failed. Captions + dropped-clips + late-captions = "
          "clips", 0, G_MAXUINT64, 0,
          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (gobject_class, PROP_LATE_CAPTIONS,
      g_param_spec_uint64 ("late-captions", "Late captions",
          "Captions that came after their text_src deadline (live only): "
          "text_src had a GAP in their place; they are still posted and "
          "signalled, each with a vlmcaption-late message", 0, G_MAXUINT64, 0,
          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (gobject_class, PROP_SERVER,
      g_param_spec_string ("server", "Server",
          "URL of an OpenAI-compatible endpoint (http(s)://host:port, with or "
          "without /v1): each clip's frames go as JPEG data URLs with the "
          "prompt to /v1/chat/completions and the answer is the caption; no "
          "local model is loaded (model, precision, backend, n-threads, "
          "num-beams and labels do not apply). NULL: caption in-process",
          DEFAULT_PROP_SERVER,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_API_KEY_ENV,
      g_param_spec_string ("api-key-env", "API key variable",
          "Name of the environment variable that holds the server's API key, "
          "sent as \"Authorization: Bearer\" (the key itself is read at "
          "start and never stored in a property or logged); NULL: no key",
          DEFAULT_PROP_API_KEY_ENV,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_SERVER_MODEL,
      g_param_spec_string ("server-model", "Server model",
          "Model name the requests ask the server for (vLLM's served model "
          "name, vlm-server's --served-model-name); NULL: no \"model\" in "
          "the request (llama.cpp's server and vlm-server serve their one "
          "model)",
          DEFAULT_PROP_SERVER_MODEL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_SERVER_TIMEOUT,
      g_param_spec_uint64 ("server-timeout", "Server timeout",
          "Longest a request may take, retries and reading the answer "
          "included, in nanoseconds; past it the clip counts as dropped "
          "(reason failed)", GST_MSECOND, G_MAXUINT64,
          DEFAULT_PROP_SERVER_TIMEOUT,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_SERVER_RETRIES,
      g_param_spec_uint ("server-retries", "Server retries",
          "Extra attempts of a request after a refused or dropped connection, "
          "429 or 5xx (within server-timeout, waiting 100 ms, 200 ms, ... "
          "between)", 0, 10, DEFAULT_PROP_SERVER_RETRIES,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_SERVER_STREAM,
      g_param_spec_boolean ("server-stream", "Server stream",
          "Ask the server for server-sent events (\"stream\": true) and join "
          "their deltas; the caption still goes out whole",
          DEFAULT_PROP_SERVER_STREAM,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_JPEG_QUALITY,
      g_param_spec_uint ("jpeg-quality", "JPEG quality",
          "Quality of the JPEG frames sent to the server (libjpeg-turbo, "
          "4:2:0)", 1, 100, DEFAULT_PROP_JPEG_QUALITY,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));

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
  gst_vlm_caption_signals[GST_VLM_CAPTION_SIGNAL_CAPTION] =
      g_signal_new ("caption",
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
  trans_class->generate_output = gst_vlm_caption_generate_output;
  trans_class->sink_event = gst_vlm_caption_sink_event;
  trans_class->src_event = gst_vlm_caption_src_event;
  trans_class->query = gst_vlm_caption_query;

  gst_type_mark_as_plugin_api (GST_TYPE_VLM_CAPTION_SCHEDULER, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_VLM_CAPTION_DROP_POLICY, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_VLM_CAPTION_ALIGNMENT, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_VLM_CAPTION_CLOSED_CAPTIONS, 0);
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
