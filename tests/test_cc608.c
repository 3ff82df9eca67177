/* test_cc608.c — the CEA-608 encoder on its own, read back by the strict
 * decoder of cc608check.h: parity, doubled control codes, PACs, 32-column
 * rows, pop-on pages and flips, roll-up rows, erasing, pacing against the
 * frame rate, flushes. */
#include "gstvlmcc608.h"
#include "cc608check.h"

#define FRAME_30 (GST_SECOND / 30)

/* Feeds frames every `period` from `*rt` up to `until` into the decoder. */
static void
run_frames (GstVlmCc608 * cc, Cc608Check * d, GstClockTime * rt,
    GstClockTime until, GstClockTime period, guint * n_pairs)
{
  guint8 t[3];

  for (; *rt < until; *rt += period)
    if (gst_vlm_cc608_next (cc, *rt, t)) {
      cc608_triplet (d, t, *rt);
      if (n_pairs)
        (*n_pairs)++;
    }
}

/* Encodes one caption of `duration` in `mode` from running time 0 and
 * decodes the frames of 30 fps up to `until`; *rt is where it stopped. */
static void
encode_one (GstVlmCc608 * cc, Cc608Check * d, GstVlmCcMode mode,
    const gchar * text, GstClockTime duration, GstClockTime until,
    GstClockTime * rt)
{
  gst_vlm_cc608_init (cc, mode);
  cc608_init (d);
  gst_vlm_cc608_caption (cc, text, duration);
  *rt = 0;
  run_frames (cc, d, rt, until, FRAME_30, NULL);
}

/* "text@ms" of shown[i], split: the text, and the ms in *ms. */
static gchar *
shown_at (Cc608Check * d, guint i, guint64 * ms)
{
  const gchar *s = g_ptr_array_index (d->shown, i);
  const gchar *at = strrchr (s, '@');

  *ms = g_ascii_strtoull (at + 1, NULL, 10);
  return g_strndup (s, at - s);
}

static void
test_pop_on_short (void)
{
  GstVlmCc608 cc;
  Cc608Check d;
  GstClockTime rt;
  guint64 ms;
  gchar *text;

  encode_one (&cc, &d, GST_VLM_CC_POP_ON, "television color bars",
      GST_SECOND, GST_SECOND, &rt);
  /* on the bottom row, centred: 21 columns from column 5 */
  {
    gchar *row = cc608_row_text (d.mem[0][14]);

    g_assert_cmpstr (row, ==, "television color bars");
    g_assert_cmpuint (d.mem[0][14][4], ==, 0);
    g_assert_cmpuint (d.mem[0][14][5], ==, 't');
    g_free (row);
  }
  run_frames (&cc, &d, &rt, 3 * GST_SECOND, FRAME_30, NULL);
  g_assert_null (d.error);
  /* shown once whole, erased after its second */
  g_assert_cmpuint (d.shown->len, ==, 2);
  text = shown_at (&d, 0, &ms);
  g_assert_cmpstr (text, ==, "television color bars");
  /* RCL, ENM, PAC, TO (column 5 of 32: centred), each twice, and 11 text
   * pairs go before the EOC, the 20th pair, one per frame */
  g_assert_cmpuint (ms, ==, 19 * FRAME_30 / GST_MSECOND);
  g_free (text);
  text = shown_at (&d, 1, &ms);
  g_assert_cmpstr (text, ==, "");
  g_assert_cmpuint (ms, >=, 19 * FRAME_30 / GST_MSECOND + 1000);
  /* counted from the pair that ends the page: two frames after */
  g_assert_cmpuint (ms, <=, 19 * FRAME_30 / GST_MSECOND + 1000 + 2 * 34);
  g_free (text);
  gst_vlm_cc608_clear (&cc);
  cc608_free (&d);
}

/* Accents, symbols, quotes and ASCII that 608 spells otherwise, over
 * several pages of 4 rows of at most 32 columns. */
