/* test_text.c — the text_src writers on their own (gst/gstvlmtext.h): any
 * caption text and any timeline give files the strict readers of
 * subtitlecheck.h accept, with the caption's lines read back unchanged. */
#include "gstvlmtext.h"
#include "subtitlecheck.h"

#define MS GST_MSECOND

/* Captions a model could write that once broke the files: blank lines
 * (an empty cue and a stray block), CR/LF, markup characters and the cue
 * arrow, leading and trailing blanks. Each with its lines as read back. */
static const struct
{
  const gchar *text, *lines;
} awkward[] = {
  {"a red screen", "a red screen"},
  {"two\n\nparagraphs\n", "two\nparagraphs"},
  {"dos\r\nlines\rmac", "dos\nlines\nmac"},
  {"  padded  \n\t tab", "padded\ntab"},
  {"fish & chips <b>bold</b> a > b", "fish & chips <b>bold</b> a > b"},
  {"the arrow --> here", NULL},         /* per format, below */
  {"1\n00:00:00,000 --> 00:00:01,000", NULL},
};

static GString *
render_all (GstVlmTextWriter * w, GstClockTime * t)
{
  GString *file = g_string_new (NULL);

  for (guint i = 0; i < G_N_ELEMENTS (awkward); i++) {
    GString *cue = gst_vlm_text_writer_render (w, awkward[i].text, NULL, *t,
        *t + GST_SECOND);

    g_assert_nonnull (cue);
    g_string_append_len (file, cue->str, cue->len);
    g_string_free (cue, TRUE);
    *t += GST_SECOND;
  }
  return file;
}

static void
check_awkward (GstVlmCaptionTextFormat format)
{
  gboolean vtt = format == GST_VLM_CAPTION_TEXT_VTT;
  GstVlmTextWriter w = { format };
  GstClockTime t = 0;
  GString *file;
  GPtrArray *cues;
  gchar *why;

  gst_vlm_text_writer_reset (&w);
  file = render_all (&w, &t);
  cues = vt_parse_subtitles (file->str, vtt, &why);
  g_assert_cmpstr (why, ==, NULL);
  g_assert_cmpuint (cues->len, ==, G_N_ELEMENTS (awkward));
  for (guint i = 0; i < cues->len; i++) {
    VtCue *cue = g_ptr_array_index (cues, i);

    g_assert_cmpuint (cue->start_ms, ==, i * 1000);
    g_assert_cmpuint (cue->end_ms, ==, i * 1000 + 1000);
    if (awkward[i].lines)
      g_assert_cmpstr (cue->text, ==, awkward[i].lines);
  }
  /* the arrow: WebVTT escapes '>', SubRip has no escapes and shortens it */
  g_assert_cmpstr (((VtCue *) g_ptr_array_index (cues, 5))->text, ==,
      vtt ? "the arrow --> here" : "the arrow -> here");
  g_assert_cmpstr (((VtCue *) g_ptr_array_index (cues, 6))->text, ==,
      vtt ? "1\n00:00:00,000 --> 00:00:01,000" :
      "1\n00:00:00,000 -> 00:00:01,000");
  if (vtt)
    g_assert_nonnull (strstr (file->str,
            "fish &amp; chips &lt;b>bold&lt;/b> a > b\n"));
  if (vtt)
    g_assert_nonnull (strstr (file->str, "the arrow --&gt; here\n"));
  g_ptr_array_unref (cues);
  g_string_free (file, TRUE);
}

static void
test_awkward_srt (void)
{
  check_awkward (GST_VLM_CAPTION_TEXT_SRT);
}

static void
test_awkward_vtt (void)
{
  check_awkward (GST_VLM_CAPTION_TEXT_VTT);
}

/* Nothing to show: no cue, no number used. */
static void
test_blank_caption (void)
{
  GstVlmTextWriter w = { GST_VLM_CAPTION_TEXT_SRT };
  GString *cue;

  gst_vlm_text_writer_reset (&w);
  g_assert_null (gst_vlm_text_writer_render (&w, " \n\r\n\t", NULL, 0,
          GST_SECOND));
  g_assert_null (gst_vlm_text_writer_render (&w, "", NULL, 0, GST_SECOND));
  cue = gst_vlm_text_writer_render (&w, "x", NULL, 0, GST_SECOND);
  g_assert_cmpstr (cue->str, ==, "1\n00:00:00,000 --> 00:00:01,000\nx\n\n");
  g_string_free (cue, TRUE);
  /* plain text keeps its white space: it is what the model wrote */
  w.format = GST_VLM_CAPTION_TEXT_UTF8;
  cue = gst_vlm_text_writer_render (&w, "\n\n", NULL, 0, GST_SECOND);
  g_assert_cmpstr (cue->str, ==, "\n\n");
  g_string_free (cue, TRUE);
  w.format = GST_VLM_CAPTION_TEXT_PANGO;
  cue = gst_vlm_text_writer_render (&w, "a & <b>", NULL, 0, GST_SECOND);
  g_assert_cmpstr (cue->str, ==, "a &amp; &lt;b&gt;");
  g_string_free (cue, TRUE);
}

/* Times that go back (a flush restarts the running time), overlap, or
 * have no end: the file stays monotonic, and one WebVTT header. */
