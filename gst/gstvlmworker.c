/* gstvlmworker.c — the inference thread: takes clips from the work queue in
 * order, maps their frames for the engine, captions or tags them, and
 * publishes the result (meta for the next video buffer, signal, bus
 * message, the clip's text for text_src). */
#include <string.h>

#include "gstvlmcaption.h"

#define GST_CAT_DEFAULT gst_vlm_caption_debug

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

/* The prompt for `clip`: the stream's (vlmcaption-prompt event) or the
 * property's, with {start}, {end}, {duration} (seconds, 2 decimals, from
 * the clip's PTS), {frames} and {labels} (the labels property, ", "
 * between) filled in. NULL for the model's plain prompt. g_free. */
static gchar *
expand_prompt (GstVlmCaption * self, GstVlmClip * clip, guint n_frames)
{
  gchar *prompt, **labels;
  GString *out;
  const gchar *p;

  GST_OBJECT_LOCK (self);
  prompt = g_strdup (clip->prompt ? clip->prompt : self->prompt);
  labels = gst_vlm_caption_split_labels (self->labels);
  GST_OBJECT_UNLOCK (self);
  if (!prompt || !strchr (prompt, '{')) {
    g_strfreev (labels);
    return prompt;
  }

  out = g_string_new (NULL);
  for (p = prompt; *p; p++) {
    if (g_str_has_prefix (p, "{start}")) {
      g_string_append_printf (out, "%.2f", (gdouble) clip->pts / GST_SECOND);
      p += strlen ("{start}") - 1;
    } else if (g_str_has_prefix (p, "{end}")) {
      g_string_append_printf (out, "%.2f", (gdouble) clip->end_pts / GST_SECOND);
      p += strlen ("{end}") - 1;
    } else if (g_str_has_prefix (p, "{duration}")) {
      g_string_append_printf (out, "%.2f",
          (gdouble) (clip->end_pts - clip->pts) / GST_SECOND);
      p += strlen ("{duration}") - 1;
    } else if (g_str_has_prefix (p, "{frames}")) {
      g_string_append_printf (out, "%u", n_frames);
      p += strlen ("{frames}") - 1;
    } else if (g_str_has_prefix (p, "{labels}")) {
      gchar *joined = g_strjoinv (", ", labels);

      g_string_append (out, joined);
      g_free (joined);
      p += strlen ("{labels}") - 1;
    } else {
      g_string_append_c (out, *p);
    }
  }
  g_strfreev (labels);
  g_free (prompt);
  return g_string_free (out, FALSE);
}

/* The message structure of a caption. */
static GstStructure *
caption_structure (GstVlmClip * clip, const gchar * text, const gchar * model,
    const gchar * prompt, gint n_tokens, gdouble ms)
{
  return gst_structure_new ("vlmcaption",
      "text", G_TYPE_STRING, text ? text : "",
      "start", G_TYPE_UINT64, clip->pts,
      "end", G_TYPE_UINT64, clip->end_pts,
      "model", G_TYPE_STRING, model,
      "prompt", G_TYPE_STRING, prompt ? prompt : "",
      "n-tokens", G_TYPE_INT, n_tokens, "inference-ms", G_TYPE_DOUBLE, ms, NULL);
}

/* A bad generation-config is said once per value set (start() refused it
 * already when it was there from the start). Takes `error`. */
static void
warn_generation_config (GstVlmCaption * self, GError * error)
{
  gboolean warn;

  GST_OBJECT_LOCK (self);
  warn = !self->generation_config_warned;
  self->generation_config_warned = TRUE;
  GST_OBJECT_UNLOCK (self);
  if (warn)
    GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
        ("Ignoring generation-config: %s", error->message), (NULL));
  g_error_free (error);
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
  gchar *prompt;

  prompt = expand_prompt (self, clip, n_frames);
  if (!gst_vlm_caption_build_gen_params (self, &params, &config_error))
    warn_generation_config (self, config_error);

  if (vlm_session_caption (self->session, frames, n_frames, prompt, &params,
          on_token, &ctx, &caption, error))
    s = caption_structure (clip, caption.text, vlm_model_get_name
        (self->model), prompt, caption.n_tokens, caption.total_ms);
  vlm_caption_clear (&caption);
  g_free (prompt);
  return s;
}

/* Worker thread: the caption of `n_frames` mapped frames of `clip` from the
 * server, or NULL with `error` set (VLM_ERROR_CANCELLED when a flush or
 * stop cut the request). The request is cancellable from other threads
 * through request_cancel, registered under the lock with the same check of
 * the epoch that a flush bumps, so a flush cannot slip in between. */
