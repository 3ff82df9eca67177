/* test_element.c — GstHarness tests of the vlmcaption element.
 *
 * Runs against the plugin in the build tree with no system plugins: frames
 * are made here (solid colours, which the test-card model names), so every
 * caption checked is a real caption of the embedded model. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#include <glib/gstdio.h>
#include <gstvlmcaption/vlmcaptionmeta.h>
#include <json-glib/json-glib.h>

#include "subtitlecheck.h"

/* The engine itself, for the expected captions. */
#include "testutil.h"
#include "synth.h"
#include "tokenizer.h"

#define RED "a plain red screen"
#define BLUE "a plain blue screen"
#define FPS 30
#define FRAME_DURATION (GST_SECOND / FPS)
/* where the last frame pushed ends (next_frame counts them) */
#define LAST_FRAME_END(f) (((f).next_frame - 1) * GST_SECOND / FPS + FRAME_DURATION)

/* ---------------------------------------------------------------- helpers */

typedef struct
{
  GstElement *element;
  GstHarness *video;            /* sink and src */
  GstHarness *text;             /* text_src */
  GstBus *bus;
  guint64 next_frame;           /* frame counter for timestamps */
} Fixture;

/* `props` like "clip-duration=500000000 prompt=x": set before start. */
static void
fixture_init (Fixture * f, const gchar * text_caps, gboolean live,
    const gchar * props)
{
  gchar **kv, **p;

  memset (f, 0, sizeof (*f));
  f->element = gst_element_factory_make ("vlmcaption", NULL);
  fail_unless (f->element != NULL, "vlmcaption not found: GST_PLUGIN_PATH?");
  kv = g_strsplit (props ? props : "", " ", -1);
  for (p = kv; *p; p++)
    if (**p) {
      gchar **pair = g_strsplit (*p, "=", 2);
      gst_util_set_object_arg (G_OBJECT (f->element), pair[0], pair[1]);
      g_strfreev (pair);
    }
  g_strfreev (kv);
  f->bus = gst_bus_new ();
  gst_element_set_bus (f->element, f->bus);

  f->video = gst_harness_new_with_element (f->element, "sink", "src");
  f->text = gst_harness_new_with_element (f->element, NULL, "text_src");
  gst_harness_set_sink_caps_str (f->text, text_caps);
  gst_harness_set_live (f->video, live);
  gst_harness_set_upstream_latency (f->video, FRAME_DURATION);
}

/* The element stops first: its text task negotiates with f->text on a
 * thread of its own, and a harness frees the caps it answers caps queries
 * with while tearing down. */
static void
fixture_clear (Fixture * f)
{
  fail_unless_equals_int (gst_element_set_state (f->element, GST_STATE_NULL),
      GST_STATE_CHANGE_SUCCESS);
  gst_harness_teardown (f->text);
  gst_harness_teardown (f->video);
  gst_element_set_bus (f->element, NULL);
  gst_object_unref (f->bus);
  gst_object_unref (f->element);
}

static void
set_video_caps (Fixture * f, const gchar * format, gint width, gint height)
{
  gchar *caps = g_strdup_printf ("video/x-raw,format=%s,width=%d,height=%d,"
      "framerate=%d/1", format, width, height, FPS);

  gst_harness_set_src_caps_str (f->video, caps);
  g_free (caps);
}

/* A frame of one colour in the negotiated format, made with the video
 * library's converter from RGB. */
static GstBuffer *
solid_frame (const GstVideoInfo * info, guint8 r, guint8 g, guint8 b)
{
  GstVideoInfo rgb_info;
  GstVideoFrame src, dst;
  GstVideoConverter *convert;
  GstBuffer *rgb, *out;
  gsize i;

  gst_video_info_set_format (&rgb_info, GST_VIDEO_FORMAT_RGB,
      GST_VIDEO_INFO_WIDTH (info), GST_VIDEO_INFO_HEIGHT (info));
  GST_VIDEO_INFO_FPS_N (&rgb_info) = GST_VIDEO_INFO_FPS_N (info);
  GST_VIDEO_INFO_FPS_D (&rgb_info) = GST_VIDEO_INFO_FPS_D (info);
  rgb = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (&rgb_info), NULL);
  gst_video_frame_map (&src, &rgb_info, rgb, GST_MAP_WRITE);
  for (i = 0; i < (gsize) GST_VIDEO_INFO_HEIGHT (info); i++) {
    guint8 *row = (guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&src, 0) +
        i * GST_VIDEO_FRAME_PLANE_STRIDE (&src, 0);
    gint x;
    for (x = 0; x < GST_VIDEO_INFO_WIDTH (info); x++) {
      row[3 * x] = r;
      row[3 * x + 1] = g;
      row[3 * x + 2] = b;
    }
  }
  out = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (info), NULL);
  gst_video_frame_map (&dst, info, out, GST_MAP_WRITE);
  convert = gst_video_converter_new (&rgb_info, (GstVideoInfo *) info, NULL);
  gst_video_converter_frame (convert, &src, &dst);
  gst_video_converter_free (convert);
  gst_video_frame_unmap (&dst);
  gst_video_frame_unmap (&src);
  gst_buffer_unref (rgb);
  return out;
}

static GstBuffer *
next_frame (Fixture * f, guint8 r, guint8 g, guint8 b)
{
  GstVideoInfo info;
  GstCaps *caps = gst_pad_get_current_caps (f->video->srcpad);
  GstBuffer *buffer;

  gst_video_info_from_caps (&info, caps);
  gst_caps_unref (caps);
  buffer = solid_frame (&info, r, g, b);
  GST_BUFFER_PTS (buffer) = f->next_frame * GST_SECOND / FPS;
  GST_BUFFER_DURATION (buffer) = FRAME_DURATION;
  f->next_frame++;
  return buffer;
}

/* Drops the video that came out on src so far. */
static void
drop_video (Fixture * f)
{
  GstBuffer *buffer;

  while ((buffer = gst_harness_try_pull (f->video)))
    gst_buffer_unref (buffer);
}

/* Pushes `n` frames of one colour and drops what came out on src (aligned
 * mode holds the frames until their text went out). */
static void
push_frames (Fixture * f, guint n, guint8 r, guint8 g, guint8 b)
{
  while (n--) {
    fail_unless_equals_int (gst_harness_push (f->video, next_frame (f, r, g,
                b)), GST_FLOW_OK);
    drop_video (f);
  }
}

static void
push_eos (Fixture * f)
{
  fail_unless (gst_harness_push_event (f->video, gst_event_new_eos ()));
}

static gchar *
buffer_text (GstBuffer * buffer)
{
  GstMapInfo map;
  gchar *text;

  gst_buffer_map (buffer, &map, GST_MAP_READ);
  text = g_strndup ((const gchar *) map.data, map.size);
  gst_buffer_unmap (buffer, &map);
  return text;
}

/* Pulls the next text buffer and checks its text, PTS and duration. */
static void
pull_caption (Fixture * f, const gchar * expected, GstClockTime pts,
    GstClockTime duration)
{
  GstBuffer *buffer = gst_harness_pull (f->text);
  gchar *text;

  fail_unless (buffer != NULL, "no caption came out");
  text = buffer_text (buffer);
  fail_unless_equals_string (text, expected);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (buffer), pts);
  fail_unless_equals_uint64 (GST_BUFFER_DURATION (buffer), duration);
  g_free (text);
  gst_buffer_unref (buffer);
}

/* Waits for the next `vlmcaption` bus message; returns it (unref). */
static GstMessage *
wait_caption_message (Fixture * f)
{
  for (;;) {
    GstMessage *msg = gst_bus_timed_pop_filtered (f->bus, 60 * GST_SECOND,
        GST_MESSAGE_ELEMENT);

    fail_unless (msg != NULL, "no vlmcaption message");
    if (gst_message_has_name (msg, "vlmcaption"))
      return msg;
    gst_message_unref (msg);
  }
}

static guint64
dropped_clips (Fixture * f)
{
  guint64 dropped;

  g_object_get (f->element, "dropped-clips", &dropped, NULL);
  return dropped;
}

/* ---------------------------------------------------------------- caps */

static const struct
{
  const gchar *caps, *expected;
} text_formats[] = {
  {"text/x-raw,format=utf8", RED},
  {"text/x-raw,format=pango-markup", RED},
  {"application/x-subtitle-vtt",
      "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n" RED "\n\n"},
  {"application/x-subtitle", "1\n00:00:00,000 --> 00:00:01,000\n" RED "\n\n"},
};

GST_START_TEST (test_text_caps)
{
  Fixture f;
  GstCaps *caps, *expected;

  fixture_init (&f, text_formats[__i__].caps, FALSE, NULL);
  set_video_caps (&f, "RGB", 320, 240);
  push_frames (&f, FPS, 255, 0, 0);
  push_eos (&f);

  pull_caption (&f, text_formats[__i__].expected, 0, GST_SECOND);
  caps = gst_pad_get_current_caps (f.text->sinkpad);
  expected = gst_caps_from_string (text_formats[__i__].caps);
  fail_unless (gst_caps_is_equal (caps, expected), "negotiated %"
      GST_PTR_FORMAT, caps);
  gst_caps_unref (caps);
  gst_caps_unref (expected);
  fixture_clear (&f);
}

GST_END_TEST;

/* Every accepted format and odd sizes, changing mid-stream, all captioned. */
GST_START_TEST (test_caps_change)
{
  const gchar *formats[] = { "RGB", "RGBx", "BGRx", "RGBA", "BGRA", "I420",
    "NV12"
  };
  Fixture f;
  guint i;

  fixture_init (&f, "text/x-raw,format=utf8", FALSE, NULL);
  for (i = 0; i < G_N_ELEMENTS (formats); i++) {
    set_video_caps (&f, formats[i], 320 + 2 * i + (i % 2), 240 - 2 * i);
    push_frames (&f, FPS, 255, 0, 0);
    pull_caption (&f, RED, i * GST_SECOND, GST_SECOND);
  }
  push_eos (&f);
  fixture_clear (&f);
}

GST_END_TEST;

/* ---------------------------------------------------------------- video path */

GST_START_TEST (test_video_passthrough)
{
  Fixture f;
  guint i;

  fixture_init (&f, "text/x-raw,format=utf8", FALSE, "alignment=immediate");
  set_video_caps (&f, "I420", 320, 240);
  for (i = 0; i < 2 * FPS; i++) {
    GstBuffer *in = next_frame (&f, 0, 0, 255), *out;
    GstBuffer *kept = i % 2 ? gst_buffer_ref (in) : NULL;
    GstMemory *memory = gst_buffer_peek_memory (in, 0);

    GST_BUFFER_DTS (in) = GST_BUFFER_PTS (in);
    GST_BUFFER_OFFSET (in) = i;
    GST_BUFFER_FLAG_SET (in, GST_BUFFER_FLAG_DISCONT);
    fail_unless_equals_int (gst_harness_push (f.video, in), GST_FLOW_OK);
    out = gst_harness_pull (f.video);
    /* writable input: the very same buffer; shared input: the same memory */
    if (!kept)
      fail_unless (out == in);
    fail_unless (gst_buffer_peek_memory (out, 0) == memory);
    fail_unless_equals_int (gst_buffer_n_memory (out), 1);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (out), i * GST_SECOND / FPS);
    fail_unless_equals_uint64 (GST_BUFFER_DTS (out), i * GST_SECOND / FPS);
    fail_unless_equals_uint64 (GST_BUFFER_DURATION (out), FRAME_DURATION);
    fail_unless_equals_uint64 (GST_BUFFER_OFFSET (out), i);
    fail_unless (GST_BUFFER_FLAG_IS_SET (out, GST_BUFFER_FLAG_DISCONT));
    gst_buffer_unref (out);
    if (kept)
      gst_buffer_unref (kept);
  }
  push_eos (&f);
  fixture_clear (&f);
}

