/* gstvlmcaption.h — the vlmcaption element, shared by its files.
 *
 * The element is split by thread role, each file touching the state its
 * thread owns (the struct below says which field belongs to whom):
 *
 *   gstvlmcaption.c  the GObject: properties, start/stop, class, plugin
 *   gstvlmstream.c   the streaming thread: sampling, sink events, queries
 *   gstvlmworker.c   the inference thread: frames -> caption or tags
 *   gstvlmtextsrc.c  the text_src task: queue order, GAPs, deadlines
 *   gstvlmtext*.c    the text formats, one file per family (gstvlmtext.h)
 *
 * Not installed: applications read captions through vlmcaptionmeta.h. */
#ifndef __GST_VLM_CAPTION_H__
#define __GST_VLM_CAPTION_H__

#include <gst/gst.h>
#include <gst/base/gstbasetransform.h>
#include <gst/video/video.h>
#include <vlm/vlm.h>

#include "gstvlmcc608.h"
#include "gstvlmremote.h"
#include "gstvlmsampler.h"
#include "gstvlmtext.h"

G_BEGIN_DECLS

#define GST_TYPE_VLM_CAPTION (gst_vlm_caption_get_type ())
G_DECLARE_FINAL_TYPE (GstVlmCaption, gst_vlm_caption, GST, VLM_CAPTION,
    GstBaseTransform)

typedef enum {
  GST_VLM_CAPTION_ALIGNED,
  GST_VLM_CAPTION_IMMEDIATE,
} GstVlmCaptionAlignment;

typedef enum {
  GST_VLM_CAPTION_SCHEDULER_SHARED,
  GST_VLM_CAPTION_SCHEDULER_PRIVATE,
} GstVlmCaptionScheduler;

typedef enum {
  GST_VLM_CAPTION_DROP_OLDEST,
  GST_VLM_CAPTION_DROP_NEWEST,
  GST_VLM_CAPTION_BLOCK,
} GstVlmCaptionDropPolicy;

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
  GstVlmCaptionScheduler scheduler;
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
  GstVlmCaptionAlignment alignment;
  GstVlmCcMode closed_captions;
  gchar *server;                /* remote backend: endpoint URL; NULL: local */
  gchar *api_key_env;           /* name of the variable holding the key */
  gchar *server_model;
  GstClockTime server_timeout;
  guint server_retries;
  gboolean server_stream;
  guint jpeg_quality;
  gboolean labels_changed;      /* the worker must split labels anew */
  guint32 last_seek_seqnum;
  gboolean generation_config_warned;   /* a bad value was reported */

  /* set in start(), read-only until stop() */
  GstVlmRemote *remote;         /* the remote backend; NULL: a local model */
  VlmModel *model;              /* NULL with remote */
  gchar *model_instance;        /* the instance id the model was taken with */
  VlmBatcher *batcher;          /* the instance's shared scheduler; NULL: the
                                 * session runs on the worker thread */
  VlmSession *session;
  GstClockTime clip_span;       /* clip duration as configured at start */
  GstClockTime clip_stride;
  gboolean can_generate;        /* vlm_model_can_generate */
  gboolean can_tag;             /* vlm_model_can_tag */
  gboolean aligned;             /* alignment=aligned: video waits for text */

  /* worker thread only, until stop() joined it */
  gchar **tag_labels;           /* labels split, kept while they hold */
  gboolean labels_warned;       /* said that the model ignores tag_labels */

  /* streaming thread only */
  GstVideoInfo vinfo;
  GstVlmSampler sampler;
  gboolean latency_known;
  GQueue held;                  /* GstVlmHeld: video waiting for its text */
  gchar *stream_prompt;         /* from a vlmcaption-prompt event; NULL: none */
  GstVlmCc608 cc;               /* closed captions for the video meta */

  /* text_src task only */
  GstVlmTextWriter text_writer;
  gboolean text_caps_set;
  gboolean text_preroll_gap;    /* a GAP follows the next segment */
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
  GList *pending_metas;         /* GstVlmPendingMeta, newest first */
  GstClockTime text_done_rt;    /* text_src went out up to this running time */
  guint64 dropped;              /* clips that got no caption */
  guint64 late;                 /* captions that came past their deadline */
  GstVlmClip *inferring;        /* the worker's clip, until it is counted */
  gboolean eos_drop;            /* live EOS went out: the late clip in
                                 * inference is cancelled and dropped */
  GThread *worker;
  GCancellable *request_cancel; /* the remote request in flight, or NULL */
};