static GstStructure *
remote_frames (GstVlmCaption * self, GstVlmClip * clip,
    const GstVideoFrame * vframes, guint n_frames, GError ** error)
{
  GstVlmRemoteReply reply = { 0 };
  GstVlmRemoteGen gen;
  GCancellable *cancel = g_cancellable_new ();
  GError *request_error = NULL, *config_error = NULL;
  GstStructure *s = NULL;
  gint64 started = g_get_monotonic_time ();
  gchar *prompt, *config;
  guint max_new_tokens;
  gboolean stale;

  prompt = expand_prompt (self, clip, n_frames);
  GST_OBJECT_LOCK (self);
  config = g_strdup (self->generation_config);
  max_new_tokens = self->max_new_tokens;
  GST_OBJECT_UNLOCK (self);
  if (!gst_vlm_remote_gen_parse (&gen, config, max_new_tokens, &config_error))
    warn_generation_config (self, config_error);

  g_mutex_lock (&self->lock);
  stale = self->quit || self->flushing || clip->epoch != self->epoch;
  if (!stale)
    self->request_cancel = cancel;
  g_mutex_unlock (&self->lock);

  if (!stale && gst_vlm_remote_caption (self->remote, vframes, n_frames,
          prompt, &gen, cancel, &reply, &request_error))
    s = caption_structure (clip, reply.text, reply.model, prompt,
        reply.n_tokens, (g_get_monotonic_time () - started) / 1000.0);

  g_mutex_lock (&self->lock);
  self->request_cancel = NULL;
  g_mutex_unlock (&self->lock);
  if (stale || g_error_matches (request_error, G_IO_ERROR,
          G_IO_ERROR_CANCELLED))
    g_set_error (error, VLM_ERROR, VLM_ERROR_CANCELLED, "cancelled");
  else if (request_error)
    g_propagate_error (error, g_steal_pointer (&request_error));
  g_clear_error (&request_error);
  gst_vlm_remote_reply_clear (&reply);
  g_object_unref (cancel);
  g_free (config);
  g_free (prompt);
  return s;
}

void
gst_vlm_caption_cancel_inference (GstVlmCaption * self)
{
  g_mutex_lock (&self->lock);
  if (self->request_cancel)
    g_cancellable_cancel (self->request_cancel);
  g_mutex_unlock (&self->lock);
  if (self->session)
    vlm_session_cancel (self->session);
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
  self->tag_labels = gst_vlm_caption_split_labels (labels);
  self->labels_warned = FALSE;
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

  s = caption_structure (clip, text->str, vlm_model_get_name (self->model),
      NULL, 0, (g_get_monotonic_time () - started) / 1000.0);
  gst_structure_take_value (s, "labels", &labels);
  gst_structure_take_value (s, "scores", &scores);
  gst_structure_take_value (s, "probs", &probs);
  g_string_free (text, TRUE);
  g_free (order);
  g_free (score);
  g_free (prob);
  return s;
}

/* Worker thread: sends to the server when there is one; else tags when
 * labels are set and the model scores them, or when it cannot caption;
 * captions otherwise. */
static GstStructure *
infer_frames (GstVlmCaption * self, GstVlmClip * clip,
    const GstVideoFrame * vframes, const VlmFrame * frames, guint n_frames,
    GError ** error)
{
  refresh_labels (self);
  if (!self->remote && ((self->tag_labels[0] && self->can_tag) ||
          !self->can_generate))
    return tag_frames (self, clip, frames, n_frames, error);

  /* a captioner without a text tower: say so once per label set */
  if (self->tag_labels[0] && !self->labels_warned) {
    if (self->remote)
      GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
          ("Ignoring labels: the server backend captions only"), (NULL));
    else
      GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
          ("Ignoring labels: %s (%s) does not score labels",
              vlm_model_get_name (self->model),
              vlm_model_get_architecture (self->model)), (NULL));
    self->labels_warned = TRUE;
  }
  if (self->remote)
    return remote_frames (self, clip, vframes, n_frames, error);
  return caption_frames (self, clip, frames, n_frames, error);
}

/* The element's running time now, or NONE without a clock. */
static GstClockTime
running_time_now (GstVlmCaption * self)
{
  GstClock *clock = gst_element_get_clock (GST_ELEMENT (self));
  GstClockTime now, base = gst_element_get_base_time (GST_ELEMENT (self));

  if (!clock)
    return GST_CLOCK_TIME_NONE;
  now = gst_clock_get_time (clock);
  gst_object_unref (clock);
  return now > base ? now - base : 0;
}

/* Worker thread: captions (or tags) one clip and publishes the result. A
 * caption whose text_src deadline passed during inference (the text task
 * made it LATE and sent a GAP) is still posted and signalled, and counted
 * in late-captions with a vlmcaption-late message; a failed clip counts as
 * dropped. */
