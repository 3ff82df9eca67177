/* gstvlmsampler.h — picks the frames of each clip by running time.
 *
 * A clip covers [start, start + duration) in running time and wants
 * `n_frames` frames, one per slot at start + i * duration / n_frames. A slot
 * takes the first frame at or after its instant (one frame may fill several
 * slots when frames are sparse); a clip closes when all its slots are filled
 * or when a frame (or a GAP) reaches its end. Clips start every `stride`, so
 * stride < duration makes them overlap and stride > duration leaves gaps.
 * Because slots are instants in running time, neither a variable frame rate
 * nor frames dropped upstream skew what a clip sees. Clips closed before
 * their end (EOS, a new segment) end where the video did: at the end of
 * the last frame or GAP seen.
 *
 * Used by the streaming thread only; no locking.
 */
#ifndef __GST_VLM_SAMPLER_H__
#define __GST_VLM_SAMPLER_H__

#include <gst/gst.h>
#include <gst/video/video.h>

G_BEGIN_DECLS

/* One sampled frame: a private copy of the pixels and their layout. */
typedef struct {
  GstBuffer *buffer;
  GstVideoInfo info;
} GstVlmFrame;

typedef enum {
  GST_VLM_CLIP_QUEUED,     /* waiting for, or in, inference */
  GST_VLM_CLIP_DONE,       /* captioned; text may be empty */
  GST_VLM_CLIP_DROPPED,    /* dropped by the queue policy */
  GST_VLM_CLIP_FAILED,     /* inference failed or was cancelled */
  GST_VLM_CLIP_LATE,       /* its text_src deadline passed before a caption */
} GstVlmClipState;

/* A clip, shared (reference counted, g_atomic_rc_box) between the work
 * queue and the text output queue. The sampler fills the frames; the element
 * fills the rest. Fields after `n_filled` are protected by the element's
 * lock once the clip is queued. */
typedef struct {
  GstClockTime start_rt, end_rt;  /* running time span it describes */
  guint n_slots, n_filled;
  GstVlmFrame *slots;             /* n_slots; filled slots are a prefix */

  guint64 epoch;                  /* flush generation it belongs to */
  GstClockTime pts, end_pts;      /* the span as buffer timestamps */
  GstClockTime text_pts, text_duration; /* where its caption sits on text_src */
  GstClockTime deadline_rt;       /* live: latest running time for its text */
  GstVlmClipState state;
  GstStructure *caption;          /* the caption message's fields, when DONE */
  gchar *prompt;                  /* the stream's prompt (vlmcaption-prompt
                                   * event) when it closed; NULL: the property */
} GstVlmClip;

/* a + b, or GST_CLOCK_TIME_NONE ("never") past the clock's range: a span
 * or interval near G_MAXUINT64 means a clip that never ends or no further
 * clip, not a sum that wraps round to an earlier time. */
static inline GstClockTime
gst_vlm_clock_add (GstClockTime a, GstClockTime b)
{
  return a < GST_CLOCK_TIME_NONE - b ? a + b : GST_CLOCK_TIME_NONE;
}

GstVlmClip *gst_vlm_clip_ref (GstVlmClip * clip);
void gst_vlm_clip_unref (GstVlmClip * clip);

typedef struct {
  guint n_frames;
  GstClockTime duration, stride;
  gboolean started;               /* the clip grid starts at the first frame */
  GstClockTime next_start;        /* running time of the next clip to open;
                                   * NONE: none will */
  GstClockTime reached;           /* end of the last frame or GAP seen */
  GQueue open;                    /* GstVlmClip, oldest first */
} GstVlmSampler;

void gst_vlm_sampler_init (GstVlmSampler * sampler, guint n_frames,
    GstClockTime duration, GstClockTime stride);
/* Forgets open clips and the clip grid (after a flush). */
void gst_vlm_sampler_reset (GstVlmSampler * sampler);

/* Takes the frame `buffer` (layout `info`) shown from running time `rt` to
 * `end` (NONE or <= rt: an instant): copies it into every open clip with a
 * slot due, opening clips as their start passes. Finished clips are
 * appended to `done` (transfer full). */
void gst_vlm_sampler_push (GstVlmSampler * sampler, GstClockTime rt,
    GstClockTime end, GstBuffer * buffer, const GstVideoInfo * info,
    GQueue * done);
/* Time reached `rt` without frames (a GAP): closes clips that ended. */
void gst_vlm_sampler_advance (GstVlmSampler * sampler, GstClockTime rt,
    GQueue * done);
/* Closes every open clip, full or not, ending it where the video reached
 * (EOS, a segment boundary). The clip grid starts again at the next frame,
 * as each source of a concat starts its own clips. */
void gst_vlm_sampler_drain (GstVlmSampler * sampler, GQueue * done);

G_END_DECLS

#endif /* __GST_VLM_SAMPLER_H__ */