static void
test_pop_on_pages (void)
{
  const gchar *text = "Crème brûlée, jalapeño & piñata — “quoted” {braces} "
      "~tilde~ *star* back\\slash under_score 50% ½ ♪ über Straße ©2026 "
      "Ça va? ¡Olé! «guillemets» Øresund Åland a_very_long_identifier_"
      "that_runs_past_one_row_of_captions end.";
  GstVlmCc608 cc;
  Cc608Check d;
  GstClockTime rt;
  GString *all = g_string_new (NULL);
  guint64 ms, last_ms = 0;
  gchar **words, *joined;

  encode_one (&cc, &d, GST_VLM_CC_POP_ON, text, 8 * GST_SECOND,
      20 * GST_SECOND, &rt);
  g_assert_null (d.error);
  /* pages, then the erase */
  g_assert_cmpuint (d.shown->len, >=, 3);
  for (guint i = 0; i + 1 < d.shown->len; i++) {
    gchar *page = shown_at (&d, i, &ms);

    g_assert_cmpstr (page, !=, "");
    g_assert_cmpuint (ms, >=, last_ms);
    /* later pages wait for the earlier one's share of the 8 s */
    if (i > 0)
      g_assert_cmpuint (ms - last_ms, >=, 8000 / (d.shown->len - 1) - 1);
    last_ms = ms;
    g_string_append_printf (all, "%s%s", i ? " " : "", page);
    g_free (page);
  }
  /* the long word runs on across rows; the rows are joined by spaces, so
   * compare with the words put back together */
  words = g_strsplit (text, " ", -1);
  joined = g_strjoinv (" ", words);
  {
    gchar **got = g_strsplit (all->str, " ", -1);
    gchar *flat_got = g_strjoinv ("", got), **want = g_strsplit (joined, " ",
        -1);
    gchar *flat_want = g_strjoinv ("", want);

    g_assert_cmpstr (flat_got, ==, flat_want);
    g_strfreev (got);
    g_strfreev (want);
    g_free (flat_got);
    g_free (flat_want);
  }
  g_strfreev (words);
  g_free (joined);
  g_string_free (all, TRUE);
  gst_vlm_cc608_clear (&cc);
  cc608_free (&d);
}

/* What 608 cannot spell becomes GLib's transliteration. */
static void
test_transliteration (void)
{
  GstVlmCc608 cc;
  Cc608Check d;
  GstClockTime rt;
  guint64 ms;
  gchar *text;

  encode_one (&cc, &d, GST_VLM_CC_POP_ON, "Łódź ✓ `tick`", GST_SECOND,
      GST_SECOND, &rt);
  g_assert_null (d.error);
  g_assert_cmpuint (d.shown->len, >=, 1);
  text = shown_at (&d, 0, &ms);
  /* ó stays (608 has it), Ł ź ✓ are GLib's ASCII, ` an apostrophe */
  g_assert_cmpstr (text, ==, "Lódz ? 'tick'");
  g_free (text);
  gst_vlm_cc608_clear (&cc);
  cc608_free (&d);
}

static void
test_roll_up (void)
{
  const gchar *captions[] = { "a plain red screen",
    "television color bars with a long caption that needs two rows",
    "the end"
  };
  GstVlmCc608 cc;
  Cc608Check d;
  GstClockTime rt = 0;
  GString *all = g_string_new (NULL);

  gst_vlm_cc608_init (&cc, GST_VLM_CC_ROLL_UP);
  cc608_init (&d);
  for (guint i = 0; i < G_N_ELEMENTS (captions); i++) {
    gst_vlm_cc608_caption (&cc, captions[i], 2 * GST_SECOND);
    run_frames (&cc, &d, &rt, (i + 1) * 3 * GST_SECOND, FRAME_30, NULL);
  }
  run_frames (&cc, &d, &rt, rt + 3 * GST_SECOND, FRAME_30, NULL);
  g_assert_null (d.error);
  g_assert_cmpuint (d.roll_rows, ==, 3);
  /* each row once, in order, as it scrolled or was erased; the erases
   * (every caption is up 2 s of its 3) in between */
  for (guint i = 0; i < d.shown->len; i++) {
    guint64 ms;
    gchar *t = shown_at (&d, i, &ms);

    if (*t)
      g_string_append_printf (all, "%s%s", all->len ? "|" : "", t);
    g_free (t);
  }
  g_assert_cmpstr (all->str, ==, "a plain red screen|television color bars "
      "with a|long caption that needs two rows|the end");
  g_string_free (all, TRUE);
  gst_vlm_cc608_clear (&cc);
  cc608_free (&d);
}