GST_END_TEST;

/* alignment=immediate: the caption rides on the first video buffer after
 * it is ready, and the bus message and signal carry it too. */
static void
on_caption (GstElement * element, const gchar * text, guint64 start,
    guint64 end, GPtrArray * seen)
{
  g_ptr_array_add (seen, g_strdup_printf ("%s@%" G_GUINT64_FORMAT "-%"
          G_GUINT64_FORMAT, text, start, end));
}

GST_START_TEST (test_meta_message_signal)
{
  GPtrArray *seen = g_ptr_array_new_with_free_func (g_free);
  const GstStructure *s, *meta;
  GstMessage *msg;
  GstBuffer *out;
  gpointer state = NULL;
  guint64 start, end;
  gint n_tokens;
  gdouble ms;

  Fixture f;

  fixture_init (&f, "text/x-raw,format=utf8", FALSE, "alignment=immediate");
  g_signal_connect (f.element, "caption", G_CALLBACK (on_caption), seen);
  set_video_caps (&f, "RGB", 320, 240);
  push_frames (&f, FPS, 255, 0, 0);

  msg = wait_caption_message (&f);
  s = gst_message_get_structure (msg);
  fail_unless_equals_string (gst_structure_get_string (s, "text"), RED);
  fail_unless (gst_structure_get_uint64 (s, "start", &start));
  fail_unless (gst_structure_get_uint64 (s, "end", &end));
  fail_unless_equals_uint64 (start, 0);
  fail_unless_equals_uint64 (end, GST_SECOND);
  fail_unless_equals_string (gst_structure_get_string (s, "model"),
      "testcard-git");
  fail_unless (gst_structure_get_int (s, "n-tokens", &n_tokens));
  fail_unless (n_tokens >= 4);
  fail_unless (gst_structure_get_double (s, "inference-ms", &ms));
  fail_unless (ms > 0);
  fail_unless_equals_int (seen->len, 1);
  fail_unless_equals_string (g_ptr_array_index (seen, 0),
      RED "@0-1000000000");

  /* the next video buffer carries it, once */
  fail_unless_equals_int (gst_harness_push (f.video, next_frame (&f, 255, 0,
              0)), GST_FLOW_OK);
  out = gst_harness_pull (f.video);
  meta = gst_vlm_caption_meta_get (out);
  fail_unless (meta != NULL);
  fail_unless_equals_string (gst_structure_get_string (meta, "text"), RED);
  fail_unless (gst_structure_get_uint64 (meta, "end", &end));
  fail_unless_equals_uint64 (end, GST_SECOND);
  fail_unless (gst_vlm_caption_meta_iterate (out, &state) != NULL);
  fail_unless (gst_vlm_caption_meta_iterate (out, &state) == NULL);
  gst_buffer_unref (out);
  out = gst_harness_push_and_pull (f.video, next_frame (&f, 255, 0, 0));
  fail_unless (gst_vlm_caption_meta_get (out) == NULL);
  gst_buffer_unref (out);

  gst_message_unref (msg);
  push_eos (&f);
  fixture_clear (&f);
  g_ptr_array_unref (seen);
}

GST_END_TEST;

/* alignment=aligned (the default), not live: each frame leaves only once
 * the text covering it went to text_src, the caption's meta rides on the
 * first frame of its clip (start == that frame's PTS), and the element
 * holds at most queue-size + 2 clips of video. The most it held is printed
 * for docs/element.md, at 320x240 and 1920x1080 I420. */
typedef struct
{
  GMutex lock;
  guint n_text;                 /* text buffers pushed on text_src */
  GPtrArray *metas;             /* "start on pts" of each meta */
  guint early;                  /* frames out before their caption */
} AlignSeen;

static GstPadProbeReturn
count_text (GstPad * pad, GstPadProbeInfo * info, AlignSeen * seen)
{
  g_mutex_lock (&seen->lock);
  seen->n_text++;
  g_mutex_unlock (&seen->lock);
  return GST_PAD_PROBE_OK;
}

static GstPadProbeReturn
check_video (GstPad * pad, GstPadProbeInfo * info, AlignSeen * seen)
{
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER (info);
  const GstStructure *s = gst_vlm_caption_meta_get (buffer);
  guint clip = GST_BUFFER_PTS (buffer) / GST_SECOND;
  gint64 until = g_get_monotonic_time () + G_TIME_SPAN_SECOND;
  guint64 start;

  /* the text is committed before the frames go; its push may still be on
   * its way when the first frame is */
  g_mutex_lock (&seen->lock);
  while (seen->n_text < clip + 1 && g_get_monotonic_time () < until) {
    g_mutex_unlock (&seen->lock);
    g_usleep (1000);
    g_mutex_lock (&seen->lock);
  }
  if (seen->n_text < clip + 1)
    seen->early++;
  if (s && gst_structure_get_uint64 (s, "start", &start))
    g_ptr_array_add (seen->metas, g_strdup_printf ("%" G_GUINT64_FORMAT
            " on %" G_GUINT64_FORMAT, start, GST_BUFFER_PTS (buffer)));
  g_mutex_unlock (&seen->lock);
  return GST_PAD_PROBE_OK;
}

GST_START_TEST (test_aligned_video)
{
  const gint sizes[][2] = { {320, 240}, {1920, 1080} };
  AlignSeen seen = { {0}, 0, g_ptr_array_new_with_free_func (g_free), 0 };
  guint pushed = 0, out = 0, max_held = 0, i;
  GstVideoInfo info;
  GstPad *pad;
  Fixture f;

  fixture_init (&f, "text/x-raw,format=utf8", FALSE, "queue-size=1");
  pad = gst_element_get_static_pad (f.element, "text_src");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER,
      (GstPadProbeCallback) count_text, &seen, NULL);
  gst_object_unref (pad);
  pad = gst_element_get_static_pad (f.element, "src");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER,
      (GstPadProbeCallback) check_video, &seen, NULL);
  gst_object_unref (pad);
  set_video_caps (&f, "I420", sizes[__i__][0], sizes[__i__][1]);
  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_I420, sizes[__i__][0],
      sizes[__i__][1]);

  for (i = 0; i < 4 * FPS; i++) {
    GstBuffer *buffer;

    fail_unless_equals_int (gst_harness_push (f.video, next_frame (&f,
                i / FPS % 2 ? 0 : 255, 0, i / FPS % 2 ? 255 : 0)), GST_FLOW_OK);
    pushed++;
    while ((buffer = gst_harness_try_pull (f.video))) {
      out++;
      gst_buffer_unref (buffer);
    }
    max_held = MAX (max_held, pushed - out);
  }
  push_eos (&f);
  drop_video (&f);
  g_print ("aligned %dx%d I420: held at most %u frames, %.1f MiB\n",
      sizes[__i__][0], sizes[__i__][1], max_held,
      max_held * GST_VIDEO_INFO_SIZE (&info) / 1048576.0);
  /* one clip captioned, one queued, one filling, and the frame that
   * closed the last */
  fail_unless (max_held <= 3 * FPS + 1, "held %u frames", max_held);
  /* and at least the frames up to the clip's last slot (0.75 s) */
  fail_unless (max_held >= 3 * FPS / 4, "held %u frames: not aligned?",
      max_held);

  for (i = 0; i < 4; i++)
    pull_caption (&f, i % 2 ? BLUE : RED, i * GST_SECOND, GST_SECOND);
  fail_unless_equals_int (seen.early, 0);
  fail_unless_equals_int (seen.metas->len, 4);
  for (i = 0; i < 4; i++) {
    gchar *want = g_strdup_printf ("%" G_GUINT64_FORMAT " on %"
        G_GUINT64_FORMAT, i * GST_SECOND, i * GST_SECOND);

    fail_unless_equals_string (g_ptr_array_index (seen.metas, i), want);
    g_free (want);
  }
  fixture_clear (&f);
  g_ptr_array_unref (seen.metas);
}

GST_END_TEST;

/* ---------------------------------------------------------------- timeline */

GST_START_TEST (test_text_timestamps)
{
  Fixture f;

  fixture_init (&f, "text/x-raw,format=utf8", FALSE, NULL);
  set_video_caps (&f, "RGB", 320, 240);
  push_frames (&f, FPS, 255, 0, 0);
  push_frames (&f, FPS, 0, 0, 255);
  push_frames (&f, FPS / 2, 255, 0, 0);
  push_eos (&f);

  pull_caption (&f, RED, 0, GST_SECOND);
  pull_caption (&f, BLUE, GST_SECOND, GST_SECOND);
  /* the last clip closes at EOS with the frames it has, and ends with the
   * last frame (frame 74 at 74/30 s, lasting 1/30 s) */
  pull_caption (&f, RED, 2 * GST_SECOND, LAST_FRAME_END (f) - 2 * GST_SECOND);
  fail_unless_equals_int (gst_harness_buffers_in_queue (f.text), 0);
  fixture_clear (&f);
}

GST_END_TEST;

/* A file of 1.5 s (its segment stops there): the last partial clip once
 * went out with end = GST_CLOCK_TIME_NONE and never reached text_src or a
 * subtitle file. It ends at the last frame's end in the message and on
 * text_src, in every format. */
static const struct
{
  const gchar *caps, *last;
} tails[] = {
  {"text/x-raw,format=utf8", RED},
  {"application/x-subtitle", "2\n00:00:01,000 --> 00:00:01,500\n" RED "\n\n"},
  {"application/x-subtitle-vtt", "00:00:01.000 --> 00:00:01.500\n" RED "\n\n"},
};

GST_START_TEST (test_tail_reaches_outputs)
{
  GstSegment segment;
  GstMessage *msg;
  GstBuffer *buffer;
  guint64 end;
  gchar *text;
  Fixture f;

  fixture_init (&f, tails[__i__].caps, FALSE, NULL);
  set_video_caps (&f, "RGB", 320, 240);
  gst_segment_init (&segment, GST_FORMAT_TIME);
  segment.stop = 1500 * GST_MSECOND;
  fail_unless (gst_harness_push_event (f.video,
          gst_event_new_segment (&segment)));
  push_frames (&f, FPS + FPS / 2, 255, 0, 0);
  push_eos (&f);

  gst_message_unref (wait_caption_message (&f));
  msg = wait_caption_message (&f);
  fail_unless (gst_structure_get_uint64 (gst_message_get_structure (msg),
          "end", &end));
  fail_unless_equals_uint64 (end, LAST_FRAME_END (f));
  gst_message_unref (msg);

  gst_buffer_unref (gst_harness_pull (f.text));
  buffer = gst_harness_pull (f.text);
  fail_unless (buffer != NULL, "the tail never reached text_src");
  fail_unless_equals_uint64 (GST_BUFFER_PTS (buffer), GST_SECOND);
  fail_unless_equals_uint64 (GST_BUFFER_DURATION (buffer),
      LAST_FRAME_END (f) - GST_SECOND);
  text = buffer_text (buffer);
  fail_unless_equals_string (text, tails[__i__].last);
  g_free (text);
  gst_buffer_unref (buffer);
  fixture_clear (&f);
}