GST_ELEMENT_REGISTER_DECLARE (vlmcaption);

/* ---------------------------------------------------------------- shared */

GST_DEBUG_CATEGORY_EXTERN (gst_vlm_caption_debug);

enum
{
  GST_VLM_CAPTION_SIGNAL_CAPTION,
  GST_VLM_CAPTION_LAST_SIGNAL
};
extern guint gst_vlm_caption_signals[GST_VLM_CAPTION_LAST_SIGNAL];

/* One entry of the text_src queue: an event to forward, or a clip whose
 * caption (or GAP) goes out once it is resolved. Once it went out, the text
 * is complete up to `done_rt` (running time; NONE: no change), which lets
 * held video go in aligned mode. */
typedef struct
{
  GstEvent *event;
  GstVlmClip *clip;
  GstClockTime done_rt;
} GstVlmOutItem;

/* A caption for the video: its meta structure and the running time its
 * clip starts at (aligned mode puts it on the first frame from there). */
typedef struct
{
  GstStructure *s;
  GstClockTime start_rt;
} GstVlmPendingMeta;

/* A held video buffer, or a serialized event held in its place. */
typedef struct
{
  GstBuffer *buffer;
  GstEvent *event;
  GstClockTime rt;              /* where it starts; NONE: goes at once */
} GstVlmHeld;

GstVlmOutItem *gst_vlm_out_item_new (GstEvent * event, GstVlmClip * clip);
void gst_vlm_pending_meta_free (GstVlmPendingMeta * meta);
void gst_vlm_out_item_free (GstVlmOutItem * item);

/* gstvlmcaption.c: settings read under the object lock. */
gboolean gst_vlm_caption_build_gen_params (GstVlmCaption * self,
    VlmGenParams * params, GError ** error);
gchar **gst_vlm_caption_split_labels (const gchar * text);

/* gstvlmstream.c */
/* Wakes every thread waiting on `cond` or on the text task's clock.
 * Called with the lock held. */
void gst_vlm_caption_wake_locked (GstVlmCaption * self);
/* Empties the work and text queues. Called with the lock held. */
void gst_vlm_caption_flush_queues_locked (GstVlmCaption * self);
GstMessage *gst_vlm_caption_drop_message_new (GstVlmCaption * self,
    GstVlmClip * clip, const gchar * reason);
/* Forwards a seek from either source pad upstream, once per seqnum. */
gboolean gst_vlm_caption_forward_seek (GstVlmCaption * self, GstEvent * event);
gboolean gst_vlm_caption_latency_query (GstVlmCaption * self,
    GstQuery * query);
GstFlowReturn gst_vlm_caption_transform_ip (GstBaseTransform * trans,
    GstBuffer * buffer);
gboolean gst_vlm_caption_set_caps (GstBaseTransform * trans, GstCaps * incaps,
    GstCaps * outcaps);
gboolean gst_vlm_caption_sink_event (GstBaseTransform * trans,
    GstEvent * event);
gboolean gst_vlm_caption_src_event (GstBaseTransform * trans,
    GstEvent * event);
gboolean gst_vlm_caption_query (GstBaseTransform * trans,
    GstPadDirection direction, GstQuery * query);
GstFlowReturn gst_vlm_caption_generate_output (GstBaseTransform * trans,
    GstBuffer ** outbuf);
/* Drops the held video (flush, stop). Streaming thread or stopped pads. */
void gst_vlm_caption_clear_held (GstVlmCaption * self);

/* gstvlmworker.c: the inference thread's body (data: the element). */
gpointer gst_vlm_caption_worker (gpointer data);
/* Makes the caption in progress (local or remote) stop soon. Any thread;
 * takes the lock. */
void gst_vlm_caption_cancel_inference (GstVlmCaption * self);

/* gstvlmtextsrc.c */
void gst_vlm_caption_text_loop (GstVlmCaption * self);
gboolean gst_vlm_caption_text_activate_mode (GstPad * pad, GstObject * parent,
    GstPadMode mode, gboolean active);
gboolean gst_vlm_caption_text_event (GstPad * pad, GstObject * parent,
    GstEvent * event);
gboolean gst_vlm_caption_text_query (GstPad * pad, GstObject * parent,
    GstQuery * query);

G_END_DECLS

#endif /* __GST_VLM_CAPTION_H__ */
