/* test_image.c — the image processor: parity with HF's pixel_values on the
 * fixtures, every pixel format, bad frames and bad configs. */
#include "testutil.h"

#include <glib/gstdio.h>
#include <math.h>

#include "image.h"

/* ================================================================ helpers */

static VlmImageProcessor
load_processor (const char *shared_rel, const char *section)
{
  g_autofree char *dir = vt_shared_path (shared_rel);
  VlmImageProcessor proc;
  GError *error = NULL;
  g_assert_true (vlm_image_processor_load (&proc, dir, section, &error));
  g_assert_no_error (error);
  return proc;
}

/* `frames_u8` (F, H, W, 3) of a golden file, borrowed from the map. */
static const uint8_t *
golden_frames (const VlmSafetensors *st, int *f, int *h, int *w)
{
  const VlmTensor *t = vlm_safetensors_find (st, "frames_u8");
  g_assert_nonnull (t);
  g_assert_cmpint (t->dtype, ==, VLM_DTYPE_U8);
  g_assert_cmpint (t->ndim, ==, 4);
  g_assert_cmpint (t->shape[3], ==, 3);
  *f = (int) t->shape[0];
  *h = (int) t->shape[1];
  *w = (int) t->shape[2];
  return t->data;
}

static VlmFrame
rgb_frame (const uint8_t *data, int w, int h, int stride)
{
  return (VlmFrame) { .format = VLM_PIXEL_RGB, .width = w, .height = h,
                      .planes = { data }, .strides = { stride } };
}

/* Runs the processor on one frame into a new [3, out_h, out_w] array. */
static float *
preprocess (const VlmImageProcessor *proc, const VlmFrame *frame)
{
  float *out = g_new (float, 3 * (size_t) proc->out_h * proc->out_w);
  void *scratch = g_malloc (vlm_image_scratch_size (proc, frame->width, frame->height));
  GError *error = NULL;
  g_assert_true (vlm_image_preprocess (proc, frame, out, scratch, &error));
  g_assert_no_error (error);
  g_free (scratch);
  return out;
}

/* The u8 level a normalised value came from (HF's fused float32 constants). */
static double
to_level (const VlmImageProcessor *p, int c, float v)
{
  float k = (float) (1.0 / p->rescale_factor);
  return v * (p->std[c] * k) + p->mean[c] * k;
}

typedef struct {
  int64_t n, exact_float, exact_level;
  double max_level_diff;
} Parity;

static void
parity_add (Parity *s, const VlmImageProcessor *p, int c, float ours, float golden)
{
  long a = lround (to_level (p, c, ours)), b = lround (to_level (p, c, golden));
  s->n++;
  s->exact_float += ours == golden;
  s->exact_level += a == b;
  s->max_level_diff = MAX (s->max_level_diff, fabs ((double) (a - b)));
}

/* Reports the figures. The fixtures promise Pillow's algorithm exact levels
 * on ≥ 99.9 % of values; with torch's weight precision we match every level,
 * and that is what we hold. */
static void
parity_check (const char *what, const Parity *s)
{
  double exact = (double) s->exact_level / s->n;
  g_test_message ("%s: %" G_GINT64_FORMAT " values, %.4f%% exact levels, %.4f%% bit-exact "
                  "floats, max diff %.0f level(s)", what, s->n, 100.0 * exact,
                  100.0 * s->exact_float / s->n, s->max_level_diff);
  g_assert_cmpfloat (exact, ==, 1.0);
  g_assert_cmpfloat (s->max_level_diff, ==, 0.0);
}

/* Golden `tensor` of `fixture` against our frames. `frames_inner`: the
 * golden is (1, F, 3, H, W); otherwise (1, 3, F, H, W) as LanguageBind's. */