GST_END_TEST;

static void push_flush (Fixture * f);

/* Pulls every text buffer into one file (g_free). */
static gchar *
pull_file (Fixture * f)
{
  GString *file = g_string_new (NULL);
  GstBuffer *buffer;

  while ((buffer = gst_harness_try_pull (f->text))) {
    gchar *text = buffer_text (buffer);

    g_string_append (file, text);
    g_free (text);
    gst_buffer_unref (buffer);
  }
  return g_string_free (file, FALSE);
}

/* Concat's second source (a new stream-start, PTS from 0 again, a segment
 * whose base is the first one's length), then a flushing seek back to 0:
 * the file once had WEBVTT twice, SubRip numbers from 1 again, cue times
 * back at 0, and lost the first source's last clip. Now the strict reader
 * takes it: one header, numbers 1-5, times 0-1, 1-1.5 (the first source's
 * half clip), 1.5-2.5, then after the flush 2.5-3.5, 3.5-4.5. */
GST_START_TEST (test_subtitle_segments)
{
  const gchar *caps[] = { "application/x-subtitle",
    "application/x-subtitle-vtt"
  };
  const guint64 want[][2] = { {0, 1000}, {1000, 1500}, {1500, 2500},
    {2500, 3500}, {3500, 4500}
  };
  GstSegment segment;
  GPtrArray *cues;
  gchar *file, *why;
  guint i;
  Fixture f;

  fixture_init (&f, caps[__i__], FALSE, NULL);
  set_video_caps (&f, "RGB", 320, 240);
  push_frames (&f, FPS + FPS / 2, 255, 0, 0);

  gst_harness_push_event (f.video, gst_event_new_stream_start ("second"));
  set_video_caps (&f, "RGB", 320, 240);
  gst_segment_init (&segment, GST_FORMAT_TIME);
  segment.base = LAST_FRAME_END (f);
  fail_unless (gst_harness_push_event (f.video,
          gst_event_new_segment (&segment)));
  f.next_frame = 0;
  push_frames (&f, FPS, 0, 0, 255);
  /* let the text task write what it has before the flush discards it */
  for (i = 0; i < 3; i++)
    gst_message_unref (wait_caption_message (&f));
  while (gst_harness_buffers_in_queue (f.text) < 3)
    g_usleep (1000);

  push_flush (&f);
  f.next_frame = 0;
  push_frames (&f, 2 * FPS, 255, 0, 0);
  push_eos (&f);

  file = pull_file (&f);
  cues = vt_parse_subtitles (file, __i__ == 1, &why);
  fail_unless (cues != NULL, "%s in:\n%s", why, file);
  fail_unless_equals_int (cues->len, G_N_ELEMENTS (want));
  for (i = 0; i < cues->len; i++) {
    VtCue *cue = g_ptr_array_index (cues, i);

    fail_unless_equals_uint64 (cue->start_ms, want[i][0]);
    fail_unless_equals_uint64 (cue->end_ms, want[i][1]);
    fail_unless_equals_string (cue->text, i == 2 ? BLUE : RED);
  }
  g_ptr_array_unref (cues);
  g_free (file);
  fixture_clear (&f);
}

GST_END_TEST;

/* caption-interval or clip-duration = G_MAXUINT64 once wrapped the clip
 * grid round to the first frame and opened a clip per nanosecond. Now an
 * endless interval gives one clip, and an endless clip one caption at EOS
 * from the frame it saw, shown until the last frame's end (2 s). */
static const struct
{
  const gchar *props;
  GstClockTime duration;
} endless[] = {
  { "caption-interval=18446744073709551615", GST_SECOND },
  { "clip-duration=18446744073709551615", 59 * GST_SECOND / FPS + FRAME_DURATION },
};

GST_START_TEST (test_endless_clips)
{
  Fixture f;

  fixture_init (&f, "text/x-raw,format=utf8", FALSE, endless[__i__].props);
  set_video_caps (&f, "RGB", 320, 240);
  push_frames (&f, FPS, 255, 0, 0);
  push_frames (&f, FPS, 0, 0, 255);
  push_eos (&f);

  pull_caption (&f, RED, 0, endless[__i__].duration);
  fail_unless_equals_int (gst_harness_buffers_in_queue (f.text), 0);
  fixture_clear (&f);
}

GST_END_TEST;

/* Collects the GAP events that reached the text harness. */
static GArray *
pull_gaps (Fixture * f)
{
  GArray *gaps = g_array_new (FALSE, FALSE, sizeof (GstClockTime) * 2);
  GstEvent *event;

  while ((event = gst_harness_try_pull_event (f->text))) {
    if (GST_EVENT_TYPE (event) == GST_EVENT_GAP) {
      GstClockTime gap[2];
      gst_event_parse_gap (event, &gap[0], &gap[1]);
      g_array_append_val (gaps, gap);
    }
    gst_event_unref (event);
  }
  return gaps;
}

/* Captions of 1 s every 2 s: a GAP covers each second in between (the
 * last one too: the video went on to 4 s). With alignment=immediate an
 * empty GAP at the start lets text sinks preroll (aligned, the first
 * caption does). */
GST_START_TEST (test_gap_events)
{
  const GstClockTime want[][2] = { {0, 0}, {GST_SECOND, GST_SECOND},
    {3 * GST_SECOND, GST_SECOND}
  };
  gboolean aligned = __i__ == 0;
  Fixture f;
  GArray *gaps;
  guint i;

  fixture_init (&f, "text/x-raw,format=utf8", FALSE, aligned ?
      "caption-interval=2000000000" :
      "caption-interval=2000000000 alignment=immediate");
  set_video_caps (&f, "RGB", 320, 240);
  push_frames (&f, FPS, 255, 0, 0);
  push_frames (&f, FPS, 0, 255, 0);
  push_frames (&f, FPS, 0, 0, 255);
  push_frames (&f, FPS, 0, 255, 0);
  push_eos (&f);

  pull_caption (&f, RED, 0, GST_SECOND);
  pull_caption (&f, BLUE, 2 * GST_SECOND, GST_SECOND);
  gaps = pull_gaps (&f);
  fail_unless_equals_int (gaps->len, G_N_ELEMENTS (want) - aligned);
  for (i = 0; i < gaps->len; i++) {
    GstClockTime *gap = &g_array_index (gaps, GstClockTime, 2 * i);

    fail_unless_equals_uint64 (gap[0], want[i + aligned][0]);
    fail_unless_equals_uint64 (gap[1], want[i + aligned][1]);
  }
  g_array_unref (gaps);
  fixture_clear (&f);
}

GST_END_TEST;

/* The GAP for a span no clip covers goes out as soon as the clip before it
 * is captioned: with clips of 1 s every 3 s, the GAP for 1-3 s once came
 * only after the 3-4 s caption, and a file pipeline through textoverlay
 * and a default queue hung on it. Here it comes with 2 s of video pushed,
 * before any frame of the next clip. */
GST_START_TEST (test_gap_without_next_clip)
{
  gint64 until = g_get_monotonic_time () + 60 * G_TIME_SPAN_SECOND;
  gboolean seen = FALSE;
  Fixture f;

  fixture_init (&f, "text/x-raw,format=utf8", FALSE,
      "caption-interval=3000000000");
  set_video_caps (&f, "RGB", 320, 240);
  push_frames (&f, 2 * FPS, 255, 0, 0);
  pull_caption (&f, RED, 0, GST_SECOND);
  while (!seen && g_get_monotonic_time () < until) {
    GstEvent *event = gst_harness_try_pull_event (f.text);
    GstClockTime ts, duration;

    if (!event) {
      g_usleep (1000);
      continue;
    }
    if (GST_EVENT_TYPE (event) == GST_EVENT_GAP) {
      gst_event_parse_gap (event, &ts, &duration);
      seen = ts == GST_SECOND && duration == 2 * GST_SECOND;
    }
    gst_event_unref (event);
  }
  fail_unless (seen, "no GAP for 1-3 s before the next clip");
  push_eos (&f);
  fixture_clear (&f);
}

GST_END_TEST;

/* ---------------------------------------------------------------- latency */

static void
query_latency (GstPad * pad, gboolean * live, GstClockTime * min,
    GstClockTime * max)
{
  GstQuery *query = gst_query_new_latency ();

  fail_unless (gst_pad_peer_query (pad, query));
  gst_query_parse_latency (query, live, min, max);
  gst_query_unref (query);
}

GST_START_TEST (test_latency_query)
{
  Fixture f;
  gboolean live;
  GstClockTime min, max;
  GstMessage *msg;

  fixture_init (&f, "text/x-raw,format=utf8", TRUE,
      "clip-duration=500000000 latency=250000000");
  set_video_caps (&f, "RGB", 320, 240);

  /* upstream 1/30 s + clip 0.5 s + budget 0.25 s, on both source pads */
  query_latency (f.video->sinkpad, &live, &min, &max);
  fail_unless (live);
  fail_unless_equals_uint64 (min, FRAME_DURATION + 750 * GST_MSECOND);
  fail_unless_equals_uint64 (max, GST_CLOCK_TIME_NONE);
  query_latency (f.text->sinkpad, &live, &min, &max);
  fail_unless_equals_uint64 (min, FRAME_DURATION + 750 * GST_MSECOND);

  /* a bigger budget while playing asks the pipeline to recompute */
  g_object_set (f.element, "latency", 2 * GST_SECOND, NULL);
  msg = gst_bus_pop_filtered (f.bus, GST_MESSAGE_LATENCY);
  fail_unless (msg != NULL);
  gst_message_unref (msg);
  query_latency (f.video->sinkpad, &live, &min, &max);
  fail_unless_equals_uint64 (min, FRAME_DURATION + 2500 * GST_MSECOND);

  /* not live: nothing added */
  gst_harness_set_live (f.video, FALSE);
  query_latency (f.video->sinkpad, &live, &min, &max);
  fail_if (live);
  fail_unless_equals_uint64 (min, FRAME_DURATION);
  fixture_clear (&f);
}

GST_END_TEST;

/* ---------------------------------------------------------------- properties */