static void
test_timeline (void)
{
  static const struct
  {
    GstClockTime start, end;
    gboolean flush;             /* before this cue */
    guint64 want_start, want_end;       /* ms; 0, 0: no cue */
  } steps[] = {
    {0, 1000 * MS, FALSE, 0, 1000},
    {500 * MS, 1500 * MS, FALSE, 1000, 1500},   /* overlaps: starts later */
    {1200 * MS, 1400 * MS, FALSE, 0, 0},        /* hidden: no cue */
    {0, 1000 * MS, TRUE, 1500, 2500},   /* a seek back to 0 */
    {1000 * MS, GST_CLOCK_TIME_NONE, FALSE, 2500, 3500},  /* unknown end: 1 s */
    {1999999999, 2999999999, FALSE, 3500, 4500},        /* rounded to ms */
  };
  GstVlmTextWriter w = { GST_VLM_CAPTION_TEXT_VTT };
  GString *file = g_string_new (NULL);
  GPtrArray *cues;
  guint i, n = 0;
  gchar *why;

  gst_vlm_text_writer_reset (&w);
  for (i = 0; i < G_N_ELEMENTS (steps); i++) {
    GString *cue;

    if (steps[i].flush)
      gst_vlm_text_writer_flush (&w);
    cue = gst_vlm_text_writer_render (&w, "x", NULL, steps[i].start,
        steps[i].end);
    g_assert_true ((cue != NULL) == (steps[i].want_end != 0));
    if (cue)
      g_string_append (file, cue->str);
    if (cue)
      g_string_free (cue, TRUE);
  }
  cues = vt_parse_subtitles (file->str, TRUE, &why);
  g_assert_cmpstr (why, ==, NULL);
  for (i = 0; i < G_N_ELEMENTS (steps); i++) {
    VtCue *cue;

    if (!steps[i].want_end)
      continue;
    cue = g_ptr_array_index (cues, n++);
    g_assert_cmpuint (cue->start_ms, ==, steps[i].want_start);
    g_assert_cmpuint (cue->end_ms, ==, steps[i].want_end);
  }
  g_assert_cmpuint (n, ==, cues->len);
  g_ptr_array_unref (cues);
  g_string_free (file, TRUE);
}

/* JSON: one object and a newline, strings escaped, the message's fields. */
static void
test_json (void)
{
  GstStructure *s = gst_structure_new ("vlmcaption",
      "text", G_TYPE_STRING, "say \"hi\"\n\\ \x01",
      "start", G_TYPE_UINT64, (guint64) 1000000000,
      "end", G_TYPE_UINT64, (guint64) 2000000000,
      "model", G_TYPE_STRING, "m", "prompt", G_TYPE_STRING, "",
      "n-tokens", G_TYPE_INT, 5, "inference-ms", G_TYPE_DOUBLE, 12.5, NULL);
  GstVlmTextWriter w = { GST_VLM_CAPTION_TEXT_JSON };
  GString *out;

  gst_vlm_text_writer_reset (&w);
  out = gst_vlm_text_writer_render (&w, "say \"hi\"\n\\ \x01", s, 0,
      GST_SECOND);
  g_assert_cmpstr (out->str, ==, "{\"start\":1000000000,\"end\":2000000000,"
      "\"text\":\"say \\\"hi\\\"\\n\\\\ \\u0001\",\"tokens\":5,"
      "\"model\":\"m\",\"prompt\":\"\",\"inference_ms\":12.500}\n");
  g_string_free (out, TRUE);
  gst_structure_free (s);
}

/* The readers themselves refuse what the element once wrote. */
static void
test_readers_refuse (void)
{
  static const struct
  {
    const gchar *file;
    gboolean vtt;
  } bad[] = {
    {"1\n00:00:00,000 --> 00:00:01,000\na\n\nb\n\n", FALSE},    /* blank in cue */
    {"1\n00:00:00,000 --> 00:00:01,000\na\n\n1\n00:00:01,000 --> "
          "00:00:02,000\nb\n\n", FALSE},        /* numbering restarts */
    {"1\n00:00:01,000 --> 00:00:02,000\na\n\n2\n00:00:00,000 --> "
          "00:00:01,000\nb\n\n", FALSE},        /* time goes back */
    {"WEBVTT\n\n00:00:00.000 --> 00:00:01.000\na & b\n\n", TRUE},
    {"WEBVTT\n\n00:00:00.000 --> 00:00:01.000\na\n\nWEBVTT\n\n", TRUE},
    {"WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n\n", TRUE},   /* empty cue */
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    gchar *why;
    GPtrArray *cues = vt_parse_subtitles (bad[i].file, bad[i].vtt, &why);

    g_assert_null (cues);
    g_assert_nonnull (why);
    g_test_message ("refused %u: %s", i, why);
    g_free (why);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/text/awkward-srt", test_awkward_srt);
  g_test_add_func ("/text/awkward-vtt", test_awkward_vtt);
  g_test_add_func ("/text/blank-caption", test_blank_caption);
  g_test_add_func ("/text/timeline", test_timeline);
  g_test_add_func ("/text/json", test_json);
  g_test_add_func ("/text/readers-refuse", test_readers_refuse);
  return g_test_run ();
}