static void
check_fixture (const char *fixture, const char *section, const char *tensor,
               gboolean frames_inner)
{
  g_autofree char *dir = g_strdup_printf ("fixtures/%s", fixture);
  g_autofree char *golden_rel = g_strdup_printf ("fixtures/%s/golden.safetensors", fixture);
  VlmImageProcessor proc = load_processor (dir, section);
  VlmSafetensors *st = vt_open_golden (golden_rel);
  int nf, h, w;
  const uint8_t *frames = golden_frames (st, &nf, &h, &w);
  int64_t n;
  float *golden = vt_tensor_f32 (st, tensor, &n);
  size_t hw = (size_t) proc.out_h * proc.out_w;
  g_assert_cmpint (n, ==, (int64_t) nf * 3 * hw);

  Parity s = { 0 };
  for (int f = 0; f < nf; f++) {
    VlmFrame frame = rgb_frame (frames + (size_t) f * h * w * 3, w, h, w * 3);
    g_autofree float *ours = preprocess (&proc, &frame);
    for (int c = 0; c < 3; c++) {
      const float *g = golden + (frames_inner ? ((size_t) f * 3 + c) : ((size_t) c * nf + f)) * hw;
      for (size_t i = 0; i < hw; i++)
        parity_add (&s, &proc, c, ours[c * hw + i], g[i]);
    }
  }
  parity_check (fixture, &s);
  g_free (golden);
  vlm_safetensors_free (st);
}

/* ================================================================ parity */

static void
test_git_video (void)
{
  check_fixture ("git-video-tiny", "image_processor", "pixel_values", TRUE);
}

static void
test_video_llava (void)
{
  check_fixture ("video-llava-tiny", "video_processor", "pixel_values_videos", TRUE);
}

static void
test_llava_onevision (void)
{
  VlmImageProcessor p = load_processor ("fixtures/llava-onevision-qwen2-tiny", "video_processor");
  g_assert_false (p.do_center_crop);   /* squashed to a fixed size, no crop */
  g_assert_cmpint (p.resize_h, ==, 32);
  check_fixture ("llava-onevision-qwen2-tiny", "video_processor", "pixel_values_videos", TRUE);
}

static void
test_languagebind (void)
{
  check_fixture ("languagebind-video-tiny", NULL, "pixel_values", FALSE);
}

/* A squashing bicubic resize (BLIP) and the bilinear filter (ViT). */
static void
test_blip_and_vit (void)
{
  check_fixture ("blip-tiny", NULL, "pixel_values", TRUE);
  VlmImageProcessor vit = load_processor ("fixtures/vit-gpt2-tiny", NULL);
  g_assert_cmpint (vit.resample, ==, VLM_RESAMPLE_BILINEAR);
  check_fixture ("vit-gpt2-tiny", NULL, "pixel_values", TRUE);
}

/* The shipped test-card model: its captions depend on this processor. */
static void
test_testcard_config (void)
{
  g_autofree char *dir = vt_project_path ("models/testcard-git");
  VlmImageProcessor p;
  GError *error = NULL;
  g_assert_true (vlm_image_processor_load (&p, dir, "image_processor", &error));
  g_assert_no_error (error);
  g_assert_cmpstr (p.type, ==, "CLIPImageProcessor");
  g_assert_cmpint (p.shortest_edge, ==, 96);
  g_assert_cmpint (p.resample, ==, VLM_RESAMPLE_BICUBIC);
  g_assert_true (p.do_center_crop && p.do_rescale && p.do_normalize);
  g_assert_cmpint (p.out_h, ==, 96);
  g_assert_cmpint (p.out_w, ==, 96);

  /* a uniform grey frame stays that grey level through resize and crop */
  g_autofree uint8_t *grey = g_malloc (320 * 240 * 3);
  memset (grey, 128, 320 * 240 * 3);
  VlmFrame frame = rgb_frame (grey, 320, 240, 320 * 3);
  g_autofree float *out = preprocess (&p, &frame);
  for (int c = 0; c < 3; c++)
    for (int i = 0; i < 96 * 96; i++)
      g_assert_cmpfloat (fabs (to_level (&p, c, out[c * 96 * 96 + i]) - 128.0), <, 1e-3);
}

/* ================================================================ formats */

/* Frame 0 of the GIT golden, and the processor that made its pixels. */
typedef struct {
  VlmSafetensors *st;
  const uint8_t *rgb;
  int w, h;
  VlmImageProcessor proc;
} Source;

static Source
source_open (void)
{
  Source s = { .st = vt_open_golden ("fixtures/git-video-tiny/golden.safetensors") };
  int f;
  s.rgb = golden_frames (s.st, &f, &s.h, &s.w);
  s.proc = load_processor ("fixtures/git-video-tiny", "image_processor");
  return s;
}