GST_START_TEST (test_prompt_change)
{
  Fixture f;
  GstMessage *msg;

  fixture_init (&f, "text/x-raw,format=utf8", FALSE, NULL);
  set_video_caps (&f, "RGB", 320, 240);
  push_frames (&f, FPS, 255, 0, 0);
  pull_caption (&f, RED, 0, GST_SECOND);
  gst_message_unref (wait_caption_message (&f));

  g_object_set (f.element, "prompt", "a plain", NULL);
  push_frames (&f, FPS, 255, 0, 0);
  pull_caption (&f, "red screen", GST_SECOND, GST_SECOND);
  msg = wait_caption_message (&f);
  fail_unless_equals_string (gst_structure_get_string
      (gst_message_get_structure (msg), "prompt"), "a plain");
  gst_message_unref (msg);

  /* a bad generation-config while playing is a warning, not the end */
  g_object_set (f.element, "generation-config", "no_such_key=1", NULL);
  push_frames (&f, FPS, 255, 0, 0);
  msg = gst_bus_timed_pop_filtered (f.bus, 60 * GST_SECOND,
      GST_MESSAGE_WARNING);
  fail_unless (msg != NULL);
  gst_message_unref (msg);
  pull_caption (&f, "red screen", 2 * GST_SECOND, GST_SECOND);
  push_eos (&f);
  fixture_clear (&f);
}

GST_END_TEST;

/* Placeholders in the prompt are filled in per clip (the message's prompt
 * is what the model got), and a vlmcaption-prompt event sets the prompt
 * of the stream: "a plain" makes the test card say "red screen"; "" goes
 * back to the property. */
GST_START_TEST (test_prompt_per_clip)
{
  const gchar *want[] = { "1.00-2.00 1.00 4 [a, b]", "a plain",
    "3.00-4.00 1.00 4 [a, b]"
  };
  const gchar *captions[] = { NULL, "red screen", NULL };
  GstMessage *msg;
  GstBuffer *buffer;
  GstEvent *sticky;
  guint i;
  Fixture f;

  fixture_init (&f, "text/x-raw,format=utf8", FALSE, NULL);
  g_object_set (f.element, "labels", "a;b",
      "prompt", "{start}-{end} {duration} {frames} [{labels}]", NULL);
  set_video_caps (&f, "RGB", 320, 240);
  push_frames (&f, FPS, 255, 0, 0);     /* 0-1 s */
  gst_message_unref (wait_caption_message (&f));
  for (i = 0; i < G_N_ELEMENTS (want); i++) {
    if (i == 1)
      fail_unless (gst_harness_push_event (f.video,
              gst_vlm_caption_prompt_event_new ("a plain")));
    if (i == 2)
      fail_unless (gst_harness_push_event (f.video,
              gst_vlm_caption_prompt_event_new ("")));
    push_frames (&f, FPS, 255, 0, 0);
    msg = wait_caption_message (&f);
    fail_unless_equals_string (gst_structure_get_string
        (gst_message_get_structure (msg), "prompt"), want[i]);
    if (captions[i])
      fail_unless_equals_string (gst_structure_get_string
          (gst_message_get_structure (msg), "text"), captions[i]);
    gst_message_unref (msg);
  }
  push_eos (&f);
  /* the event went on downstream, sticky */
  buffer = gst_harness_try_pull (f.video);
  gst_clear_buffer (&buffer);
  sticky = gst_pad_get_sticky_event (f.video->sinkpad,
      GST_EVENT_CUSTOM_DOWNSTREAM_STICKY, 0);
  fail_unless (sticky != NULL);
  gst_event_unref (sticky);
  fixture_clear (&f);
}

GST_END_TEST;

static gchar *
shared_path (const gchar * rel)
{
  const gchar *root = g_getenv ("VLM_PROJECT_ROOT");

  return g_build_filename (root ? root : ".", "..", "shared", rel, NULL);
}

/* Pops the next error; returns its message text (g_free). */
static gchar *
pop_error (GstBus * bus, GQuark domain, gint code)
{
  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  GError *error = NULL;
  gchar *text;

  fail_unless (msg != NULL, "no error message");
  gst_message_parse_error (msg, &error, NULL);
  fail_unless (g_error_matches (error, domain, code), "got %s",
      error->message);
  text = g_strdup (error->message);
  g_error_free (error);
  gst_message_unref (msg);
  return text;
}

GST_START_TEST (test_model_sharing)
{
  Fixture a, b;
  GstElement *other;
  GstBus *bus = gst_bus_new ();
  gchar *tiny = shared_path ("fixtures/git-video-tiny"), *text;

  fixture_init (&a, "text/x-raw,format=utf8", FALSE, "model-instance-id=tc");
  fixture_init (&b, "text/x-raw,format=utf8", FALSE, "model-instance-id=tc");
  set_video_caps (&a, "RGB", 320, 240);
  set_video_caps (&b, "NV12", 640, 480);
  push_frames (&a, FPS, 255, 0, 0);
  push_frames (&b, FPS, 0, 0, 255);
  pull_caption (&a, RED, 0, GST_SECOND);
  pull_caption (&b, BLUE, 0, GST_SECOND);

  /* the id holds the test-card model: another folder under it is refused */
  other = gst_element_factory_make ("vlmcaption", NULL);
  gst_element_set_bus (other, bus);
  g_object_set (other, "model-instance-id", "tc", "model", tiny, NULL);
  fail_unless_equals_int (gst_element_set_state (other, GST_STATE_PAUSED),
      GST_STATE_CHANGE_FAILURE);
  text = pop_error (bus, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS);
  fail_unless (strstr (text, "testcard-git") != NULL, "%s", text);
  g_free (text);
  gst_element_set_state (other, GST_STATE_NULL);

  /* the entry goes with its last user */
  push_eos (&a);
  push_eos (&b);
  fixture_clear (&a);
  fixture_clear (&b);
  fail_unless_equals_int (gst_element_set_state (other, GST_STATE_PAUSED),
      GST_STATE_CHANGE_SUCCESS);
  gst_element_set_state (other, GST_STATE_NULL);
  gst_element_set_bus (other, NULL);
  gst_object_unref (other);
  gst_object_unref (bus);
  g_free (tiny);
}

GST_END_TEST;

/* ---------------------------------------------------------------- errors */

static void
expect_load_error (const gchar * model, gint code, const gchar * names)
{
  GstElement *element = gst_element_factory_make ("vlmcaption", NULL);
  GstBus *bus = gst_bus_new ();
  gchar *text;

  gst_element_set_bus (element, bus);
  g_object_set (element, "model", model, NULL);
  fail_unless_equals_int (gst_element_set_state (element, GST_STATE_PAUSED),
      GST_STATE_CHANGE_FAILURE);
  text = pop_error (bus, GST_RESOURCE_ERROR, code);
  fail_unless (strstr (text, names) != NULL, "\"%s\" does not name %s", text,
      names);
  g_free (text);
  gst_element_set_state (element, GST_STATE_NULL);
  gst_element_set_bus (element, NULL);
  gst_object_unref (element);
  gst_object_unref (bus);
}

GST_START_TEST (test_bad_model)
{
  gchar *dir = g_dir_make_tmp ("vlmcaption-XXXXXX", NULL);
  gchar *config = g_build_filename (dir, "config.json", NULL);
  gchar *missing = g_build_filename (dir, "missing", NULL);

  expect_load_error (missing, GST_RESOURCE_ERROR_NOT_FOUND, "missing");

  fail_unless (g_file_set_contents (config, "{\"architectures\": [", -1,
          NULL));
  expect_load_error (dir, GST_RESOURCE_ERROR_OPEN_READ, "config.json");

  g_unlink (config);
  g_rmdir (dir);
  g_free (missing);
  g_free (config);
  g_free (dir);
}

GST_END_TEST;

/* ---------------------------------------------------------------- lifecycle */

