/* test_sampler.c — the clip sampler's clock arithmetic at the edges of the
 * clock's range, where a sum that wraps opens a clip per nanosecond. */
#include "gstvlmsampler.h"

#define MS GST_MSECOND

typedef struct {
  GstVlmSampler sampler;
  GstVideoInfo info;
  GQueue done;
} Fixture;

static void
fixture_init (Fixture * f, guint n_frames, GstClockTime duration,
    GstClockTime stride)
{
  gst_video_info_set_format (&f->info, GST_VIDEO_FORMAT_RGB, 2, 2);
  gst_vlm_sampler_init (&f->sampler, n_frames, duration, stride);
  g_queue_init (&f->done);
}

static void
fixture_clear (Fixture * f)
{
  gst_vlm_sampler_reset (&f->sampler);
  g_queue_clear_full (&f->done, (GDestroyNotify) gst_vlm_clip_unref);
}

/* Frames every 40 ms from 0 to `until`, inclusive, with never more than
 * `max_open` clips open. */
static void
push_frames (Fixture * f, GstClockTime until, guint max_open)
{
  for (GstClockTime rt = 0; rt <= until; rt += 40 * MS) {
    GstBuffer *frame =
        gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (&f->info), NULL);
    gst_vlm_sampler_push (&f->sampler, rt, rt + 40 * MS, frame, &f->info,
        &f->done);
    gst_buffer_unref (frame);
    g_assert_cmpuint (f->sampler.open.length, <=, max_open);
  }
}

/* caption-interval = G_MAXUINT64: one clip, then none ever again. */
static void
test_endless_interval (void)
{
  Fixture f;
  GstVlmClip *clip;

  fixture_init (&f, 4, GST_SECOND, G_MAXUINT64);
  push_frames (&f, 3 * GST_SECOND, 1);
  g_assert_cmpuint (f.done.length, ==, 1);
  g_assert_cmpuint (f.sampler.open.length, ==, 0);
  clip = g_queue_peek_head (&f.done);
  g_assert_cmpuint (clip->start_rt, ==, 0);
  g_assert_cmpuint (clip->end_rt, ==, GST_SECOND);
  g_assert_cmpuint (clip->n_filled, ==, 4);
  g_assert_cmpuint (f.sampler.next_start, ==, GST_CLOCK_TIME_NONE);
  fixture_clear (&f);
}

/* clip-duration = G_MAXUINT64: one clip that ends only at drain, holding
 * the frame of its first slot (the others lie past any running time). */
static void
test_endless_clip (void)
{
  Fixture f;
  GstVlmClip *clip;

  fixture_init (&f, 4, G_MAXUINT64, G_MAXUINT64);
  push_frames (&f, 3 * GST_SECOND, 1);
  g_assert_cmpuint (f.done.length, ==, 0);
  g_assert_cmpuint (f.sampler.open.length, ==, 1);
  clip = g_queue_peek_head (&f.sampler.open);
  g_assert_cmpuint (clip->end_rt, ==, GST_CLOCK_TIME_NONE);
  g_assert_cmpuint (clip->n_filled, ==, 1);
  gst_vlm_sampler_drain (&f.sampler, &f.done);
  g_assert_cmpuint (f.done.length, ==, 1);
  /* it ends with the last frame: 3 s + 40 ms */
  clip = g_queue_peek_head (&f.done);
  g_assert_cmpuint (clip->end_rt, ==, 3 * GST_SECOND + 40 * MS);
  fixture_clear (&f);
}

/* The last partial clip at drain ends at the last frame's end, not at its
 * nominal end (which once reached the text as 2 s for 1.5 s of video); a
 * GAP past the last frame moves that end on. The grid starts again at the
 * next frame. */
static void
test_drain_tail (void)
{
  Fixture f;
  GstVlmClip *clip;

  fixture_init (&f, 4, GST_SECOND, GST_SECOND);
  push_frames (&f, 1460 * MS, 2);       /* the last at 1.44 s, for 40 ms */
  g_assert_cmpuint (f.done.length, ==, 1);
  gst_vlm_sampler_drain (&f.sampler, &f.done);
  g_assert_cmpuint (f.done.length, ==, 2);
  clip = g_queue_peek_tail (&f.done);
  g_assert_cmpuint (clip->start_rt, ==, GST_SECOND);
  g_assert_cmpuint (clip->end_rt, ==, 1480 * MS);
  g_assert_cmpuint (clip->n_filled, ==, 2);     /* slots at 1.0 and 1.25 s */
  g_assert_false (f.sampler.started);

  gst_vlm_sampler_advance (&f.sampler, 1800 * MS, &f.done);
  gst_vlm_sampler_drain (&f.sampler, &f.done);
  g_assert_cmpuint (f.done.length, ==, 2);      /* nothing was open */
  g_assert_cmpuint (f.sampler.reached, ==, 1800 * MS);
  fixture_clear (&f);
}

/* A hole longer than a clip with a stride near the clock's range: the jump
 * to the next clip saturates instead of wrapping to before the hole. */
static void
test_hole_huge_stride (void)
{
  Fixture f;
  GstBuffer *frame;
  GstClockTime late = G_MAXUINT64 / 2 + 10 * GST_SECOND;

  fixture_init (&f, 1, GST_SECOND, G_MAXUINT64 / 2 + GST_SECOND);
  push_frames (&f, 0, 1);
  frame = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (&f.info), NULL);
  gst_vlm_sampler_push (&f.sampler, late, late + 40 * MS, frame, &f.info,
      &f.done);
  gst_buffer_unref (frame);
  /* the first clip closed, the second (at stride) ended before `late`, and
   * the third would start past the clock's range */
  g_assert_cmpuint (f.done.length, ==, 1);
  g_assert_cmpuint (f.sampler.open.length, ==, 0);
  g_assert_cmpuint (f.sampler.next_start, ==, GST_CLOCK_TIME_NONE);
  fixture_clear (&f);
}

/* An ordinary grid still opens a clip per stride: 1 s clips every 500 ms. */
static void
test_overlapping_grid (void)
{
  Fixture f;
  GList *l;
  GstClockTime expect = 0;

  fixture_init (&f, 2, GST_SECOND, 500 * MS);
  push_frames (&f, 3 * GST_SECOND, 2);
  /* clips start at 0, 0.5, ... 3 s */
  gst_vlm_sampler_drain (&f.sampler, &f.done);
  g_assert_cmpuint (f.done.length, ==, 7);
  for (l = f.done.head; l; l = l->next, expect += 500 * MS)
    g_assert_cmpuint (((GstVlmClip *) l->data)->start_rt, ==, expect);
  fixture_clear (&f);
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/sampler/endless-interval", test_endless_interval);
  g_test_add_func ("/sampler/endless-clip", test_endless_clip);
  g_test_add_func ("/sampler/drain-tail", test_drain_tail);
  g_test_add_func ("/sampler/hole-huge-stride", test_hole_huge_stride);
  g_test_add_func ("/sampler/overlapping-grid", test_overlapping_grid);
  return g_test_run ();
}