static void
caption_clip (GstVlmCaption * self, GstVlmClip * clip)
{
  GstVideoFrame *vframes = g_new0 (GstVideoFrame, clip->n_filled);
  VlmFrame *frames = g_new0 (VlmFrame, clip->n_filled);
  GstStructure *s = NULL;
  GstMessage *message = NULL;
  GError *error = NULL;
  GstClockTime lateness;
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
    s = infer_frames (self, clip, vframes, frames, n_mapped, &error);
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
  if (!stale && s) {
    GstVlmPendingMeta *meta = g_new (GstVlmPendingMeta, 1);

    meta->s = gst_structure_copy (s);
    meta->start_rt = clip->start_rt;
    self->pending_metas = g_list_prepend (self->pending_metas, meta);
  }
  g_mutex_unlock (&self->lock);
  if (stale) {
    GST_DEBUG_OBJECT (self, "discarding the caption of a flushed clip");
    goto done;
  }
  if (s) {
    GST_INFO_OBJECT (self, "%" GST_TIME_FORMAT ": \"%s\" (%.1f ms)",
        GST_TIME_ARGS (clip->pts), text, ms);
    g_signal_emit (self,
        gst_vlm_caption_signals[GST_VLM_CAPTION_SIGNAL_CAPTION], 0, text,
        clip->pts,
        clip->end_pts);
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_element (GST_OBJECT (self), gst_structure_copy (s)));
  } else if (!g_error_matches (error, VLM_ERROR, VLM_ERROR_CANCELLED)) {
    GST_ELEMENT_WARNING (self, STREAM, FAILED,
        ("Could not caption the clip at %" GST_TIME_FORMAT ": %s",
            GST_TIME_ARGS (clip->pts), error ? error->message : "no frames"),
        (NULL));
  }

  lateness = running_time_now (self);
  g_mutex_lock (&self->lock);
  if (clip->epoch == self->epoch && !self->flushing) {
    /* every clip ends as a caption, a late caption, or a dropped clip */
    if (!s && !g_error_matches (error, VLM_ERROR, VLM_ERROR_CANCELLED)) {
      self->dropped++;
      message = gst_vlm_caption_drop_message_new (self, clip, "failed");
    } else if (!s && self->eos_drop && clip->state == GST_VLM_CLIP_LATE) {
      /* cancelled at live EOS: its GAP went out, nothing waits for it */
      self->dropped++;
      message = gst_vlm_caption_drop_message_new (self, clip, "late");
    } else if (s && clip->state == GST_VLM_CLIP_LATE) {
      self->late++;
      lateness = GST_CLOCK_TIME_IS_VALID (lateness)
          && lateness > clip->deadline_rt ? lateness - clip->deadline_rt : 0;
      message = gst_message_new_element (GST_OBJECT (self),
          gst_structure_new ("vlmcaption-late",
              "late-captions", G_TYPE_UINT64, self->late,
              "start", G_TYPE_UINT64, clip->pts,
              "end", G_TYPE_UINT64, clip->end_pts,
              "lateness", G_TYPE_UINT64, lateness,
              "text", G_TYPE_STRING, text, NULL));
    }
    if (clip->state == GST_VLM_CLIP_QUEUED) {
      clip->state = s ? GST_VLM_CLIP_DONE : GST_VLM_CLIP_FAILED;
      clip->caption = s ? gst_structure_copy (s) : NULL;
    }
    gst_vlm_caption_wake_locked (self);
  }
  g_mutex_unlock (&self->lock);
  if (message) {
    GST_DEBUG_OBJECT (self, "%" GST_PTR_FORMAT,
        gst_message_get_structure (message));
    gst_element_post_message (GST_ELEMENT (self), message);
  }

done:
  if (s)
    gst_structure_free (s);
  g_clear_error (&error);
  g_free (frames);
  g_free (vframes);
}

/* The inference thread: owns the session, takes clips in order. */
gpointer
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
    gst_vlm_caption_wake_locked (self);

    /* Its text already went out as a GAP: the caption would be too late. */
    if (clip->state == GST_VLM_CLIP_LATE) {
      GstMessage *message;

      self->dropped++;
      message = gst_vlm_caption_drop_message_new (self, clip, "late");
      g_mutex_unlock (&self->lock);
      GST_DEBUG_OBJECT (self, "skipping clip at %" GST_TIME_FORMAT
          ", past its deadline", GST_TIME_ARGS (clip->pts));
      gst_element_post_message (GST_ELEMENT (self), message);
    } else {
      self->inferring = clip;
      g_mutex_unlock (&self->lock);
      caption_clip (self, clip);
      g_mutex_lock (&self->lock);
      self->inferring = NULL;
      gst_vlm_caption_wake_locked (self);
      g_mutex_unlock (&self->lock);
    }
    gst_vlm_clip_unref (clip);
    g_mutex_lock (&self->lock);
  }
  g_mutex_unlock (&self->lock);
  return NULL;
}
