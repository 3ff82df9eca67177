/* test_element_pipeline.c — the test card through a real pipeline.
 *
 * videotestsrc pattern=smpte ! vlmcaption ! fakesink: "television color
 * bars" must come out on text_src, in the meta and on the bus. Needs the
 * system's videotestsrc (gst-plugins-base). */
#include <gst/check/gstcheck.h>
#include <gstvlmcaption/vlmcaptionmeta.h>

#define BARS "television color bars"

typedef struct
{
  GMutex lock;
  GPtrArray *texts;             /* from text_src buffers */
  GPtrArray *metas;             /* from video buffer metas */
} Seen;

static GstPadProbeReturn
on_text (GstPad * pad, GstPadProbeInfo * info, Seen * seen)
{
  GstMapInfo map;
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER (info);

  gst_buffer_map (buffer, &map, GST_MAP_READ);
  g_mutex_lock (&seen->lock);
  g_ptr_array_add (seen->texts, g_strndup ((gchar *) map.data, map.size));
  g_mutex_unlock (&seen->lock);
  gst_buffer_unmap (buffer, &map);
  return GST_PAD_PROBE_OK;
}

static GstPadProbeReturn
on_video (GstPad * pad, GstPadProbeInfo * info, Seen * seen)
{
  const GstStructure *s =
      gst_vlm_caption_meta_get (GST_PAD_PROBE_INFO_BUFFER (info));

  if (s) {
    g_mutex_lock (&seen->lock);
    g_ptr_array_add (seen->metas, g_strdup (gst_structure_get_string (s,
                "text")));
    g_mutex_unlock (&seen->lock);
  }
  return GST_PAD_PROBE_OK;
}

GST_START_TEST (test_testcard_pipeline)
{
  Seen seen = { {0}, g_ptr_array_new_with_free_func (g_free),
    g_ptr_array_new_with_free_func (g_free)
  };
  GstElement *pipeline, *caption;
  GstMessage *msg;
  GstPad *pad;
  GError *error = NULL;
  guint n_messages = 0, i;

  /* live, so that video keeps flowing after the first caption is ready */
  pipeline = gst_parse_launch ("videotestsrc pattern=smpte is-live=true "
      "num-buffers=75 ! video/x-raw,width=320,height=240,framerate=30/1 ! "
      "vlmcaption name=c latency=10000000000 ! queue ! fakesink sync=true "
      "c.text_src ! queue ! fakesink sync=true", &error);
  fail_unless (pipeline != NULL, "%s", error ? error->message : "");
  caption = gst_bin_get_by_name (GST_BIN (pipeline), "c");
  pad = gst_element_get_static_pad (caption, "text_src");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER,
      (GstPadProbeCallback) on_text, &seen, NULL);
  gst_object_unref (pad);
  pad = gst_element_get_static_pad (caption, "src");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER,
      (GstPadProbeCallback) on_video, &seen, NULL);
  gst_object_unref (pad);

  fail_unless (gst_element_set_state (pipeline, GST_STATE_PLAYING) !=
      GST_STATE_CHANGE_FAILURE);
  for (;;) {
    msg = gst_bus_timed_pop_filtered (GST_ELEMENT_BUS (pipeline),
        60 * GST_SECOND, GST_MESSAGE_ELEMENT | GST_MESSAGE_EOS |
        GST_MESSAGE_ERROR);
    fail_unless (msg != NULL, "timed out");
    fail_if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR);
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS) {
      gst_message_unref (msg);
      break;
    }
    if (gst_message_has_name (msg, "vlmcaption")) {
      fail_unless_equals_string (gst_structure_get_string
          (gst_message_get_structure (msg), "text"), BARS);
      n_messages++;
    }
    gst_message_unref (msg);
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);

  /* 2.5 s: two full clips and a half one at EOS, not one dropped */
  fail_unless_equals_int (n_messages, 3);
  fail_unless_equals_int (seen.texts->len, 3);
  for (i = 0; i < seen.texts->len; i++)
    fail_unless_equals_string (g_ptr_array_index (seen.texts, i), BARS);
  /* the last caption comes at EOS, after the last video buffer */
  fail_unless_equals_int (seen.metas->len, 2);
  for (i = 0; i < seen.metas->len; i++)
    fail_unless_equals_string (g_ptr_array_index (seen.metas, i), BARS);

  gst_object_unref (caption);
  gst_object_unref (pipeline);
  g_ptr_array_unref (seen.texts);
  g_ptr_array_unref (seen.metas);
}

GST_END_TEST;

static Suite *
vlmcaption_pipeline_suite (void)
{
  Suite *s = suite_create ("vlmcaption-pipeline");
  TCase *tc = tcase_create ("general");

  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_testcard_pipeline);
  return s;
}

GST_CHECK_MAIN (vlmcaption_pipeline);