GST_START_TEST (test_state_cycles)
{
  Fixture f;
  guint i;

  fixture_init (&f, "text/x-raw,format=utf8", FALSE, NULL);
  for (i = 0; i < 5; i++) {
    gst_harness_push_event (f.video, gst_event_new_stream_start ("cycle"));
    set_video_caps (&f, "RGB", 320, 240);
    f.next_frame = 0;
    /* 1.5 clips: one goes to the model, one is open, at the state change */
    push_frames (&f, FPS + FPS / 2, 255, 0, 0);
    fail_unless_equals_int (gst_element_set_state (f.element,
            i % 2 ? GST_STATE_READY : GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
    fail_unless_equals_int (gst_element_set_state (f.element,
            GST_STATE_PLAYING), GST_STATE_CHANGE_SUCCESS);
  }
  gst_harness_push_event (f.video, gst_event_new_stream_start ("last"));
  set_video_caps (&f, "RGB", 320, 240);
  f.next_frame = 0;
  push_frames (&f, FPS, 255, 0, 0);
  push_eos (&f);
  /* whatever came out before, the last stream's caption is the last */
  for (;;) {
    GstBuffer *buffer = gst_harness_pull (f.text);
    gchar *text;

    fail_unless (buffer != NULL);
    text = buffer_text (buffer);
    fail_unless_equals_string (text, RED);
    g_free (text);
    gst_buffer_unref (buffer);
    if (gst_harness_buffers_in_queue (f.text) == 0)
      break;
  }
  fixture_clear (&f);
}

GST_END_TEST;

/* Holds the first caps query that reaches the text harness (the text task
 * negotiating on the first SEGMENT) until text_src goes flushing. */
typedef struct
{
  GMutex lock;
  GCond cond;
  gboolean entered;
  GstPad *text_src;
} QueryGate;

static GstPadProbeReturn
hold_caps_query (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  QueryGate *gate = user_data;
  gint64 end = g_get_monotonic_time () + 30 * G_TIME_SPAN_SECOND;

  if (GST_QUERY_TYPE (GST_PAD_PROBE_INFO_QUERY (info)) != GST_QUERY_CAPS)
    return GST_PAD_PROBE_OK;
  g_mutex_lock (&gate->lock);
  gate->entered = TRUE;
  g_cond_broadcast (&gate->cond);
  g_mutex_unlock (&gate->lock);
  while (!GST_PAD_IS_FLUSHING (gate->text_src)
      && g_get_monotonic_time () < end)
    g_usleep (1000);
  return GST_PAD_PROBE_REMOVE;
}

/* Sets the video caps and returns once the text task is held negotiating. */
static void
hold_text_negotiation (Fixture * f, QueryGate * gate)
{
  memset (gate, 0, sizeof (*gate));
  g_mutex_init (&gate->lock);
  g_cond_init (&gate->cond);
  gate->text_src = gst_element_get_static_pad (f->element, "text_src");
  gst_pad_add_probe (f->text->sinkpad, GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM,
      hold_caps_query, gate, NULL);
  set_video_caps (f, "RGB", 320, 240);
  g_mutex_lock (&gate->lock);
  while (!gate->entered)
    g_cond_wait (&gate->cond, &gate->lock);
  g_mutex_unlock (&gate->lock);
}

/* After the text task let the query go (the probe is gone). */
static void
query_gate_clear (QueryGate * gate)
{
  gst_object_unref (gate->text_src);
  g_cond_clear (&gate->cond);
  g_mutex_clear (&gate->lock);
}

/* Stopping the element while text_src negotiates stops the text task,
 * without an error. */
GST_START_TEST (test_stop_while_negotiating)
{
  Fixture f;
  QueryGate gate;
  GstMessage *msg;

  fixture_init (&f, "text/x-raw,format=utf8", TRUE, NULL);
  hold_text_negotiation (&f, &gate);
  fail_unless_equals_int (gst_element_set_state (f.element, GST_STATE_NULL),
      GST_STATE_CHANGE_SUCCESS);
  fail_unless_equals_int (gst_pad_get_task_state (gate.text_src),
      GST_TASK_STOPPED);
  msg = gst_bus_pop_filtered (f.bus, GST_MESSAGE_ERROR);
  fail_unless (msg == NULL, "error on stop: %" GST_PTR_FORMAT, msg);
  query_gate_clear (&gate);
  fixture_clear (&f);
}

GST_END_TEST;

/* A flushing seek back to 0 as the video sink sees it: flush-start,
 * flush-stop, a new TIME segment. */
static void
push_flush (Fixture * f)
{
  GstSegment segment;

  fail_unless (gst_harness_push_event (f->video, gst_event_new_flush_start ()));
  fail_unless (gst_harness_push_event (f->video,
          gst_event_new_flush_stop (TRUE)));
  gst_segment_init (&segment, GST_FORMAT_TIME);
  fail_unless (gst_harness_push_event (f->video,
          gst_event_new_segment (&segment)));
}

/* A flush while text_src negotiates: the caption after it goes out with
 * the negotiated caps. */
GST_START_TEST (test_flush_while_negotiating)
{
  Fixture f;
  QueryGate gate;
  GstCaps *caps;

  fixture_init (&f, "text/x-raw,format=utf8", FALSE, NULL);
  hold_text_negotiation (&f, &gate);
  push_flush (&f);

  push_frames (&f, FPS, 255, 0, 0);
  pull_caption (&f, RED, 0, GST_SECOND);
  caps = gst_pad_get_current_caps (f.text->sinkpad);
  fail_unless (caps != NULL, "caption without caps");
  fail_unless_equals_string (gst_structure_get_string
      (gst_caps_get_structure (caps, 0), "format"), "utf8");
  gst_caps_unref (caps);
  query_gate_clear (&gate);
  fixture_clear (&f);
}

GST_END_TEST;

GST_START_TEST (test_flush_during_inference)
{
  Fixture f;
  GstBuffer *buffer;
  gchar *text;

  fixture_init (&f, "text/x-raw,format=utf8", FALSE, NULL);
  set_video_caps (&f, "RGB", 320, 240);
  /* a clip goes to the model, then a flushing seek back to 0 */
  push_frames (&f, FPS, 255, 0, 0);
  push_flush (&f);
  while ((buffer = gst_harness_try_pull (f.text)))
    gst_buffer_unref (buffer);

  f.next_frame = 0;
  push_frames (&f, FPS, 0, 0, 255);
  push_eos (&f);
  /* the red clip was discarded or went out before the flush */
  buffer = gst_harness_pull (f.text);
  text = buffer_text (buffer);
  fail_unless_equals_string (text, BLUE);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (buffer), 0);
  g_free (text);
  gst_buffer_unref (buffer);
  fixture_clear (&f);
}

GST_END_TEST;

/* Not live: every clip is captioned, and EOS returns only after the last
 * caption went out. */
GST_START_TEST (test_offline_drain)
{
  Fixture f;
  guint i;

  fixture_init (&f, "text/x-raw,format=utf8", FALSE, "queue-size=1");
  set_video_caps (&f, "RGB", 320, 240);
  for (i = 0; i < 8; i++)
    push_frames (&f, FPS, i % 2 ? 0 : 255, 0, i % 2 ? 255 : 0);
  push_eos (&f);

  fail_unless_equals_int (gst_harness_buffers_in_queue (f.text), 8);
  for (i = 0; i < 8; i++)
    pull_caption (&f, i % 2 ? BLUE : RED, i * GST_SECOND, GST_SECOND);
  fail_unless_equals_uint64 (dropped_clips (&f), 0);
  fixture_clear (&f);
}

GST_END_TEST;

/* ---------------------------------------------------------------- slow model */

/* Writes a GIT checkpoint with random weights that is slow on purpose: a
 * ViT of 8 layers, 512 wide, on 448x448 crops (785 tokens a frame, ~50 GFLOP
 * a frame, ~200 a clip of 4: slower than 100 ms clips arrive even at 1
 * TFLOP/s — at 224x224, 40 GFLOP a clip, a Zen 5 VM in bf16 kept up and
 * test_late_captions saw no late caption), with the test-card tokenizer.
 * Its captions are noise; its speed is real. */
static gchar *
write_slow_model (void)
{
  const gint H = 512, I = 2048, LAYERS = 8, IMAGE = 448, PATCH = 16;
  const gint TH = 128, TI = 512, VOCAB = 46, POSITIONS = 32, FRAMES = 4;
  const SynthGit shape = { "slow", H, I, LAYERS, 8, IMAGE, PATCH, TH, TI, 2, 4,
    VOCAB, POSITIONS, FRAMES
  };
  const gchar *copied[] = { "tokenizer.json", "tokenizer_config.json",
    "generation_config.json"
  };
  gchar *dir = g_dir_make_tmp ("vlmcaption-slow-XXXXXX", NULL);
  const gchar *root = g_getenv ("VLM_PROJECT_ROOT");
  SynthCheckpoint c;
  gchar *path, *json;
  gint i;

  synth_init (&c, FALSE);
  synth_git_tensors (&c, &shape, -1);
  path = g_build_filename (dir, "model.safetensors", NULL);
  fail_unless (synth_write (path, &c, NULL));
  synth_clear (&c);
  g_free (path);

  json = g_strdup_printf ("{\"architectures\":[\"GitForCausalLM\"],"
      "\"model_type\":\"git\",\"bos_token_id\":2,\"eos_token_id\":3,"
      "\"pad_token_id\":0,\"hidden_act\":\"gelu\",\"hidden_size\":%d,"
      "\"intermediate_size\":%d,\"layer_norm_eps\":1e-12,"
      "\"max_position_embeddings\":%d,\"num_attention_heads\":4,"
      "\"num_hidden_layers\":2,\"num_image_with_embedding\":%d,"
      "\"tie_word_embeddings\":false,\"vocab_size\":%d,\"vision_config\":{"
      "\"hidden_act\":\"quick_gelu\",\"hidden_size\":%d,\"image_size\":%d,"
      "\"intermediate_size\":%d,\"layer_norm_eps\":1e-5,"
      "\"model_type\":\"git_vision_model\",\"num_attention_heads\":8,"
      "\"num_channels\":3,\"num_hidden_layers\":%d,\"patch_size\":%d}}",
      TH, TI, POSITIONS, FRAMES, VOCAB, H, IMAGE, I, LAYERS, PATCH);
  path = g_build_filename (dir, "config.json", NULL);
  g_file_set_contents (path, json, -1, NULL);
  g_free (path);
  g_free (json);

  json = g_strdup_printf ("{\"image_processor\":{\"crop_size\":{\"height\":%d,"
      "\"width\":%d},\"do_center_crop\":true,\"do_convert_rgb\":true,"
      "\"do_normalize\":true,\"do_rescale\":true,\"do_resize\":true,"
      "\"image_mean\":[0.48145466,0.4578275,0.40821073],"
      "\"image_processor_type\":\"CLIPImageProcessor\","
      "\"image_std\":[0.26862954,0.26130258,0.27577711],\"resample\":3,"
      "\"rescale_factor\":0.00392156862745098,\"size\":{\"shortest_edge\":%d}},"
      "\"processor_class\":\"GitProcessor\"}", IMAGE, IMAGE, IMAGE);
  path = g_build_filename (dir, "processor_config.json", NULL);
  g_file_set_contents (path, json, -1, NULL);
  g_free (path);
  g_free (json);

  for (i = 0; i < (gint) G_N_ELEMENTS (copied); i++) {
    gchar *from = g_build_filename (root ? root : ".", "models", "testcard-git",
        copied[i], NULL), *contents;
    gsize len;

    fail_unless (g_file_get_contents (from, &contents, &len, NULL));
    path = g_build_filename (dir, copied[i], NULL);
    g_file_set_contents (path, contents, len, NULL);
    g_free (path);
    g_free (contents);
    g_free (from);
  }
  return dir;
}

/* Removes a model folder written by a test (files and links only). */
static void
remove_model (gchar * dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  const gchar *name;

  while ((name = g_dir_read_name (d))) {
    gchar *path = g_build_filename (dir, name, NULL);
    g_unlink (path);
    g_free (path);
  }
  g_dir_close (d);
  g_rmdir (dir);
  g_free (dir);
}

/* Live, with a model far slower than the clips arrive: ten 100 ms clips of
 * one frame (a clip of one frame goes out as soon as it has it) are pushed
 * at once while the model is busy. The streaming thread must not wait; the
 * policy decides which clips survive. Whether the worker picks up the first
 * clip before the second arrives is up to the scheduler, so the checks hold
 * either way: with one queue slot at most two clips survive a dropping
 * policy, and each policy always keeps one known clip. Random weights may
 * caption a clip with nothing (a GAP on text_src), so captioned clips are
 * counted from the bus. */
static const struct
{
  const gchar *policy;
  gboolean drops;
  GstClockTime kept;            /* start of a clip the policy never drops */
} policies[] = {
  {"drop-oldest", TRUE, 900 * GST_MSECOND},     /* the newest */
  {"drop-newest", TRUE, 0},                     /* the first */
  {"block", FALSE, 0},
};

GST_START_TEST (test_drop_policy_slow_model)
{
  gchar *dir = write_slow_model ();
  gchar *props = g_strdup_printf ("model=%s drop-policy=%s frames-per-clip=1 "
      "clip-duration=100000000 max-new-tokens=3 latency=100000000000", dir,
      policies[__i__].policy);
  GArray *starts = g_array_new (FALSE, FALSE, sizeof (guint64));
  guint n_buffers = 0, n_gaps = 0, n_dropped_messages = 0, i;
  gint64 started, pushed_us;
  gdouble first_ms = 0;
  GstBuffer *buffer;
  GstEvent *event;
  GstMessage *msg;
  Fixture f;

  fixture_init (&f, "text/x-raw,format=utf8", TRUE, props);
  set_video_caps (&f, "RGB", 320, 240);
  started = g_get_monotonic_time ();
  for (i = 0; i < FPS; i++)
    push_frames (&f, 1, 255, 0, 0);
  pushed_us = g_get_monotonic_time () - started;
  push_eos (&f);

  while ((msg = gst_bus_pop_filtered (f.bus, GST_MESSAGE_ELEMENT))) {
    const GstStructure *s = gst_message_get_structure (msg);
    guint64 start;

    if (gst_structure_has_name (s, "vlmcaption")) {
      if (!starts->len)
        gst_structure_get_double (s, "inference-ms", &first_ms);
      gst_structure_get_uint64 (s, "start", &start);
      g_array_append_val (starts, start);
    } else if (gst_structure_has_name (s, "vlmcaption-dropped")) {
      n_dropped_messages++;
    }
    gst_message_unref (msg);
  }
  while ((buffer = gst_harness_try_pull (f.text))) {
    fail_unless_equals_uint64 (GST_BUFFER_DURATION (buffer),
        100 * GST_MSECOND);
    n_buffers++;
    gst_buffer_unref (buffer);
  }
  while ((event = gst_harness_try_pull_event (f.text))) {
    if (GST_EVENT_TYPE (event) == GST_EVENT_GAP)
      n_gaps++;
    gst_event_unref (event);
  }

  /* every clip is captioned or dropped, and each drop is posted */
  fail_unless_equals_int (starts->len + dropped_clips (&f), 10);
  fail_unless_equals_int (n_dropped_messages, dropped_clips (&f));
  if (policies[__i__].drops)
    fail_unless (starts->len <= 2, "%u clips captioned with one queue slot",
        starts->len);
  else
    fail_unless_equals_int (starts->len, 10);
  for (i = 0; i < starts->len; i++)
    if (g_array_index (starts, guint64, i) == policies[__i__].kept)
      break;
  fail_unless (i < starts->len, "the clip at %" GST_TIME_FORMAT " was dropped",
      GST_TIME_ARGS (policies[__i__].kept));
  /* every clip is a caption or a GAP on text_src (aligned: no preroll GAP) */
  fail_unless_equals_int (n_buffers + n_gaps, 10);
  /* dropping: pushing the frames took less than one caption */
  if (policies[__i__].drops)
    fail_unless (pushed_us / 1000.0 < first_ms, "pushing took %.1f ms, a "
        "caption %.1f ms", pushed_us / 1000.0, first_ms);

  g_array_unref (starts);
  fixture_clear (&f);
  g_free (props);
  remove_model (dir);
}

GST_END_TEST;

/* Live, with a slow model and no time budget (latency=0): every caption
 * misses its text_src deadline, which once made the captions vanish with
 * text_src getting only GAPs and dropped-clips at 0. Now each clip is
 * accounted for: a late caption is posted and signalled, counted in
 * late-captions and announced with its lateness; a clip skipped past its
 * deadline is dropped; captions + dropped + late = the 10 clips. */
GST_START_TEST (test_late_captions)
{
  gchar *dir = write_slow_model ();
  gchar *props = g_strdup_printf ("model=%s drop-policy=block "
      "frames-per-clip=4 clip-duration=100000000 max-new-tokens=3 latency=0",
      dir);
  guint n_captions = 0, n_late = 0, n_dropped = 0, n_signals = 0, n_buffers = 0;
  guint64 late_captions = 0;
  gint64 until;
  GPtrArray *seen = g_ptr_array_new_with_free_func (g_free);
  GstBuffer *buffer;
  GstMessage *msg;
  Fixture f;

  fixture_init (&f, "text/x-raw,format=utf8", TRUE, props);
  g_signal_connect (f.element, "caption", G_CALLBACK (on_caption), seen);
  GstClock *clock = gst_system_clock_obtain ();

  /* running time from now: ten 100 ms clips arrive at once, each ~200
   * GFLOP (four 448x448 frames): the clips' deadlines (end + one frame of
   * upstream latency) pass while the model is on the ones before */
  gst_element_set_clock (f.element, clock);
  gst_element_set_base_time (f.element, gst_clock_get_time (clock));
  gst_object_unref (clock);
  set_video_caps (&f, "RGB", 320, 240);
  push_frames (&f, FPS, 255, 0, 0);
  push_eos (&f);

  /* live, EOS does not wait for captions already late: the worker may
   * still be on one; every clip is accounted for within a minute */
  until = g_get_monotonic_time () + 60 * G_TIME_SPAN_SECOND;
  while (g_get_monotonic_time () < until) {
    g_object_get (f.element, "late-captions", &late_captions, NULL);
    if (n_captions + n_dropped == 10 && n_late == late_captions)
      break;
    msg = gst_bus_timed_pop_filtered (f.bus, 10 * GST_MSECOND,
        GST_MESSAGE_ELEMENT);
    if (!msg)
      continue;
    {
    const GstStructure *s = gst_message_get_structure (msg);
    guint64 lateness, start, end;

    if (gst_structure_has_name (s, "vlmcaption")) {
      n_captions++;
    } else if (gst_structure_has_name (s, "vlmcaption-late")) {
      n_late++;
      fail_unless (gst_structure_get_uint64 (s, "lateness", &lateness));
      fail_unless (gst_structure_get_uint64 (s, "start", &start));
      fail_unless (gst_structure_get_uint64 (s, "end", &end));
      fail_unless (lateness > 0);
      /* 100 ms, the last (at EOS) to the last frame's end */
      fail_unless (end > start && end - start <= 100 * GST_MSECOND);
      fail_unless (gst_structure_get_string (s, "text") != NULL);
    } else if (gst_structure_has_name (s, "vlmcaption-dropped")) {
      n_dropped++;
    }
    gst_message_unref (msg);
    }
  }
  while ((buffer = gst_harness_try_pull (f.text))) {
    n_buffers++;
    gst_buffer_unref (buffer);
  }
  n_signals = seen->len;
  g_object_get (f.element, "late-captions", &late_captions, NULL);

  fail_unless (n_late >= 1, "no late caption: %u captions, %u dropped, %"
      G_GUINT64_FORMAT " late, %" G_GUINT64_FORMAT " dropped-clips",
      n_captions, n_dropped, late_captions, dropped_clips (&f));
  fail_unless_equals_int (late_captions, n_late);
  fail_unless_equals_int (n_dropped, dropped_clips (&f));
  fail_unless_equals_int (n_signals, n_captions);
  /* late ones are among the captions posted, none reached text_src (an
   * on-time caption of random weights may be empty: a GAP) */
  fail_unless (n_late <= n_captions);
  fail_unless (n_buffers <= n_captions - n_late);
  fail_unless_equals_int ((n_captions - n_late) + dropped_clips (&f) +
      late_captions, 10);

  g_ptr_array_unref (seen);
  fixture_clear (&f);
  g_free (props);
  remove_model (dir);
}

GST_END_TEST;

/* ---------------------------------------------------------------- tags */

/* The LanguageBind fixture in a temporary folder (its files linked, never
 * written) plus the tokenizer.json it lacks: CLIP's normalizer,
 * pre-tokenizer and `</w>` BPE over single letters, with no merges, so any
 * lower-case label of up to 14 letters fits the tiny text tower (64 ids, 16
 * positions). The scores are noise; their shape is what is tested. */
static gchar *
write_languagebind_model (void)
{
  const gchar *linked[] = { "config.json", "model.safetensors",
    "preprocessor_config.json"
  };
  gchar *dir = g_dir_make_tmp ("vlmcaption-languagebind-XXXXXX", NULL);
  GString *json = g_string_new ("{\"added_tokens\":["
      "{\"id\":1,\"content\":\"<|startoftext|>\",\"single_word\":false,"
      "\"lstrip\":false,\"rstrip\":false,\"normalized\":true,\"special\":true},"
      "{\"id\":2,\"content\":\"<|endoftext|>\",\"single_word\":false,"
      "\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}],"
      "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},"
      "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"\\\\s+\"},\"content\":\" \"},"
      "{\"type\":\"Lowercase\"}]},"
      "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":"
      "\"Split\",\"pattern\":{\"Regex\":\"<\\\\|startoftext\\\\|>|"
      "<\\\\|endoftext\\\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\\\p{L}]+|[\\\\p{N}]|"
      "[^\\\\s\\\\p{L}\\\\p{N}]+\"},\"behavior\":\"Removed\",\"invert\":true},"
      "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,"
      "\"use_regex\":false}]},"
      "\"post_processor\":{\"type\":\"RobertaProcessing\",\"sep\":"
      "[\"<|endoftext|>\",2],\"cls\":[\"<|startoftext|>\",1],"
      "\"trim_offsets\":false,\"add_prefix_space\":false},"
      "\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,"
      "\"trim_offsets\":true,\"use_regex\":true},"
      "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":"
      "\"<|endoftext|>\",\"continuing_subword_prefix\":\"\","
      "\"end_of_word_suffix\":\"</w>\",\"fuse_unk\":false,"
      "\"byte_fallback\":false,\"vocab\":{\"<|startoftext|>\":1,"
      "\"<|endoftext|>\":2");
  gchar *path, *fixture;
  gchar c;
  guint i;

  for (c = 'a'; c <= 'z'; c++)
    g_string_append_printf (json, ",\"%c\":%d,\"%c</w>\":%d", c, 3 + c - 'a',
        c, 29 + c - 'a');
  g_string_append (json, "},\"merges\":[]}}");
  path = g_build_filename (dir, "tokenizer.json", NULL);
  fail_unless (g_file_set_contents (path, json->str, -1, NULL));
  g_free (path);
  g_string_free (json, TRUE);

  for (i = 0; i < G_N_ELEMENTS (linked); i++) {
    gchar *rel = g_build_filename ("fixtures", "languagebind-video-tiny",
        linked[i], NULL);

    fixture = shared_path (rel);
    path = g_build_filename (dir, linked[i], NULL);
    fail_unless_equals_int (symlink (fixture, path), 0);
    g_free (path);
    g_free (fixture);
    g_free (rel);
  }
  return dir;
}

/* A tag-only model with labels: every clip gets a message whose labels are
 * all the labels (top-k 3 of 3), scored finite and best first, with probs
 * summing to 1; the same text goes out on text_src. */
GST_START_TEST (test_tags_per_clip)
{
  const gchar *expected[] = { "red", "blue", "dog" };
  gchar *dir = write_languagebind_model ();
  gchar *props = g_strdup_printf ("model=%s labels=red;blue;dog", dir);
  Fixture f;
  guint clip, i;

  fixture_init (&f, "text/x-raw,format=utf8", FALSE, props);
  set_video_caps (&f, "RGB", 64, 48);
  for (clip = 0; clip < 2; clip++) {
    GstMessage *msg;
    const GstStructure *s;
    const GValue *labels, *scores, *probs;
    GstBuffer *buffer;
    gdouble sum = 0;
    gchar *text;
    guint found = 0;
    guint64 start;

    push_frames (&f, FPS, clip ? 0 : 255, 0, clip ? 255 : 0);
    msg = wait_caption_message (&f);
    s = gst_message_get_structure (msg);
    fail_unless (gst_structure_get_uint64 (s, "start", &start));
    fail_unless_equals_uint64 (start, clip * GST_SECOND);
    labels = gst_structure_get_value (s, "labels");
    scores = gst_structure_get_value (s, "scores");
    probs = gst_structure_get_value (s, "probs");
    fail_unless (labels && GST_VALUE_HOLDS_ARRAY (labels));
    fail_unless (scores && GST_VALUE_HOLDS_ARRAY (scores));
    fail_unless (probs && GST_VALUE_HOLDS_ARRAY (probs));
    fail_unless_equals_int (gst_value_array_get_size (labels), 3);
    fail_unless_equals_int (gst_value_array_get_size (scores), 3);
    fail_unless_equals_int (gst_value_array_get_size (probs), 3);
    for (i = 0; i < 3; i++) {
      const gchar *label =
          g_value_get_string (gst_value_array_get_value (labels, i));
      gdouble score =
          g_value_get_double (gst_value_array_get_value (scores, i));
      gdouble prob = g_value_get_double (gst_value_array_get_value (probs, i));
      guint j;

      for (j = 0; j < G_N_ELEMENTS (expected); j++)
        if (!g_strcmp0 (label, expected[j]))
          found |= 1 << j;
      fail_unless (isfinite (score) && isfinite (prob));
      fail_unless (prob >= 0 && prob <= 1);
      if (i)
        fail_unless (score <= g_value_get_double (gst_value_array_get_value
                (scores, i - 1)), "scores not sorted");
      sum += prob;
    }
    fail_unless_equals_int (found, 7);
    fail_unless (fabs (sum - 1) < 1e-4, "probs sum to %f", sum);

    buffer = gst_harness_pull (f.text);
    text = buffer_text (buffer);
    fail_unless_equals_string (text, gst_structure_get_string (s, "text"));
    fail_unless (g_str_has_prefix (text, g_value_get_string
            (gst_value_array_get_value (labels, 0))));
    fail_unless (strstr (text, " (0.") || strstr (text, " (1.00)"), "%s",
        text);
    g_free (text);
    gst_buffer_unref (buffer);
    gst_message_unref (msg);
  }
  push_eos (&f);
  fixture_clear (&f);
  g_free (props);
  remove_model (dir);
}

GST_END_TEST;

/* top-k shortens the report, also while playing. */
GST_START_TEST (test_tags_top_k)
{
  gchar *dir = write_languagebind_model ();
  gchar *props = g_strdup_printf ("model=%s labels=red;blue;dog;cat top-k=1",
      dir);
  const GstStructure *s;
  GstMessage *msg;
  Fixture f;

  fixture_init (&f, "text/x-raw,format=utf8", FALSE, props);
  set_video_caps (&f, "RGB", 64, 48);
  push_frames (&f, FPS, 255, 0, 0);
  msg = wait_caption_message (&f);
  s = gst_message_get_structure (msg);
  fail_unless_equals_int (gst_value_array_get_size (gst_structure_get_value
          (s, "labels")), 1);
  fail_if (strchr (gst_structure_get_string (s, "text"), ';'));
  gst_message_unref (msg);

  g_object_set (f.element, "top-k", 2, "labels", "red;blue", NULL);
  push_frames (&f, FPS, 255, 0, 0);
  msg = wait_caption_message (&f);
  s = gst_message_get_structure (msg);
  fail_unless_equals_int (gst_value_array_get_size (gst_structure_get_value
          (s, "probs")), 2);
  fail_unless (strstr (gst_structure_get_string (s, "text"), "; ") != NULL);
  gst_message_unref (msg);
  push_eos (&f);
  fixture_clear (&f);
  g_free (props);
  remove_model (dir);
}

GST_END_TEST;

/* application/x-json: one object per caption and a newline, with the
 * message's fields; a tagged clip carries its labels, scores and probs as
 * arrays matching the message. Parsed back with json-glib. */
static JsonObject *
pull_json (Fixture * f, JsonParser * parser)
{
  GstBuffer *buffer = gst_harness_pull (f->text);
  GError *error = NULL;
  gchar *text;

  fail_unless (buffer != NULL, "no JSON on text_src");
  text = buffer_text (buffer);
  fail_unless (g_str_has_suffix (text, "}\n"), "%s", text);
  fail_unless (strchr (text, '\n') == text + strlen (text) - 1, "%s", text);
  fail_unless (json_parser_load_from_data (parser, text, -1, &error), "%s: %s",
      text, error ? error->message : "");
  g_free (text);
  gst_buffer_unref (buffer);
  return json_node_get_object (json_parser_get_root (parser));
}

GST_START_TEST (test_json_output)
{
  JsonParser *parser = json_parser_new ();
  gchar *dir = write_languagebind_model ();
  gchar *props = g_strdup_printf ("model=%s labels=red;blue;dog top-k=2", dir);
  const GstStructure *s;
  JsonObject *o;
  JsonArray *labels;
  GstMessage *msg;
  GstCaps *caps;
  Fixture f;

  fixture_init (&f, "application/x-json", FALSE, NULL);
  set_video_caps (&f, "RGB", 320, 240);
  push_frames (&f, FPS, 255, 0, 0);
  o = pull_json (&f, parser);
  fail_unless_equals_int (json_object_get_int_member (o, "start"), 0);
  fail_unless_equals_int (json_object_get_int_member (o, "end"), GST_SECOND);
  fail_unless_equals_string (json_object_get_string_member (o, "text"), RED);
  fail_unless (json_object_get_int_member (o, "tokens") >= 4);
  fail_unless_equals_string (json_object_get_string_member (o, "model"),
      "testcard-git");
  fail_unless_equals_string (json_object_get_string_member (o, "prompt"), "");
  fail_unless (json_object_get_double_member (o, "inference_ms") > 0);
  fail_if (json_object_has_member (o, "labels"));
  caps = gst_pad_get_current_caps (f.text->sinkpad);
  fail_unless (gst_structure_has_name (gst_caps_get_structure (caps, 0),
          "application/x-json"));
  gst_caps_unref (caps);
  push_eos (&f);
  fixture_clear (&f);

  fixture_init (&f, "application/x-json", FALSE, props);
  set_video_caps (&f, "RGB", 64, 48);
  push_frames (&f, FPS, 255, 0, 0);
  msg = wait_caption_message (&f);
  s = gst_message_get_structure (msg);
  o = pull_json (&f, parser);
  fail_unless_equals_string (json_object_get_string_member (o, "text"),
      gst_structure_get_string (s, "text"));
  fail_unless_equals_int (json_object_get_int_member (o, "tokens"), 0);
  labels = json_object_get_array_member (o, "labels");
  fail_unless_equals_int (json_array_get_length (labels), 2);
  for (guint i = 0; i < 2; i++) {
    const GValue *v = gst_value_array_get_value (gst_structure_get_value (s,
            "labels"), i);

    fail_unless_equals_string (json_array_get_string_element (labels, i),
        g_value_get_string (v));
    v = gst_value_array_get_value (gst_structure_get_value (s, "probs"), i);
    fail_unless (fabs (json_array_get_double_element
            (json_object_get_array_member (o, "probs"), i) -
            g_value_get_double (v)) < 1e-9);
  }
  fail_unless_equals_int (json_array_get_length (json_object_get_array_member
          (o, "scores")), 2);
  gst_message_unref (msg);
  push_eos (&f);
  fixture_clear (&f);
  g_free (props);
  remove_model (dir);
  g_object_unref (parser);
}

GST_END_TEST;

/* A tag-only model without labels cannot start, and says what is missing. */
GST_START_TEST (test_tags_need_labels)
{
  gchar *dir = write_languagebind_model ();

  expect_load_error (dir, GST_RESOURCE_ERROR_SETTINGS, "labels");
  remove_model (dir);
}

GST_END_TEST;

/* A captioner without a text tower, given labels: the element asks the
 * engine (vlm_model_can_tag), warns once naming the model, and captions. */
GST_START_TEST (test_labels_on_captioner)
{
  GstMessage *msg;
  GError *error = NULL;
  gchar *dir = vt_project_path ("models/testcard-git");
  VlmModel *model = vt_load_model (dir, &vt_backends[0]);
  Fixture f;

  g_free (dir);
  fail_if (vlm_model_can_tag (model));
  fail_unless (vlm_model_can_generate (model));
  vlm_model_unref (model);

  fixture_init (&f, "text/x-raw,format=utf8", FALSE, NULL);
  g_object_set (f.element, "labels", "a dog;a cat", NULL);
  set_video_caps (&f, "RGB", 320, 240);
  push_frames (&f, FPS, 255, 0, 0);
  push_frames (&f, FPS, 255, 0, 0);
  pull_caption (&f, RED, 0, GST_SECOND);
  pull_caption (&f, RED, GST_SECOND, GST_SECOND);
  msg = gst_bus_pop_filtered (f.bus, GST_MESSAGE_WARNING);
  fail_unless (msg != NULL, "no warning about the labels");
  gst_message_parse_warning (msg, &error, NULL);
  fail_unless (strstr (error->message, "Ignoring labels") != NULL, "%s",
      error->message);
  fail_unless (strstr (error->message, "testcard-git") != NULL, "%s",
      error->message);
  g_error_free (error);
  gst_message_unref (msg);
  /* once per label set */
  fail_unless (gst_bus_pop_filtered (f.bus, GST_MESSAGE_WARNING) == NULL);
  push_eos (&f);
  fixture_clear (&f);
}

GST_END_TEST;

/* ---------------------------------------------------------------- other models */

/* The decoder-only VLMs of the fixtures caption through the element from
 * their folders: fed the golden clip's frames (frames_u8) and prompt, with
 * one slot per frame, the caption is the golden greedy_ids as the engine's
 * tokenizer decodes them. Both run with the element's f32 RoPE: the
 * OneVision golden was made with bf16-rounded RoPE frequencies, which moves
 * its logits by ~1e-4 of their range but not its greedy ids. */
static const gchar *generative_fixtures[] = {
  "video-llava-tiny", "llava-onevision-qwen2-tiny",
};

/* A string member of a golden.json (g_free). */
static gchar *
golden_json_string (const gchar * dir, const gchar * key)
{
  gchar *path = g_build_filename (dir, "golden.json", NULL), *value;
  JsonParser *parser = json_parser_new ();
  GError *error = NULL;

  fail_unless (json_parser_load_from_file (parser, path, &error), "%s: %s",
      path, error ? error->message : "");
  value = g_strdup (json_object_get_string_member (json_node_get_object
          (json_parser_get_root (parser)), key));
  fail_unless (value != NULL, "%s has no \"%s\"", path, key);
  g_object_unref (parser);
  g_free (path);
  return value;
}

/* Pushes packed-RGB `frames` (all of one size) as one clip: one slot per
 * frame, FPS apart. */
static void
push_rgb_frames (Fixture * f, const VlmFrame * frames, gint n_frames)
{
  GstVideoInfo info;
  GstCaps *caps;
  gint i, y;

  set_video_caps (f, "RGB", frames[0].width, frames[0].height);
  caps = gst_pad_get_current_caps (f->video->srcpad);
  gst_video_info_from_caps (&info, caps);
  gst_caps_unref (caps);
  for (i = 0; i < n_frames; i++) {
    GstBuffer *buffer = gst_buffer_new_allocate (NULL,
        GST_VIDEO_INFO_SIZE (&info), NULL);
    GstVideoFrame vframe;

    gst_video_frame_map (&vframe, &info, buffer, GST_MAP_WRITE);
    for (y = 0; y < frames[i].height; y++)
      memcpy ((guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&vframe, 0) +
          y * GST_VIDEO_FRAME_PLANE_STRIDE (&vframe, 0),
          frames[i].planes[0] + y * frames[i].strides[0],
          3 * frames[i].width);
    gst_video_frame_unmap (&vframe);
    GST_BUFFER_PTS (buffer) = f->next_frame * GST_SECOND / FPS;
    GST_BUFFER_DURATION (buffer) = FRAME_DURATION;
    f->next_frame++;
    fail_unless_equals_int (gst_harness_push (f->video, buffer), GST_FLOW_OK);
    drop_video (f);
  }
}

/* Runs the model in `dir` on one clip of packed-RGB `frames` with `prompt`
 * and max-new-tokens `max_new`; checks that text_src carries the caption
 * and returns the caption message (unref). */
static GstMessage *
caption_rgb_clip (const gchar * dir, const VlmFrame * frames, gint n_frames,
    const gchar * prompt, gint max_new)
{
  gchar *props = g_strdup_printf ("model=%s frames-per-clip=%d "
      "clip-duration=%" G_GUINT64_FORMAT " max-new-tokens=%d", dir, n_frames,
      (guint64) n_frames * FRAME_DURATION, max_new);
  GstBuffer *buffer;
  GstMessage *msg;
  gchar *text;
  Fixture f;

  fixture_init (&f, "text/x-raw,format=utf8", FALSE, props);
  /* the prompt applies from the next clip, so it may come after start */
  g_object_set (f.element, "prompt", prompt, NULL);
  push_rgb_frames (&f, frames, n_frames);
  push_eos (&f);

  msg = wait_caption_message (&f);
  buffer = gst_harness_pull (f.text);
  fail_unless (buffer != NULL, "no caption on text_src");
  text = buffer_text (buffer);
  fail_unless_equals_string (text,
      gst_structure_get_string (gst_message_get_structure (msg), "text"));
  g_free (text);
  gst_buffer_unref (buffer);
  fixture_clear (&f);
  g_free (props);
  return msg;
}

GST_START_TEST (test_generative_models)
{
  gchar *rel = g_build_filename ("fixtures", generative_fixtures[__i__], NULL);
  gchar *dir = shared_path (rel), *prompt, *golden, *want;
  VlmSafetensors *gold;
  VlmTokenizer *tok;
  VlmFrame *frames;
  const GstStructure *s;
  GstMessage *msg;
  gint64 n_want;
  gint *want_ids, n_tokens, n_frames;
  GError *error = NULL;

  prompt = golden_json_string (dir, "prompt");
  golden = g_build_filename (rel, "golden.safetensors", NULL);
  gold = vt_open_golden (golden);
  frames = vt_golden_frames (gold, &n_frames);
  want_ids = vt_tensor_int (gold, "greedy_ids", &n_want);
  tok = vlm_tokenizer_load (dir, &error);
  fail_unless (tok != NULL, "%s", error ? error->message : dir);
  want = vlm_tokenizer_decode (tok, want_ids, (gint) n_want, TRUE);

  msg = caption_rgb_clip (dir, frames, n_frames, prompt, (gint) n_want);
  s = gst_message_get_structure (msg);
  fail_unless_equals_string (gst_structure_get_string (s, "model"),
      generative_fixtures[__i__]);
  fail_unless_equals_string (gst_structure_get_string (s, "prompt"), prompt);
  fail_unless (gst_structure_get_int (s, "n-tokens", &n_tokens));
  fail_unless_equals_int (n_tokens, (gint) n_want);
  fail_unless_equals_string (gst_structure_get_string (s, "text"), want);

  gst_message_unref (msg);
  g_free (want);
  vlm_tokenizer_free (tok);
  g_free (want_ids);
  g_free (frames);
  vlm_safetensors_free (gold);
  g_free (golden);
  g_free (prompt);
  g_free (dir);
  g_free (rel);
}

GST_END_TEST;

/* The one-image captioners (BLIP, ViT-GPT2) caption through the element
 * from a fixture folder plus a synthesized tokenizer (vt_captioner_folder):
 * a clip of three frames, the golden's in the middle between black ones,
 * captions to the golden's greedy ids as the folder's tokenizer decodes
 * them, the prompt continued (BLIP's golden prompt is [bos, 5, 6]). */
static const struct
{
  const gchar *fixture, *prompt;
  gint n_prompt;                /* of the golden's greedy_ids */
} captioners[] = {
  { "blip-tiny", VT_CAPTIONER_PROMPT_5_6, 3 },
  { "vit-gpt2-tiny", "", 1 },
};

GST_START_TEST (test_image_captioners)
{
  gchar *dir = vt_captioner_folder (captioners[__i__].fixture, 120);
  gchar *golden = g_build_filename ("fixtures", captioners[__i__].fixture,
      "golden.safetensors", NULL);
  VlmSafetensors *gold = vt_open_golden (golden);
  VlmFrame *frames, clip[3];
  VlmTokenizer *tok;
  const GstStructure *s;
  GstMessage *msg;
  gint64 n_want;
  gint *want_ids, n_tokens, n_frames, n_new;
  guint8 *black;
  gchar *want;
  GError *error = NULL;

  frames = vt_golden_frames (gold, &n_frames);
  black = g_new0 (guint8, frames[0].height * frames[0].strides[0]);
  clip[0] = clip[1] = clip[2] = frames[0];
  clip[0].planes[0] = clip[2].planes[0] = black;
  want_ids = vt_tensor_int (gold, "greedy_ids", &n_want);
  n_new = (gint) n_want - captioners[__i__].n_prompt;
  tok = vlm_tokenizer_load (dir, &error);
  fail_unless (tok != NULL, "%s", error ? error->message : dir);
  want = vlm_tokenizer_decode (tok, want_ids + captioners[__i__].n_prompt,
      n_new, TRUE);

  msg = caption_rgb_clip (dir, clip, 3, captioners[__i__].prompt, n_new);
  s = gst_message_get_structure (msg);
  fail_unless (gst_structure_get_int (s, "n-tokens", &n_tokens));
  fail_unless_equals_int (n_tokens, n_new);
  fail_unless_equals_string (gst_structure_get_string (s, "text"), want);

  gst_message_unref (msg);
  g_free (want);
  vlm_tokenizer_free (tok);
  g_free (want_ids);
  g_free (black);
  g_free (frames);
  vlm_safetensors_free (gold);
  g_free (golden);
  vt_remove_folder (dir);
  g_free (dir);
}

GST_END_TEST;

/* A SmolVLM2 folder (the tiny fixture's weights with a processor and a
 * tokenizer written by the test) captions through the element as through
 * vlm_session_caption: same frames (odd-sized, the processor's max_frames
 * of them), same prompt, same text and token count. */
GST_START_TEST (test_smolvlm2_folder)
{
  gchar *dir = vt_smolvlm2_folder ();
  const gchar *prompt = "What happens in the video?";
  const gint w = 60, h = 29, max_new = 6;
  VlmFrame frames[VT_SMOLVLM2_MAX_FRAMES];
  guint8 *rgb[VT_SMOLVLM2_MAX_FRAMES];
  guint32 seed = 1;
  VlmModel *model;
  VlmSession *session;
  VlmGenParams params;
  VlmCaption want;
  const GstStructure *s;
  GstMessage *msg;
  GError *error = NULL;
  gint f, i, n_tokens;

  for (f = 0; f < VT_SMOLVLM2_MAX_FRAMES; f++) {
    rgb[f] = g_new (guint8, w * h * 3);
    for (i = 0; i < w * h * 3; i++) {
      seed = seed * 1664525u + 1013904223u;
      rgb[f][i] = seed >> 24;
    }
    memset (&frames[f], 0, sizeof (VlmFrame));
    frames[f].format = VLM_PIXEL_RGB;
    frames[f].width = w;
    frames[f].height = h;
    frames[f].planes[0] = rgb[f];
    frames[f].strides[0] = w * 3;
  }
  model = vlm_model_load (dir, NULL, &error);
  fail_unless (model != NULL, "%s", error ? error->message : dir);
  fail_unless_equals_int (vlm_model_get_frames_per_clip (model),
      VT_SMOLVLM2_MAX_FRAMES);
  session = vlm_session_new (model, &error);
  fail_unless (session != NULL, "%s", error ? error->message : dir);
  params = vlm_gen_default_params (model);
  params.max_new_tokens = max_new;
  fail_unless (vlm_session_caption (session, frames, VT_SMOLVLM2_MAX_FRAMES,
          prompt, &params, NULL, NULL, &want, &error), "%s",
      error ? error->message : "caption failed");
  fail_unless (want.n_tokens > 0);

  msg = caption_rgb_clip (dir, frames, VT_SMOLVLM2_MAX_FRAMES, prompt,
      max_new);
  s = gst_message_get_structure (msg);
  fail_unless (gst_structure_get_int (s, "n-tokens", &n_tokens));
  fail_unless_equals_int (n_tokens, want.n_tokens);
  fail_unless_equals_string (gst_structure_get_string (s, "text"), want.text);

  gst_message_unref (msg);
  vlm_caption_clear (&want);
  vlm_session_free (session);
  vlm_model_unref (model);
  for (f = 0; f < VT_SMOLVLM2_MAX_FRAMES; f++)
    g_free (rgb[f]);
  vt_remove_folder (dir);
  g_free (dir);
}

GST_END_TEST;

static Suite *
vlmcaption_suite (void)
{
  Suite *s = suite_create ("vlmcaption");
  TCase *tc = tcase_create ("general");

  tcase_set_timeout (tc, 300);
  suite_add_tcase (s, tc);
  tcase_add_loop_test (tc, test_text_caps, 0, G_N_ELEMENTS (text_formats));
  tcase_add_test (tc, test_caps_change);
  tcase_add_test (tc, test_video_passthrough);
  tcase_add_test (tc, test_meta_message_signal);
  tcase_add_loop_test (tc, test_aligned_video, 0, 2);
  tcase_add_test (tc, test_text_timestamps);
  tcase_add_loop_test (tc, test_gap_events, 0, 2);
  tcase_add_test (tc, test_gap_without_next_clip);
  tcase_add_loop_test (tc, test_tail_reaches_outputs, 0, G_N_ELEMENTS (tails));
  tcase_add_loop_test (tc, test_subtitle_segments, 0, 2);
  tcase_add_loop_test (tc, test_endless_clips, 0, G_N_ELEMENTS (endless));
  tcase_add_test (tc, test_latency_query);
  tcase_add_test (tc, test_prompt_change);
  tcase_add_test (tc, test_prompt_per_clip);
  tcase_add_test (tc, test_model_sharing);
  tcase_add_test (tc, test_bad_model);
  tcase_add_test (tc, test_state_cycles);
  tcase_add_test (tc, test_stop_while_negotiating);
  tcase_add_test (tc, test_flush_while_negotiating);
  tcase_add_test (tc, test_flush_during_inference);
  tcase_add_test (tc, test_offline_drain);
  tcase_add_loop_test (tc, test_drop_policy_slow_model, 0,
      G_N_ELEMENTS (policies));
  tcase_add_test (tc, test_late_captions);
  tcase_add_test (tc, test_tags_per_clip);
  tcase_add_test (tc, test_tags_top_k);
  tcase_add_test (tc, test_tags_need_labels);
  tcase_add_test (tc, test_json_output);
  tcase_add_test (tc, test_labels_on_captioner);
  tcase_add_loop_test (tc, test_generative_models, 0,
      G_N_ELEMENTS (generative_fixtures));
  tcase_add_test (tc, test_smolvlm2_folder);
  tcase_add_loop_test (tc, test_image_captioners, 0, G_N_ELEMENTS (captioners));
  return s;
}

GST_CHECK_MAIN (vlmcaption);