/* The RGB frame repacked as `format` with `stride` ≥ 4·w (padding 0x5a). */
static uint8_t *
repack (const uint8_t *rgb, int w, int h, VlmPixelFormat format, int stride)
{
  uint8_t *buf = g_malloc ((size_t) stride * h);
  memset (buf, 0x5a, (size_t) stride * h);
  gboolean bgr = format == VLM_PIXEL_BGRX || format == VLM_PIXEL_BGRA;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      const uint8_t *s = rgb + ((size_t) y * w + x) * 3;
      uint8_t *d = buf + (size_t) y * stride + (size_t) x * 4;
      d[0] = s[bgr ? 2 : 0];
      d[1] = s[1];
      d[2] = s[bgr ? 0 : 2];
      d[3] = 0xc3;   /* pad/alpha: must be ignored */
    }
  return buf;
}

/* Packed formats with odd strides give exactly the RGB frame's pixels. */
static void
test_packed_formats (void)
{
  Source src = source_open ();
  VlmFrame ref = rgb_frame (src.rgb, src.w, src.h, src.w * 3);
  g_autofree float *expected = preprocess (&src.proc, &ref);
  static const VlmPixelFormat formats[] = { VLM_PIXEL_RGBX, VLM_PIXEL_BGRX, VLM_PIXEL_RGBA,
                                            VLM_PIXEL_BGRA };
  size_t n = 3 * (size_t) src.proc.out_h * src.proc.out_w;
  g_autofree uint8_t *rgb = g_malloc ((size_t) src.w * src.h * 3);
  for (size_t i = 0; i < G_N_ELEMENTS (formats); i++) {
    int stride = src.w * 4 + 13;
    g_autofree uint8_t *buf = repack (src.rgb, src.w, src.h, formats[i], stride);
    VlmFrame f = { .format = formats[i], .width = src.w, .height = src.h,
                   .planes = { buf }, .strides = { stride } };
    g_assert_true (vlm_frame_to_rgb (&f, rgb, NULL));
    g_assert_cmpmem (rgb, (size_t) src.w * src.h * 3, src.rgb, (size_t) src.w * src.h * 3);
    g_autofree float *got = preprocess (&src.proc, &f);
    g_assert_cmpmem (got, n * sizeof (float), expected, n * sizeof (float));
  }
  /* packed RGB with a padded, odd stride */
  int stride = src.w * 3 + 7;
  g_autofree uint8_t *padded = g_malloc0 ((size_t) stride * src.h);
  for (int y = 0; y < src.h; y++)
    memcpy (padded + (size_t) y * stride, src.rgb + (size_t) y * src.w * 3, (size_t) src.w * 3);
  VlmFrame f = rgb_frame (padded, src.w, src.h, stride);
  g_autofree float *got = preprocess (&src.proc, &f);
  g_assert_cmpmem (got, n * sizeof (float), expected, n * sizeof (float));
  vlm_safetensors_free (src.st);
}

/* A YUV 4:2:0 frame made from RGB with the standard (forward) equations;
 * planes in one buffer, odd strides. */
typedef struct {
  uint8_t *buf;
  VlmFrame frame;
} YuvFrame;

static void
rgb_to_yuv (const uint8_t *rgb, gboolean bt709, gboolean full, double *y, double *u, double *v)
{
  double kr = bt709 ? 0.2126 : 0.299, kb = bt709 ? 0.0722 : 0.114, kg = 1.0 - kr - kb;
  double yf = kr * rgb[0] + kg * rgb[1] + kb * rgb[2];
  double sy = full ? 1.0 : 219.0 / 255.0, sc = full ? 1.0 : 224.0 / 255.0;
  *y = (full ? 0.0 : 16.0) + sy * yf;
  *u = 128.0 + sc * (rgb[2] - yf) / (2.0 * (1.0 - kb));
  *v = 128.0 + sc * (rgb[0] - yf) / (2.0 * (1.0 - kr));
}

static uint8_t
u8_round (double x)
{
  return (uint8_t) CLAMP (lround (x), 0, 255);
}

/* `rgb` (w × h, stride w·3) must be uniform over each 2×2 block: chroma
 * is taken from the block's top-left pixel. */