/* One pair per 1/29.97 s whatever the frame rate; at most one per frame. */
static void
test_pacing (void)
{
  const guint rates[] = { 24, 25, 30, 50, 60, 120 };

  for (guint i = 0; i < G_N_ELEMENTS (rates); i++) {
    GstVlmCc608 cc;
    Cc608Check d;
    GstClockTime rt = 0;
    guint n = 0, want = MIN (rates[i], 30);

    gst_vlm_cc608_init (&cc, GST_VLM_CC_POP_ON);
    cc608_init (&d);
    run_frames (&cc, &d, &rt, 10 * GST_SECOND, GST_SECOND / rates[i], &n);
    g_assert_null (d.error);
    /* 10 s: 300 pairs at 29.97 Hz; fewer only where there are fewer frames */
    g_assert_cmpuint (n, >=, 10 * want - (want == 30 ? 2 : 0));
    g_assert_cmpuint (n, <=, 10 * want + 1);
    g_assert_cmpuint (d.nulls, ==, n);
    gst_vlm_cc608_clear (&cc);
    cc608_free (&d);
  }
}

/* A newer caption drops the pages of an older one not started; a flush
 * drops everything and erases both memories. */
static void
test_newest_wins_and_reset (void)
{
  GstVlmCc608 cc;
  Cc608Check d;
  GstClockTime rt = 0;
  guint64 ms;
  gchar *text;

  gst_vlm_cc608_init (&cc, GST_VLM_CC_POP_ON);
  cc608_init (&d);
  gst_vlm_cc608_caption (&cc, "first", GST_SECOND);
  gst_vlm_cc608_caption (&cc, "second", GST_SECOND);
  run_frames (&cc, &d, &rt, GST_SECOND / 2, FRAME_30, NULL);
  g_assert_null (d.error);
  g_assert_cmpuint (d.shown->len, ==, 1);
  text = shown_at (&d, 0, &ms);
  g_assert_cmpstr (text, ==, "second");
  g_free (text);

  gst_vlm_cc608_caption (&cc, "never shown", GST_SECOND);
  gst_vlm_cc608_reset (&cc);
  /* after a flush running time starts again */
  rt = 0;
  run_frames (&cc, &d, &rt, GST_SECOND, FRAME_30, NULL);
  g_assert_null (d.error);
  g_assert_cmpuint (d.shown->len, ==, 2);
  text = shown_at (&d, 1, &ms);
  g_assert_cmpstr (text, ==, "");
  g_free (text);
  for (guint r = 0; r < CC608_ROWS; r++)
    for (guint c = 0; c < CC608_COLS; c++)
      g_assert_cmpuint (d.mem[0][r][c] | d.mem[1][r][c], ==, 0);
  gst_vlm_cc608_clear (&cc);
  cc608_free (&d);
}

/* The decoder is strict: it catches what a broken encoder would send. */
static void
test_checker_catches (void)
{
  Cc608Check d;

  cc608_init (&d);
  cc608_pair (&d, 0x94, 0x20, 0);       /* RCL, parity right */
  cc608_pair (&d, 0x94, 0x20, 0);
  cc608_pair (&d, 0x41, 0x80, 0);       /* 'A' with even parity */
  g_assert_nonnull (d.error);
  g_assert_true (strstr (d.error, "parity") != NULL);
  cc608_free (&d);

  cc608_init (&d);
  cc608_pair (&d, 0x94, 0x20, 0);       /* RCL once only */
  cc608_pair (&d, 0xc1, 0x80, 0);
  g_assert_nonnull (d.error);
  g_assert_true (strstr (d.error, "twice") != NULL);
  cc608_free (&d);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cc608/pop-on-short", test_pop_on_short);
  g_test_add_func ("/cc608/pop-on-pages", test_pop_on_pages);
  g_test_add_func ("/cc608/transliteration", test_transliteration);
  g_test_add_func ("/cc608/roll-up", test_roll_up);
  g_test_add_func ("/cc608/pacing", test_pacing);
  g_test_add_func ("/cc608/newest-wins-and-reset", test_newest_wins_and_reset);
  g_test_add_func ("/cc608/checker-catches", test_checker_catches);
  return g_test_run ();
}
