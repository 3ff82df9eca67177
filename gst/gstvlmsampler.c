/* gstvlmsampler.c — picks the frames of each clip by running time. */
#include "gstvlmsampler.h"

/* ---------------------------------------------------------------- clips */

static void
gst_vlm_clip_clear (gpointer data)
{
  GstVlmClip *clip = data;
  guint i;

  for (i = 0; i < clip->n_filled; i++)
    gst_buffer_unref (clip->slots[i].buffer);
  g_free (clip->slots);
  if (clip->caption)
    gst_structure_free (clip->caption);
  g_free (clip->prompt);
}

static GstVlmClip *
gst_vlm_clip_new (GstClockTime start, GstClockTime duration, guint n_slots)
{
  GstVlmClip *clip = g_atomic_rc_box_new0 (GstVlmClip);

  clip->start_rt = start;
  clip->end_rt = gst_vlm_clock_add (start, duration);
  clip->n_slots = n_slots;
  clip->slots = g_new0 (GstVlmFrame, n_slots);
  clip->pts = clip->end_pts = GST_CLOCK_TIME_NONE;
  clip->text_pts = clip->text_duration = GST_CLOCK_TIME_NONE;
  clip->deadline_rt = GST_CLOCK_TIME_NONE;
  return clip;
}

GstVlmClip *
gst_vlm_clip_ref (GstVlmClip * clip)
{
  return g_atomic_rc_box_acquire (clip);
}

void
gst_vlm_clip_unref (GstVlmClip * clip)
{
  if (clip)
    g_atomic_rc_box_release_full (clip, gst_vlm_clip_clear);
}

/* Instant of slot `i`: start + i * duration / n_slots. */
static GstClockTime
slot_time (const GstVlmClip * clip, guint i)
{
  return clip->start_rt + gst_util_uint64_scale (clip->end_rt - clip->start_rt,
      i, clip->n_slots);
}

/* The pixels are copied rather than the buffer referenced: holding upstream's
 * buffers for a clip span would starve fixed-size pools (v4l2src) and make
 * every downstream in-place writer (textoverlay) copy each frame. */
static GstBuffer *
copy_frame (GstBuffer * buffer, const GstVideoInfo * info)
{
  GstVideoFrame src, dst;
  GstBuffer *copy;

  if (!gst_video_frame_map (&src, (GstVideoInfo *) info, buffer, GST_MAP_READ))
    return NULL;
  copy = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (info), NULL);
  gst_video_frame_map (&dst, (GstVideoInfo *) info, copy, GST_MAP_WRITE);
  gst_video_frame_copy (&dst, &src);
  gst_video_frame_unmap (&dst);
  gst_video_frame_unmap (&src);
  return copy;
}

/* ---------------------------------------------------------------- sampler */

void
gst_vlm_sampler_init (GstVlmSampler * sampler, guint n_frames,
    GstClockTime duration, GstClockTime stride)
{
  g_return_if_fail (n_frames > 0 && duration > 0 && stride > 0);

  sampler->n_frames = n_frames;
  sampler->duration = duration;
  sampler->stride = stride;
  sampler->started = FALSE;
  sampler->reached = 0;
  g_queue_init (&sampler->open);
}

void
gst_vlm_sampler_reset (GstVlmSampler * sampler)
{
  g_queue_clear_full (&sampler->open, (GDestroyNotify) gst_vlm_clip_unref);
  sampler->started = FALSE;
  sampler->reached = 0;
}

/* Moves open clips that are full or that ended by `rt` to `done`, in order. */
static void
close_clips (GstVlmSampler * sampler, GstClockTime rt, GQueue * done)
{
  GList *l = sampler->open.head;

  while (l) {
    GstVlmClip *clip = l->data;
    GList *next = l->next;

    if (clip->n_filled == clip->n_slots || rt >= clip->end_rt) {
      g_queue_delete_link (&sampler->open, l);
      g_queue_push_tail (done, clip);
    }
    l = next;
  }
}

void
gst_vlm_sampler_push (GstVlmSampler * sampler, GstClockTime rt,
    GstClockTime end, GstBuffer * buffer, const GstVideoInfo * info,
    GQueue * done)
{
  GstBuffer *copy = NULL;
  GList *l;

  close_clips (sampler, rt, done);
  sampler->reached = MAX (sampler->reached,
      GST_CLOCK_TIME_IS_VALID (end) && end > rt ? end : rt);

  if (!sampler->started) {
    sampler->next_start = rt;
    sampler->started = TRUE;
  }
  /* After a hole longer than a clip, jump to the first clip still running
   * at `rt` instead of opening clips that can never see a frame. The last
   * grid point at or before rt - duration cannot overflow; the step past it
   * saturates. */
  if (gst_vlm_clock_add (sampler->next_start, sampler->duration) <= rt) {
    GstClockTime behind = rt - sampler->duration - sampler->next_start;

    sampler->next_start = gst_vlm_clock_add (sampler->next_start +
        behind / sampler->stride * sampler->stride, sampler->stride);
  }
  /* rt is valid, so a saturated next_start (NONE) ends the loop */
  while (sampler->next_start <= rt) {
    g_queue_push_tail (&sampler->open, gst_vlm_clip_new (sampler->next_start,
            sampler->duration, sampler->n_frames));
    sampler->next_start = gst_vlm_clock_add (sampler->next_start,
        sampler->stride);
  }

  for (l = sampler->open.head; l; l = l->next) {
    GstVlmClip *clip = l->data;

    while (clip->n_filled < clip->n_slots
        && slot_time (clip, clip->n_filled) <= rt) {
      if (!copy && !(copy = copy_frame (buffer, info)))
        goto unmappable;
      clip->slots[clip->n_filled].buffer = gst_buffer_ref (copy);
      clip->slots[clip->n_filled].info = *info;
      clip->n_filled++;
    }
  }
  gst_clear_buffer (&copy);

unmappable:
  close_clips (sampler, rt, done);
}

void
gst_vlm_sampler_advance (GstVlmSampler * sampler, GstClockTime rt,
    GQueue * done)
{
  sampler->reached = MAX (sampler->reached, rt);
  close_clips (sampler, rt, done);
}

void
gst_vlm_sampler_drain (GstVlmSampler * sampler, GQueue * done)
{
  GstVlmClip *clip;

  while ((clip = g_queue_pop_head (&sampler->open))) {
    /* a clip opens at a frame, so it reached past its start */
    clip->end_rt = MIN (clip->end_rt, MAX (sampler->reached, clip->start_rt));
    g_queue_push_tail (done, clip);
  }
  sampler->started = FALSE;
}