static YuvFrame
make_yuv (const uint8_t *rgb, int w, int h, VlmPixelFormat format, gboolean bt709, gboolean full)
{
  int cw = (w + 1) / 2, ch = (h + 1) / 2;
  int ys = w + 3, cs = format == VLM_PIXEL_NV12 ? 2 * cw + 5 : cw + 5;
  size_t y_size = (size_t) ys * h, c_size = (size_t) cs * ch;
  YuvFrame f = { .buf = g_malloc0 (y_size + 2 * c_size) };
  f.frame = (VlmFrame) { .format = format, .width = w, .height = h, .yuv_full_range = full,
                         .yuv_matrix = bt709 ? VLM_YUV_BT709 : VLM_YUV_BT601,
                         .planes = { f.buf, f.buf + y_size, f.buf + y_size + c_size },
                         .strides = { ys, cs, cs } };
  uint8_t *yp = f.buf, *up = f.buf + y_size, *vp = up + c_size;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      double Y, U, V;
      rgb_to_yuv (rgb + ((size_t) y * w + x) * 3, bt709, full, &Y, &U, &V);
      yp[(size_t) y * ys + x] = u8_round (Y);
      if (x % 2 || y % 2)
        continue;
      size_t row = (size_t) (y / 2) * cs;
      if (format == VLM_PIXEL_NV12) {
        up[row + x] = u8_round (U);
        up[row + x + 1] = u8_round (V);
      } else {
        up[row + x / 2] = u8_round (U);
        vp[row + x / 2] = u8_round (V);
      }
    }
  return f;
}

/* A w × h crop of the source with every 2×2 block set to its top-left
 * pixel, so 4:2:0 subsampling loses nothing but rounding. */
static uint8_t *
blocky_rgb (const Source *src, int w, int h)
{
  uint8_t *rgb = g_malloc ((size_t) w * h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      memcpy (rgb + ((size_t) y * w + x) * 3,
              src->rgb + ((size_t) (y & ~1) * src->w + (x & ~1)) * 3, 3);
  return rgb;
}

static int
max_abs_diff_u8 (const uint8_t *a, const uint8_t *b, size_t n)
{
  int m = 0;
  for (size_t i = 0; i < n; i++)
    m = MAX (m, abs ((int) a[i] - (int) b[i]));
  return m;
}

/* I420 and NV12, BT.601/709, limited/full range, even and odd sizes: the
 * RGB → YUV → RGB round trip lands within two levels. */
static void
test_yuv_round_trip (void)
{
  Source src = source_open ();
  static const int sizes[][2] = { { 320, 240 }, { 319, 239 } };
  for (size_t s = 0; s < G_N_ELEMENTS (sizes); s++) {
    int w = sizes[s][0], h = sizes[s][1];
    g_autofree uint8_t *rgb = blocky_rgb (&src, w, h);
    g_autofree uint8_t *back = g_malloc ((size_t) w * h * 3);
    for (int k = 0; k < 8; k++) {
      VlmPixelFormat format = k & 1 ? VLM_PIXEL_NV12 : VLM_PIXEL_I420;
      YuvFrame f = make_yuv (rgb, w, h, format, k & 2, k & 4);
      GError *error = NULL;
      g_assert_true (vlm_frame_to_rgb (&f.frame, back, &error));
      g_assert_no_error (error);
      int d = max_abs_diff_u8 (back, rgb, (size_t) w * h * 3);
      g_test_message ("%dx%d %s %s %s: max round-trip diff %d level(s)", w, h,
                      format == VLM_PIXEL_NV12 ? "NV12" : "I420", k & 2 ? "BT.709" : "BT.601",
                      k & 4 ? "full" : "limited", d);
      g_assert_cmpint (d, <=, 2);
      g_free (f.buf);
    }
  }
  vlm_safetensors_free (src.st);
}

/* Preprocessing an I420 frame gives the RGB frame's pixel_values to within
 * the round trip's couple of levels. */
static void
test_yuv_preprocess (void)
{
  Source src = source_open ();
  g_autofree uint8_t *rgb = blocky_rgb (&src, src.w, src.h);
  VlmFrame ref = rgb_frame (rgb, src.w, src.h, src.w * 3);
  g_autofree float *expected = preprocess (&src.proc, &ref);
  YuvFrame f = make_yuv (rgb, src.w, src.h, VLM_PIXEL_I420, FALSE, FALSE);
  g_autofree float *got = preprocess (&src.proc, &f.frame);
  size_t hw = (size_t) src.proc.out_h * src.proc.out_w;
  double max = 0;
  for (int c = 0; c < 3; c++)
    for (size_t i = 0; i < hw; i++)
      max = MAX (max, fabs (to_level (&src.proc, c, got[c * hw + i]) -
                            to_level (&src.proc, c, expected[c * hw + i])));
  g_test_message ("I420 vs RGB pixel_values: max diff %.2f level(s)", max);
  g_assert_cmpfloat (max, <=, 2.0 + 1e-3);
  g_free (f.buf);
  vlm_safetensors_free (src.st);
}

/* ================================================================ crop */

/* HF transformers 5 crops with torchvision: offset round((size − crop) / 2)
 * with halves to even, zero padding when the image is smaller. */
static void
test_crop_offsets (void)
{
  VlmImageProcessor p = {
    .do_resize = FALSE, .do_center_crop = TRUE, .crop_h = 1, .crop_w = 4, .out_h = 1,
    .out_w = 4, .mean = { 0, 0, 0 }, .std = { 1, 1, 1 }, .rescale_factor = 1.0,
  };
  static const struct { int width, first; } cases[] = {
    { 15, 6 },    /* (15 − 4) / 2 = 5.5 → 6 */
    { 13, 4 },    /* 4.5 → 4 */
    { 10, 3 },
    { 2, -1 },    /* padded: one column of zeros before */
  };
  uint8_t row[16 * 3];
  for (int x = 0; x < 16; x++)
    row[3 * x] = row[3 * x + 1] = row[3 * x + 2] = (uint8_t) (10 + x);
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++) {
    VlmFrame f = rgb_frame (row, cases[i].width, 1, 48);
    g_autofree float *out = preprocess (&p, &f);
    for (int x = 0; x < 4; x++) {
      int col = cases[i].first + x;
      float want = col < 0 || col >= cases[i].width ? 0.0f : (float) (10 + col);
      g_assert_cmpfloat (out[x], ==, want);
    }
  }
}

