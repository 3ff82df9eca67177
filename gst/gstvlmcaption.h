/* gstvlmcaption.h — the vlmcaption element. */
#ifndef __GST_VLM_CAPTION_H__
#define __GST_VLM_CAPTION_H__

#include <gst/gst.h>
#include <gst/base/gstbasetransform.h>
#include <gst/video/video.h>
#include <vlm/vlm.h>

#include "gstvlmsampler.h"

G_BEGIN_DECLS

#define GST_TYPE_VLM_CAPTION (gst_vlm_caption_get_type ())
G_DECLARE_FINAL_TYPE (GstVlmCaption, gst_vlm_caption, GST, VLM_CAPTION,
    GstBaseTransform)

typedef enum {
  GST_VLM_CAPTION_DROP_OLDEST,
  GST_VLM_CAPTION_DROP_NEWEST,
  GST_VLM_CAPTION_BLOCK,
} GstVlmCaptionDropPolicy;

typedef enum {
  GST_VLM_CAPTION_TEXT_UTF8,
  GST_VLM_CAPTION_TEXT_PANGO,
  GST_VLM_CAPTION_TEXT_VTT,
  GST_VLM_CAPTION_TEXT_SRT,
} GstVlmCaptionTextFormat;

struct _GstVlmCaption
{
  GstBaseTransform parent;

  GstPad *text_srcpad;

  /* properties, under the object lock */
  gchar *model_dir;
  gchar *prompt;
  guint max_new_tokens;
  guint num_beams;
  gchar *generation_config;
  gint n_threads;
  GstClockTime latency;
  gchar *model_instance_id;
  VlmPrecision precision;
  VlmBackend backend;
  guint frames_per_clip;
  GstClockTime clip_duration;
  GstClockTime caption_interval;
  GstClockTime overlap;
  GstVlmCaptionDropPolicy drop_policy;
  guint queue_size;
  gchar *labels;
  guint top_k;
  gboolean labels_changed;      /* the worker must split labels anew */
  guint32 last_seek_seqnum;
  gboolean generation_config_warned;   /* a bad value was reported */

  /* set in start(), read-only until stop() */
  VlmModel *model;
  gchar *model_instance;        /* the instance id the model was taken with */
  VlmSession *session;
  GstClockTime clip_span;       /* clip duration as configured at start */
  GstClockTime clip_stride;
  gboolean can_generate;        /* FALSE: the model only tags */

  /* worker thread only, until stop() joined it */
  gchar **tag_labels;           /* labels split, kept while they hold */
  gboolean tag_unsupported;     /* the model refused to score tag_labels */

  /* streaming thread only */
  GstVideoInfo vinfo;
  GstVlmSampler sampler;
  gboolean latency_known;

  /* text_src task only */
  GstVlmCaptionTextFormat text_format;
  gboolean text_caps_set;
  gboolean vtt_header_sent;
  gboolean text_preroll_gap;    /* a GAP follows the next segment */
  guint srt_index;
  GstSegment text_segment;
  GstClockTime text_position;

  /* everything below under `lock`; `cond` is broadcast on any change */
  GMutex lock;
  GCond cond;
  gboolean live;
  GstClockTime upstream_min;
  gboolean flushing;            /* the streaming side and the worker */
  gboolean text_flushing;       /* the text_src task */
  gboolean text_stopped;        /* the text_src task paused on an error */
  gboolean text_eos;            /* the text_src task pushed EOS */
  gboolean quit;                /* the worker must exit */
  guint64 epoch;                /* bumped by each flush */
  GQueue work;                  /* GstVlmClip waiting for the worker */
  GQueue out;                   /* OutItem, in stream order, for text_src */
  GstClockID text_clock_id;     /* the text_src task's deadline wait */
  GList *pending_metas;         /* GstStructure for the next video buffer */
  guint64 dropped;
  GThread *worker;
};

GST_ELEMENT_REGISTER_DECLARE (vlmcaption);

G_END_DECLS

#endif /* __GST_VLM_CAPTION_H__ */