/* ================================================================ bad input */

static void
expect_bad_frame (const VlmImageProcessor *p, const VlmFrame *f, const char *what)
{
  g_autofree void *scratch = g_malloc (vlm_image_scratch_size (p, 320, 240));
  g_autofree float *out = g_new (float, 3 * (size_t) p->out_h * p->out_w);
  g_autofree uint8_t *rgb = g_malloc (320 * 240 * 3);
  GError *error = NULL;
  g_assert_false (vlm_image_preprocess (p, f, out, scratch, &error));
  g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_FRAME);
  g_test_message ("%s: %s", what, error->message);
  g_clear_error (&error);
  g_assert_false (vlm_frame_to_rgb (f, rgb, &error));
  g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_FRAME);
  g_clear_error (&error);
}

static void
test_bad_frames (void)
{
  VlmImageProcessor p = load_processor ("fixtures/git-video-tiny", NULL);
  static uint8_t pixels[320 * 240 * 4];
  VlmFrame ok = rgb_frame (pixels, 320, 240, 320 * 3), f;

  f = ok, f.width = 0;
  expect_bad_frame (&p, &f, "zero width");
  f = ok, f.height = -4;
  expect_bad_frame (&p, &f, "negative height");
  f = ok, f.planes[0] = NULL;
  expect_bad_frame (&p, &f, "NULL plane");
  f = ok, f.strides[0] = 320 * 3 - 1;
  expect_bad_frame (&p, &f, "short stride");
  f = ok, f.format = (VlmPixelFormat) 42;
  expect_bad_frame (&p, &f, "unknown format");
  f = ok, f.format = VLM_PIXEL_BGRX;
  expect_bad_frame (&p, &f, "BGRx stride of RGB");

  VlmFrame i420 = { .format = VLM_PIXEL_I420, .width = 319, .height = 239,
                    .planes = { pixels, pixels, pixels }, .strides = { 319, 160, 160 } };
  f = i420, f.planes[2] = NULL;
  expect_bad_frame (&p, &f, "I420 without V");
  f = i420, f.strides[1] = 159;   /* chroma of an odd width is ceil(w/2) */
  expect_bad_frame (&p, &f, "I420 short chroma stride");
  VlmFrame nv12 = { .format = VLM_PIXEL_NV12, .width = 319, .height = 239,
                    .planes = { pixels, pixels }, .strides = { 320, 319 } };
  expect_bad_frame (&p, &nv12, "NV12 short UV stride");
  nv12.strides[1] = 320, nv12.planes[1] = NULL;
  expect_bad_frame (&p, &nv12, "NV12 without UV");
  expect_bad_frame (&p, NULL, "NULL frame");
  /* width × bytes per pixel once overflowed an int and passed as a stride */
  f = ok, f.width = 1 << 30, f.height = 1, f.strides[0] = G_MAXINT;
  expect_bad_frame (&p, &f, "width × 3 past G_MAXINT");
  f = ok, f.width = f.height = VLM_MAX_FRAME_SIDE + 1, f.strides[0] = 3 * f.width;
  expect_bad_frame (&p, &f, "side over VLM_MAX_FRAME_SIDE");
  g_assert_cmpuint (vlm_image_scratch_size (&p, VLM_MAX_FRAME_SIDE + 1, 1), ==, 0);
}

/* ================================================================ config */

static char *
write_config (const char *dir, const char *name, const char *json)
{
  char *path = g_build_filename (dir, name, NULL);
  g_assert_true (g_file_set_contents (path, json, -1, NULL));
  return path;
}

static void
remove_configs (const char *dir)
{
  static const char *const names[] = { "processor_config.json", "preprocessor_config.json" };
  for (size_t i = 0; i < G_N_ELEMENTS (names); i++) {
    g_autofree char *p = g_build_filename (dir, names[i], NULL);
    g_unlink (p);
  }
}

/* Loads `json` as a flat preprocessor_config.json. */
static gboolean
load_flat (const char *dir, const char *json, VlmImageProcessor *p, GError **error)
{
  remove_configs (dir);
  g_autofree char *path = write_config (dir, "preprocessor_config.json", json);
  return vlm_image_processor_load (p, dir, NULL, error);
}

/* Every bad value is BAD_CONFIG naming the file and the key. */
static void
test_config_errors (void)
{
  g_autofree char *dir = g_dir_make_tmp ("vlm-img-XXXXXX", NULL);
  static const struct { const char *json, *key; } cases[] = {
    { "{\"image_processor_type\": \"CLIPImageProcessor\", \"size\": \"big\"}", "\"size\"" },
    { "{\"size\": {\"shortest_edge\": -3}, \"crop_size\": 32}", "\"size\"" },
    { "{\"size\": {\"height\": 32}}", "\"size\"" },
    { "{\"size\": 32, \"crop_size\": [1, 2, 3]}", "\"crop_size\"" },
    { "{\"size\": 32, \"resample\": 9}", "\"resample\"" },
    { "{\"size\": 32, \"resample\": 2.5}", "\"resample\"" },
    { "{\"size\": 32, \"do_resize\": \"yes\"}", "\"do_resize\"" },
    { "{\"size\": 32, \"image_std\": [0.5, 0, 0.5]}", "\"image_std\"" },
    { "{\"size\": 32, \"image_mean\": [0.5, 0.5]}", "\"image_mean\"" },
    { "{\"size\": 32, \"rescale_factor\": 0}", "\"rescale_factor\"" },
    { "{\"size\": {\"longest_edge\": 64}}", "\"size\"" },
    { "{\"image_processor_type\": \"CLIPImageProcessor\", \"do_center_crop\": false}",
      "\"do_center_crop\"" },
    { "{\"image_processor_type\": \"MysteryProcessor\"}", "\"size\"" },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++) {
    VlmImageProcessor p;
    GError *error = NULL;
    g_assert_false (load_flat (dir, cases[i].json, &p, &error));
    g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG);
    g_assert_nonnull (strstr (error->message, "preprocessor_config.json"));
    g_assert_nonnull (strstr (error->message, cases[i].key));
    g_clear_error (&error);
  }
  VlmImageProcessor p;
  GError *error = NULL;
  g_assert_false (load_flat (dir, "{\"size\": ", &p, &error));   /* not JSON */
  g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG);
  g_clear_error (&error);
  remove_configs (dir);
  g_assert_false (vlm_image_processor_load (&p, dir, NULL, &error));
  g_assert_error (error, VLM_ERROR, VLM_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_rmdir (dir);
}

/* Missing keys take the processor class's HF defaults; sizes come in
 * every form HF accepts. */
static void
test_config_defaults (void)
{
  g_autofree char *dir = g_dir_make_tmp ("vlm-img-XXXXXX", NULL);
  VlmImageProcessor p;
  GError *error = NULL;

  g_assert_true (load_flat (dir, "{\"image_processor_type\": \"CLIPImageProcessor\"}", &p,
                            &error));
  g_assert_cmpint (p.shortest_edge, ==, 224);
  g_assert_cmpint (p.out_h, ==, 224);
  g_assert_cmpint (p.resample, ==, VLM_RESAMPLE_BICUBIC);
  g_assert_cmpfloat (p.mean[0], ==, 0.48145466f);

  g_assert_true (load_flat (dir, "{\"image_processor_type\": \"CLIPImageProcessor\", "
                            "\"size\": 40, \"crop_size\": 36}", &p, &error));
  g_assert_cmpint (p.shortest_edge, ==, 40);   /* CLIP: a bare int is the shortest edge */
  g_assert_cmpint (p.out_w, ==, 36);

  g_assert_true (load_flat (dir, "{\"image_processor_type\": \"VideoMAEImageProcessor\"}", &p,
                            &error));
  g_assert_cmpint (p.resample, ==, VLM_RESAMPLE_BILINEAR);
  g_assert_cmpfloat (p.std[2], ==, 0.5f);
  g_assert_true (p.do_center_crop);

  g_assert_true (load_flat (dir, "{\"image_processor_type\": \"SiglipImageProcessor\", "
                            "\"size\": 48}", &p, &error));
  g_assert_false (p.do_center_crop);
  g_assert_cmpint (p.resize_h, ==, 48);   /* SigLIP: a bare int is a square */
  g_assert_cmpint (p.out_w, ==, 48);

  g_assert_true (load_flat (dir, "{\"video_processor_type\": \"SmolVLMVideoProcessor\", "
                            "\"size\": {\"longest_edge\": 1456}, "
                            "\"max_image_size\": {\"longest_edge\": 64}}", &p, &error));
  g_assert_cmpint (p.out_h, ==, 64);
  g_assert_cmpint (p.pre_longest_edge, ==, 1456);
  /* LANCZOS (the class default) runs as BICUBIC: torchvision has no LANCZOS */
  g_assert_cmpint (p.resample, ==, VLM_RESAMPLE_BICUBIC);

  g_assert_true (load_flat (dir, "{\"image_processor_type\": \"ViTImageProcessor\", "
                            "\"size\": [30, 50], \"do_normalize\": false, \"image_mean\": null}",
                            &p, &error));
  g_assert_cmpint (p.out_h, ==, 30);
  g_assert_cmpint (p.out_w, ==, 50);
  g_assert_false (p.do_normalize);

  /* a processor_config.json naming only the class defers to the flat file */
  g_autofree char *flat = write_config (dir, "processor_config.json",
                                        "{\"processor_class\": \"GitProcessor\"}");
  g_assert_true (vlm_image_processor_load (&p, dir, "image_processor", &error));
  g_assert_cmpint (p.out_h, ==, 30);

  /* a nested processor is preferred, the requested section first */
  g_autofree char *nested = write_config (dir, "processor_config.json",
    "{\"image_processor\": {\"image_processor_type\": \"CLIPImageProcessor\", \"size\": 20, "
    "\"crop_size\": 20}, \"video_processor\": {\"video_processor_type\": "
    "\"LlavaOnevisionVideoProcessor\", \"size\": {\"height\": 24, \"width\": 24}}}");
  g_assert_true (vlm_image_processor_load (&p, dir, "image_processor", &error));
  g_assert_cmpint (p.out_h, ==, 20);
  g_assert_true (vlm_image_processor_load (&p, dir, "video_processor", &error));
  g_assert_cmpint (p.out_h, ==, 24);
  g_assert_no_error (error);

  remove_configs (dir);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/image/parity/git-video-tiny", test_git_video);
  g_test_add_func ("/image/parity/video-llava-tiny", test_video_llava);
  g_test_add_func ("/image/parity/llava-onevision", test_llava_onevision);
  g_test_add_func ("/image/parity/languagebind", test_languagebind);
  g_test_add_func ("/image/parity/blip-and-vit", test_blip_and_vit);
  g_test_add_func ("/image/testcard-config", test_testcard_config);
  g_test_add_func ("/image/formats/packed", test_packed_formats);
  g_test_add_func ("/image/formats/yuv-round-trip", test_yuv_round_trip);
  g_test_add_func ("/image/formats/yuv-preprocess", test_yuv_preprocess);
  g_test_add_func ("/image/crop-offsets", test_crop_offsets);
  g_test_add_func ("/image/bad-frames", test_bad_frames);
  g_test_add_func ("/image/config/errors", test_config_errors);
  g_test_add_func ("/image/config/defaults", test_config_defaults);
  return g_test_run ();
}
