/* image.c — HF image/video processors in C: raw frames to `pixel_values`.
 *
 * Pipeline per frame: convert to RGB u8 → resize → center crop → rescale and
 * normalise into CHW f32. SmolVLM's video frames are resized twice (the
 * longest edge first, then to a square), each resize rounded to u8. The resize is Pillow's separable convolution
 * resampler (ref: Pillow src/libImaging/Resample.c, ImagingResample) as
 * torch's antialiased uint8 kernel runs it for torchvision, i.e. for HF
 * transformers 5 (ref: aten/src/ATen/native/cpu/UpSampleKernel.cpp):
 * horizontal pass first, rounded to u8, then the vertical pass; integer
 * weights with torch's per-axis precision, which reproduces the fixtures bit
 * for bit (Pillow's fixed 22 bits differs by one level on ~0.01 % of values).
 *
 * Only the pixels that survive the crop are computed: each output pixel's
 * filter taps depend on its own index alone, so resizing the crop window is
 * bit-identical to resizing the whole image and cropping afterwards.
 *
 * Nothing here allocates per frame: a plan (sizes, source window) is derived
 * from the processor and the frame size, and every buffer is carved out of
 * the caller's scratch. */
#include <math.h>

#include "image.h"
#include "json.h"

/* ================================================================ frames */

/* Byte layout of the packed RGB-like formats. */
typedef struct {
  int bpp, r, g, b;
} PackedLayout;

static const PackedLayout packed_layouts[] = {
  [VLM_PIXEL_RGB] = { 3, 0, 1, 2 },
  [VLM_PIXEL_RGBX] = { 4, 0, 1, 2 },
  [VLM_PIXEL_BGRX] = { 4, 2, 1, 0 },
  [VLM_PIXEL_RGBA] = { 4, 0, 1, 2 },  /* alpha dropped, as PIL's convert("RGB") */
  [VLM_PIXEL_BGRA] = { 4, 2, 1, 0 },
};

static gboolean
is_yuv (VlmPixelFormat f)
{
  return f == VLM_PIXEL_I420 || f == VLM_PIXEL_NV12;
}

static gboolean
frame_invalid (GError **error, const char *what, int got, int need)
{
  g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_FRAME, "frame: %s is %d, need at least %d", what,
               got, need);
  return FALSE;
}

/* Checks what the converters below rely on: a known format, a positive
 * size, every plane it uses present, strides that hold a row. */
static gboolean
frame_validate (const VlmFrame *f, GError **error)
{
  if (!f) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_FRAME, "frame: NULL");
    return FALSE;
  }
  if ((unsigned) f->format > VLM_PIXEL_NV12) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_FRAME, "frame: unknown pixel format %d",
                 (int) f->format);
    return FALSE;
  }
  /* the bound keeps every size and offset below (a side times a resize
   * factor, a stride times a row) inside an int */
  if (f->width < 1 || f->height < 1 || f->width > VLM_MAX_FRAME_SIDE || f->height > VLM_MAX_FRAME_SIDE) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_FRAME, "frame: size %dx%d is empty or more than %d a side",
                 f->width, f->height, VLM_MAX_FRAME_SIDE);
    return FALSE;
  }
  int cw = (f->width + 1) / 2;   /* chroma planes of odd sizes round up */
  int n_planes = f->format == VLM_PIXEL_I420 ? 3 : f->format == VLM_PIXEL_NV12 ? 2 : 1;
  int need[3] = {
    is_yuv (f->format) ? f->width : f->width * packed_layouts[f->format].bpp,
    f->format == VLM_PIXEL_NV12 ? 2 * cw : cw,
    cw,
  };
  static const char *const stride_names[3] = { "stride 0", "stride 1", "stride 2" };
  for (int p = 0; p < n_planes; p++) {
    if (!f->planes[p]) {
      g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_FRAME, "frame: plane %d is NULL", p);
      return FALSE;
    }
    if (f->strides[p] < need[p])
      return frame_invalid (error, stride_names[p], f->strides[p], need[p]);
  }
  return TRUE;
}

/* YUV → RGB in 16.16 fixed point: R = cy·(Y−y0) + crv·(V−128), and so on. */
typedef struct {
  int y0, cy, crv, cgu, cgv, cbu;
} YuvCoeffs;

/* The inverse of the matrix and range the frame declares (Kr/Kb from
 * BT.601 or BT.709; limited range scales Y by 255/219 and chroma by 255/224),
 * as GStreamer's videoconvert interprets those colorimetries. */
static YuvCoeffs
yuv_coeffs (const VlmFrame *f)
{
  double kr = f->yuv_matrix == VLM_YUV_BT709 ? 0.2126 : 0.299;
  double kb = f->yuv_matrix == VLM_YUV_BT709 ? 0.0722 : 0.114;
  double kg = 1.0 - kr - kb;
  double sy = f->yuv_full_range ? 1.0 : 255.0 / 219.0;
  double sc = f->yuv_full_range ? 1.0 : 255.0 / 224.0;
  double one = 65536.0;
  return (YuvCoeffs) {
    .y0 = f->yuv_full_range ? 0 : 16,
    .cy = (int) lround (sy * one),
    .crv = (int) lround (2.0 * (1.0 - kr) * sc * one),
    .cgu = (int) lround (2.0 * kb * (1.0 - kb) / kg * sc * one),
    .cgv = (int) lround (2.0 * kr * (1.0 - kr) / kg * sc * one),
    .cbu = (int) lround (2.0 * (1.0 - kb) * sc * one),
  };
}

static inline uint8_t
clamp_u8_16 (int v)   /* 16.16 fixed point, rounded, to u8 */
{
  v = (v + 32768) >> 16;
  return (uint8_t) (v < 0 ? 0 : v > 255 ? 255 : v);
}

static inline void
yuv_pixel (const YuvCoeffs *k, int y, int u, int v, uint8_t *rgb)
{
  int yy = k->cy * (y - k->y0);
  u -= 128;
  v -= 128;
  rgb[0] = clamp_u8_16 (yy + k->crv * v);
  rgb[1] = clamp_u8_16 (yy - k->cgu * u - k->cgv * v);
  rgb[2] = clamp_u8_16 (yy + k->cbu * u);
}

/* Row `y`, columns [x0, x1) of a validated frame, as packed RGB into dst.
 * Chroma: each sample covers its 2×2 block (no interpolation). */
static void
frame_row_to_rgb (const VlmFrame *f, const YuvCoeffs *k, int y, int x0, int x1, uint8_t *dst)
{
  const uint8_t *row = f->planes[0] + (size_t) y * f->strides[0];
  if (!is_yuv (f->format)) {
    const PackedLayout *l = &packed_layouts[f->format];
    for (int x = x0; x < x1; x++, dst += 3) {
      const uint8_t *p = row + (size_t) x * l->bpp;
      dst[0] = p[l->r];
      dst[1] = p[l->g];
      dst[2] = p[l->b];
    }
    return;
  }
  const uint8_t *c1 = f->planes[1] + (size_t) (y / 2) * f->strides[1];
  if (f->format == VLM_PIXEL_NV12) {
    for (int x = x0; x < x1; x++, dst += 3)
      yuv_pixel (k, row[x], c1[x & ~1], c1[x | 1], dst);
  } else {
    const uint8_t *c2 = f->planes[2] + (size_t) (y / 2) * f->strides[2];
    for (int x = x0; x < x1; x++, dst += 3)
      yuv_pixel (k, row[x], c1[x / 2], c2[x / 2], dst);
  }
}

/* The window [x0,x1)×[y0,y1) of a validated frame as packed RGB, stride (x1−x0)·3. */
static void
frame_window_to_rgb (const VlmFrame *f, int x0, int x1, int y0, int y1, uint8_t *dst)
{
  YuvCoeffs k = { 0 };
  if (is_yuv (f->format))
    k = yuv_coeffs (f);
  size_t stride = (size_t) (x1 - x0) * 3;
  for (int y = y0; y < y1; y++)
    frame_row_to_rgb (f, &k, y, x0, x1, dst + (size_t) (y - y0) * stride);
}

gboolean
vlm_frame_to_rgb (const VlmFrame *frame, uint8_t *rgb, GError **error)
{
  if (!frame_validate (frame, error))
    return FALSE;
  frame_window_to_rgb (frame, 0, frame->width, 0, frame->height, rgb);
  return TRUE;
}

/* ================================================================ filters */

/* Pillow's resampling kernels, x in source pixels of the filter's own scale. */

static double
filter_box (double x)
{
  return x > -0.5 && x <= 0.5 ? 1.0 : 0.0;
}

static double
filter_bilinear (double x)
{
  x = fabs (x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

static double
filter_hamming (double x)
{
  x = fabs (x);
  if (x == 0.0)
    return 1.0;
  if (x >= 1.0)
    return 0.0;
  x *= M_PI;
  /* Pillow writes the window constants as float literals */
  return sin (x) / x * ((double) 0.54f + (double) 0.46f * cos (x));
}

static double
filter_bicubic (double x)
{
  const double a = -0.5;   /* Pillow's (and torch's antialiased) Keys cubic */
  x = fabs (x);
  if (x < 1.0)
    return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0)
    return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

static double
sinc (double x)
{
  if (x == 0.0)
    return 1.0;
  x *= M_PI;
  return sin (x) / x;
}

static double
filter_lanczos (double x)
{
  return -3.0 <= x && x < 3.0 ? sinc (x) * sinc (x / 3.0) : 0.0;
}

typedef struct {
  double (*fn) (double x);   /* NULL: nearest neighbour */
  double support;            /* half-width at scale 1, in source pixels */
} Filter;

static const Filter filters[] = {
  [VLM_RESAMPLE_NEAREST] = { NULL, 0.0 },
  [VLM_RESAMPLE_LANCZOS] = { filter_lanczos, 3.0 },
  [VLM_RESAMPLE_BILINEAR] = { filter_bilinear, 1.0 },
  [VLM_RESAMPLE_BICUBIC] = { filter_bicubic, 2.0 },
  [VLM_RESAMPLE_BOX] = { filter_box, 0.5 },
  [VLM_RESAMPLE_HAMMING] = { filter_hamming, 1.0 },
};

/* ================================================================ plan */

/* One axis of the resize + crop: which resized pixels the crop keeps, and
 * which source pixels those read. */
typedef struct {
  int in;             /* source pixels */
  int out;            /* resized pixels */
  int crop;           /* pixels in the final output */
  int offset;         /* resized index of output pixel 0 (< 0: zero padding) */
  int o0, o1;         /* resized pixels in the output: [o0, o1) */
  const Filter *filter;   /* NULL: identity (out == in) */
  double scale;       /* in / out */
  double support;     /* filter half-width in source pixels */
  int ksize;          /* taps per output pixel, an upper bound */
  int src0, src1;     /* source pixels read: [src0, src1) */
} Axis;

/* Source taps of resized pixel o: [*first, *first + *n). */
static void
axis_taps (const Axis *a, int o, int *first, int *n)
{
  if (!a->filter) {
    *first = o;
    *n = 1;
    return;
  }
  double center = (o + 0.5) * a->scale;
  if (!a->filter->fn) {
    /* Pillow and torchvision's NEAREST_EXACT: the pixel under the centre */
    *first = MIN ((int) center, a->in - 1);
    *n = 1;
    return;
  }
  /* Pillow rounds the window ends by truncating x + 0.5 */
  int lo = MAX ((int) (center - a->support + 0.5), 0);
  int hi = MIN ((int) (center + a->support + 0.5), a->in);
  *first = lo;
  *n = hi - lo;
}

/* Python's round() of x / 2: halves go to the even neighbour. */
static int
half_round_even (int x)
{
  int q = x / 2;
  return (x % 2 != 0 && q % 2 != 0) ? q + 1 : q;
}

/* torchvision's center_crop (HF transformers 5): when the image is smaller
 * the crop pads it with zeros, (crop − size) // 2 before; otherwise the
 * offset is round((size − crop) / 2) with Python's half-to-even rounding. */
static int
crop_offset (int size, int crop)
{
  return crop > size ? -((crop - size) / 2) : half_round_even (size - crop);
}

static void
axis_init (Axis *a, int in, int out, int crop, gboolean do_crop, const Filter *filter)
{
  *a = (Axis) { .in = in, .out = out, .crop = do_crop ? crop : out };
  a->offset = do_crop ? crop_offset (out, crop) : 0;
  a->o0 = MAX (a->offset, 0);
  a->o1 = MIN (a->offset + a->crop, out);
  a->filter = out == in ? NULL : filter;
  if (a->filter) {
    a->scale = (double) in / out;
    a->support = filter->support * MAX (a->scale, 1.0);   /* widen to antialias */
    a->ksize = filter->fn ? (int) ceil (a->support) * 2 + 1 : 1;
  } else {
    a->ksize = 1;
  }
  int first, n;
  axis_taps (a, a->o0, &first, &n);
  a->src0 = first;
  axis_taps (a, a->o1 - 1, &first, &n);
  a->src1 = first + n;
}

/* FALSE when the crop reaches past the resized image (zero padding). */
static gboolean
axis_covers (const Axis *a)
{
  return a->o0 == a->offset && a->o1 == a->offset + a->crop;
}

/* One resize (+ crop) of a w × h image: the axes and the scratch it
 * needs, as byte offsets from where the caller places it. */
typedef struct {
  Axis x, y;
  size_t x_taps, x_weights, y_taps, y_weights, weights_f64, rgb, mid, total;
} Plan;

static size_t
carve (size_t *total, size_t bytes)
{
  size_t at = *total;
  *total += (bytes + 63) & ~(size_t) 63;
  return at;
}

/* SmolVLM's get_resize_output_image_size: the longest edge to `longest`
 * (at most MAX_IMAGE_SIZE 4096), the other edge int(longest / aspect) in
 * double, as Python divides, and made even. */
static void
longest_edge_size (int longest, int w, int h, int *rw, int *rh)
{
  double aspect = (double) w / h;
  longest = MIN (longest, 4096);
  if (w >= h) {
    *rw = longest;
    *rh = (int) (longest / aspect);
    *rh += *rh % 2;
  } else {
    *rh = longest;
    *rw = (int) (longest * aspect);
    *rw += *rw % 2;
  }
  *rw = MAX (*rw, 1);
  *rh = MAX (*rh, 1);
}

/* Size after the first of two resizes (p->pre_longest_edge or pre_h × pre_w). */
static void
pre_resized_size (const VlmImageProcessor *p, int w, int h, int *rw, int *rh)
{
  if (p->pre_longest_edge) {
    longest_edge_size (p->pre_longest_edge, w, h, rw, rh);
  } else {
    *rw = p->pre_w;
    *rh = p->pre_h;
  }
}

static gboolean
has_pre_resize (const VlmImageProcessor *p)
{
  return p->do_resize && (p->pre_longest_edge || p->pre_h);
}

/* Resized size of a w × h frame, as HF computes it. */
static void
resized_size (const VlmImageProcessor *p, int w, int h, int *rw, int *rh)
{
  if (!p->do_resize) {
    *rw = w;
    *rh = h;
  } else if (p->shortest_edge > 0) {
    /* get_resize_output_image_size(default_to_square=False):
     * long side = int(size * long / short), a truncated true division */
    int s = p->shortest_edge;
    int lo = MIN (w, h), hi = MAX (w, h);
    int l = lo == s ? hi : (int) ((double) ((gint64) s * hi) / lo);
    *rw = w <= h ? (lo == s ? w : s) : l;
    *rh = w <= h ? (lo == s ? h : l) : s;
  } else {
    *rw = p->resize_w;
    *rh = p->resize_h;
  }
}

/* Resizes w × h to rw × rh with `filter`, then (do_crop) center-crops to
 * crop_w × crop_h. */
static void
plan_init (Plan *plan, const Filter *filter, int w, int h, int rw, int rh, gboolean do_crop,
           int crop_w, int crop_h)
{
  axis_init (&plan->x, w, rw, crop_w, do_crop, filter);
  axis_init (&plan->y, h, rh, crop_h, do_crop, filter);
  const Axis *x = &plan->x, *y = &plan->y;
  int nx = MAX (x->o1 - x->o0, 0), ny = MAX (y->o1 - y->o0, 0);
  size_t t = 0;
  plan->x_taps = carve (&t, (size_t) nx * 2 * sizeof (int32_t));
  plan->x_weights = carve (&t, (size_t) nx * x->ksize * sizeof (int32_t));
  plan->y_taps = carve (&t, (size_t) ny * 2 * sizeof (int32_t));
  plan->y_weights = carve (&t, (size_t) ny * y->ksize * sizeof (int32_t));
  plan->weights_f64 = carve (&t, (size_t) MAX (x->ksize, y->ksize) * sizeof (double));
  plan->rgb = carve (&t, (size_t) MAX (x->src1 - x->src0, 0) * MAX (y->src1 - y->src0, 0) * 3);
  plan->mid = carve (&t, (size_t) nx * MAX (y->src1 - y->src0, 0) * 3);
  plan->total = t;
}

/* The whole job for one processor and frame size: an optional first
 * resize into `pre` (packed RGB u8), then the processor's resize and crop
 * into `window` (packed RGB u8, the crop's pixels inside the image), then
 * rescale and normalise through `lut`. The two plans run one after the
 * other and share their scratch at `plans`. */
typedef struct {
  gboolean two_pass;
  int pre_w, pre_h;
  Plan first, last;
  size_t lut, pre, window, plans, total;
} Job;

static void
job_make (const VlmImageProcessor *p, int w, int h, Job *job)
{
  const Filter *f = &filters[p->resample];
  int rw, rh;
  *job = (Job) { .two_pass = has_pre_resize (p) };   /* pre_w/pre_h stay 0 in one pass */
  if (job->two_pass) {
    pre_resized_size (p, w, h, &job->pre_w, &job->pre_h);
    plan_init (&job->first, f, w, h, job->pre_w, job->pre_h, FALSE, 0, 0);
    w = job->pre_w;
    h = job->pre_h;
  }
  resized_size (p, w, h, &rw, &rh);
  plan_init (&job->last, f, w, h, rw, rh, p->do_center_crop, p->crop_w, p->crop_h);
  const Axis *x = &job->last.x, *y = &job->last.y;
  size_t t = 0;
  job->lut = carve (&t, 3 * 256 * sizeof (float));
  job->pre = carve (&t, job->two_pass ? (size_t) job->pre_w * job->pre_h * 3 : 0);
  job->window = carve (&t, (size_t) MAX (x->o1 - x->o0, 0) * MAX (y->o1 - y->o0, 0) * 3);
  job->plans = carve (&t, MAX (job->two_pass ? job->first.total : 0, job->last.total));
  job->total = t;
}

size_t
vlm_image_scratch_size (const VlmImageProcessor *proc, int w, int h)
{
  if (!proc || w < 1 || h < 1 || w > VLM_MAX_FRAME_SIDE || h > VLM_MAX_FRAME_SIDE)
    return 0;   /* vlm_image_preprocess refuses the frame */
  Job job;
  job_make (proc, w, h, &job);
  return job.total;
}

/* ================================================================ resample */

/* Normalised weights of resized pixel o into w[0..n), its first tap in *first. */
static void
tap_weights (const Axis *a, int o, double *w, int *first, int *n)
{
  axis_taps (a, o, first, n);
  if (!a->filter || !a->filter->fn) {
    w[0] = 1.0;
    return;
  }
  double center = (o + 0.5) * a->scale, inv = 1.0 / MAX (a->scale, 1.0), sum = 0.0;
  for (int j = 0; j < *n; j++) {
    w[j] = a->filter->fn ((*first + j - center + 0.5) * inv);
    sum += w[j];
  }
  if (sum != 0.0)
    for (int j = 0; j < *n; j++)
      w[j] /= sum;
}

/* torch's weight precision for the axis: the most fraction bits that keep
 * its largest weight (over all resized pixels) within int16. */
static int
axis_weight_bits (const Axis *a, double *w)
{
  double max = 0.0;
  for (int o = 0; o < a->out; o++) {
    int first, n;
    tap_weights (a, o, w, &first, &n);
    for (int j = 0; j < n; j++)
      max = MAX (max, w[j]);
  }
  int bits = 0;
  while (bits < 22 && (int) (0.5 + max * (1 << (bits + 1))) < (1 << 15))
    bits++;
  return bits;
}

/* Integer weights of the resized pixels [a->o0, a->o1): taps[2i] is the first
 * tap relative to a->src0, taps[2i+1] their count, weights[i·ksize + j] with
 * `bits` fraction bits, rounded half away from zero. Returns `bits`. */
static int
axis_weights (const Axis *a, int32_t *taps, int32_t *weights, double *w)
{
  int bits = axis_weight_bits (a, w);
  for (int o = a->o0; o < a->o1; o++) {
    int i = o - a->o0, first, n;
    tap_weights (a, o, w, &first, &n);
    taps[2 * i] = first - a->src0;
    taps[2 * i + 1] = n;
    int32_t *k = weights + (size_t) i * a->ksize;
    for (int j = 0; j < n; j++) {
      double v = w[j] * (1 << bits);
      k[j] = (int32_t) (v < 0.0 ? v - 0.5 : v + 0.5);
    }
  }
  return bits;
}

/* A rounded fixed-point sum with `bits` fraction bits, saturated to 0..255. */
static inline uint8_t
clip8 (int32_t v, int bits)
{
  if (v >= 256 << bits)
    return 255;
  if (v <= 0)
    return 0;
  return (uint8_t) (v >> bits);
}

/* One output pixel of a resampling pass: n RGB taps `step` bytes apart
 * weighted by k in fixed point (`bits` fraction bits, rounded), as
 * Pillow's ImagingResample does. */
static inline void
tap_sum (const uint8_t *p, size_t step, const int32_t *k, int n, int bits, uint8_t *dst)
{
  int32_t s0 = 1 << (bits - 1), s1 = s0, s2 = s0;
  for (int j = 0; j < n; j++, p += step) {
    s0 += p[0] * k[j];
    s1 += p[1] * k[j];
    s2 += p[2] * k[j];
  }
  dst[0] = clip8 (s0, bits);
  dst[1] = clip8 (s1, bits);
  dst[2] = clip8 (s2, bits);
}

/* Horizontal pass: every source row in [0, rows) of `src` (packed RGB,
 * `src_stride` bytes) to `nx` resized columns in `dst` (stride nx·3). */
static void
resample_rows (const uint8_t *src, size_t src_stride, int rows, int nx, const int32_t *taps,
               const int32_t *weights, int ksize, int bits, uint8_t *dst)
{
  for (int r = 0; r < rows; r++) {
    const uint8_t *in = src + (size_t) r * src_stride;
    for (int i = 0; i < nx; i++, dst += 3) {
      tap_sum (in + (size_t) taps[2 * i] * 3, 3, weights + (size_t) i * ksize, taps[2 * i + 1], bits, dst);
    }
  }
}

/* Vertical pass for output row `i` of the resized window: `nx` pixels read
 * down the columns of `src` (stride nx·3) into packed RGB `dst`. */
static void
resample_column_row (const uint8_t *src, int nx, const int32_t *tap, const int32_t *k, int bits,
                     uint8_t *dst)
{
  size_t stride = (size_t) nx * 3;
  const uint8_t *top = src + (size_t) tap[0] * stride;
  for (int x = 0; x < nx; x++, dst += 3)
    tap_sum (top + (size_t) x * 3, stride, k, tap[1], bits, dst);
}

/* Runs `plan` on a validated frame: the resized pixels inside the crop,
 * [o0, o1) on each axis, as packed RGB into `dst` (stride (x.o1 − x.o0)·3).
 * `base` holds plan->total bytes of scratch. */
static void
resample_window (const Plan *plan, const VlmFrame *frame, uint8_t *base, uint8_t *dst)
{
  const Axis *ax = &plan->x, *ay = &plan->y;
  int32_t *x_taps = (int32_t *) (base + plan->x_taps), *x_w = (int32_t *) (base + plan->x_weights);
  int32_t *y_taps = (int32_t *) (base + plan->y_taps), *y_w = (int32_t *) (base + plan->y_weights);
  double *tmp = (double *) (base + plan->weights_f64);
  int x_bits = axis_weights (ax, x_taps, x_w, tmp);
  int y_bits = axis_weights (ay, y_taps, y_w, tmp);

  uint8_t *rgb = base + plan->rgb, *mid = base + plan->mid;
  int sw = ax->src1 - ax->src0, sh = ay->src1 - ay->src0, nx = ax->o1 - ax->o0;
  frame_window_to_rgb (frame, ax->src0, ax->src1, ay->src0, ay->src1, rgb);
  resample_rows (rgb, (size_t) sw * 3, sh, nx, x_taps, x_w, ax->ksize, x_bits, mid);
  for (int i = 0; i < ay->o1 - ay->o0; i++)
    resample_column_row (mid, nx, y_taps + 2 * i, y_w + (size_t) i * ay->ksize, y_bits,
                         dst + (size_t) i * nx * 3);
}

/* ================================================================ normalise */

/* value[c][v] for every u8 level v, computed as HF transformers 5 does in
 * float32: rescale and normalise fused as (v − mean·(1/rf)) / (std·(1/rf)),
 * with 1/rf taken in double and rounded to float (255.0f for 1/255). */
static void
make_lut (const VlmImageProcessor *p, float *lut)
{
  float inv_rf = (float) (1.0 / p->rescale_factor);
  for (int c = 0; c < 3; c++) {
    float mean = p->mean[c], std = p->std[c];
    if (p->do_rescale && p->do_normalize) {
      mean *= inv_rf;
      std *= inv_rf;
    }
    for (int v = 0; v < 256; v++) {
      float x = (float) v;
      if (p->do_normalize)
        x = (x - mean) / std;
      else if (p->do_rescale)
        x *= (float) p->rescale_factor;   /* torch: u8 tensor × scalar in f32 */
      lut[c * 256 + v] = x;
    }
  }
}

/* ================================================================ preprocess */

gboolean
vlm_image_preprocess (const VlmImageProcessor *proc, const VlmFrame *frame, float *out,
                      void *scratch, GError **error)
{
  g_return_val_if_fail (proc && out, FALSE);
  if (!frame_validate (frame, error))
    return FALSE;
  g_return_val_if_fail (scratch, FALSE);   /* valid frames need some */
  Job job;
  job_make (proc, frame->width, frame->height, &job);
  const Axis *ax = &job.last.x, *ay = &job.last.y;
  /* out_h/out_w must be what the loader derived from the other fields */
  g_return_val_if_fail (ax->crop == proc->out_w && ay->crop == proc->out_h, FALSE);

  uint8_t *base = scratch, *window = base + job.window;
  float *lut = (float *) (base + job.lut);
  make_lut (proc, lut);
  VlmFrame pre = {
    .format = VLM_PIXEL_RGB, .width = job.pre_w, .height = job.pre_h,
    .planes = { base + job.pre }, .strides = { job.pre_w * 3 },
  };
  if (job.two_pass)   /* the first resize is rounded to u8, as torch's u8 kernel leaves it */
    resample_window (&job.first, frame, base + job.plans, base + job.pre);
  resample_window (&job.last, job.two_pass ? &pre : frame, base + job.plans, window);

  size_t plane = (size_t) proc->out_h * proc->out_w;
  if (!axis_covers (ax) || !axis_covers (ay)) {
    /* the crop reaches past the image: torchvision pads with level 0 */
    for (int c = 0; c < 3; c++)
      for (size_t i = 0; i < plane; i++)
        out[c * plane + i] = lut[c * 256];
  }
  int nx = ax->o1 - ax->o0;
  float *dst = out + (size_t) (ay->o0 - ay->offset) * proc->out_w + (ax->o0 - ax->offset);
  for (int i = 0; i < ay->o1 - ay->o0; i++)
    for (int x = 0; x < nx; x++) {
      const uint8_t *px = window + ((size_t) i * nx + x) * 3;
      float *o = dst + (size_t) i * proc->out_w + x;
      o[0] = lut[px[0]];
      o[plane] = lut[256 + px[1]];
      o[2 * plane] = lut[512 + px[2]];
    }
  return TRUE;
}

/* ================================================================ config */

/* HF's constants for image_mean / image_std. */
static const float openai_clip_mean[3] = { 0.48145466f, 0.4578275f, 0.40821073f };
static const float openai_clip_std[3] = { 0.26862954f, 0.26130258f, 0.27577711f };
static const float imagenet_standard[3] = { 0.5f, 0.5f, 0.5f };

/* Class defaults for keys a config leaves out (ref: each model's
 * image_processing_*.py / video_processing_*.py class attributes). */
typedef struct {
  const char *prefix;         /* image/video_processor_type starts with this */
  gboolean square;            /* HF default_to_square: a bare int size is h = w */
  int size;                   /* shortest edge (square FALSE) or h = w (TRUE) */
  gboolean do_center_crop;
  int crop;
  VlmResample resample;
  const float *mean, *std;
  gboolean squash;            /* video frames end up max_image_size square */
} ProcDefaults;

static const ProcDefaults proc_defaults[] = {
  { "CLIP", FALSE, 224, TRUE, 224, VLM_RESAMPLE_BICUBIC, openai_clip_mean, openai_clip_std },
  { "VideoLlava", FALSE, 224, TRUE, 224, VLM_RESAMPLE_BICUBIC, openai_clip_mean,
    openai_clip_std },
  { "VideoMAE", FALSE, 224, TRUE, 224, VLM_RESAMPLE_BILINEAR, imagenet_standard,
    imagenet_standard },
  { "Siglip", TRUE, 224, FALSE, 0, VLM_RESAMPLE_BICUBIC, imagenet_standard, imagenet_standard },
  { "LlavaOnevision", TRUE, 384, FALSE, 0, VLM_RESAMPLE_BICUBIC, openai_clip_mean,
    openai_clip_std },
  { "Idefics3", TRUE, 364, FALSE, 0, VLM_RESAMPLE_LANCZOS, imagenet_standard,
    imagenet_standard, TRUE },
  { "SmolVLM", TRUE, 364, FALSE, 0, VLM_RESAMPLE_LANCZOS, imagenet_standard,
    imagenet_standard, TRUE },
  { "Blip", TRUE, 384, FALSE, 0, VLM_RESAMPLE_BICUBIC, openai_clip_mean, openai_clip_std },
  { "ViT", TRUE, 224, FALSE, 0, VLM_RESAMPLE_BILINEAR, imagenet_standard, imagenet_standard },
};

/* What an unknown processor type gets: HF's base class sets no size, so
 * a config that resizes must say how. */
static const ProcDefaults generic_defaults = {
  "", TRUE, 0, FALSE, 0, VLM_RESAMPLE_BICUBIC, imagenet_standard, imagenet_standard,
};

static const ProcDefaults *
find_defaults (const char *type)
{
  for (size_t i = 0; i < G_N_ELEMENTS (proc_defaults); i++)
    if (g_str_has_prefix (type, proc_defaults[i].prefix))
      return &proc_defaults[i];
  return &generic_defaults;
}

/* One processor object being read, for error messages. */
typedef struct {
  JsonObject *o;
  const char *file;
} Cfg;

static gboolean
bad_key (const Cfg *c, const char *key, const char *expected, GError **error)
{
  g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: \"%s\": expected %s", c->file, key,
               expected);
  return FALSE;
}

/* A positive integer (an integral double is accepted). */
static gboolean
node_size (JsonNode *n, int *v)
{
  double d;
  if (!vlm_json_node_number (n, &d) || d != floor (d) || d < 1 || d > 65536)
    return FALSE;
  *v = (int) d;
  return TRUE;
}

static gboolean
cfg_bool (const Cfg *c, const char *key, gboolean *v, GError **error)
{
  JsonNode *n = vlm_json_member (c->o, key);
  if (!n)
    return TRUE;
  if (!vlm_json_node_is (n, G_TYPE_BOOLEAN))
    return bad_key (c, key, "true or false", error);
  *v = json_node_get_boolean (n);
  return TRUE;
}

/* `size` or `crop_size`: {"shortest_edge": n}, {"height": h, "width": w},
 * {"longest_edge": n}, [h, w] or a bare n (shortest edge unless `square`).
 * Exactly one of *shortest, (*h, *w), *longest is set. */
static gboolean
cfg_size (const Cfg *c, const char *key, gboolean square, int *shortest, int *h, int *w,
          int *longest, GError **error)
{
  JsonNode *n = vlm_json_member (c->o, key);
  if (!n)
    return TRUE;
  const char *expected = "a positive int, [h, w], or an object with \"shortest_edge\", "
                         "\"longest_edge\" or \"height\" and \"width\"";
  int a, b;
  *shortest = *h = *w = *longest = 0;
  if (node_size (n, &a)) {
    *(square ? h : shortest) = a;
    *w = square ? a : 0;
    return TRUE;
  }
  if (JSON_NODE_HOLDS_ARRAY (n)) {
    JsonArray *arr = json_node_get_array (n);
    if (json_array_get_length (arr) != 2 || !node_size (json_array_get_element (arr, 0), &a) ||
        !node_size (json_array_get_element (arr, 1), &b))
      return bad_key (c, key, expected, error);
    *h = a;
    *w = b;
    return TRUE;
  }
  if (!JSON_NODE_HOLDS_OBJECT (n))
    return bad_key (c, key, expected, error);
  JsonObject *o = json_node_get_object (n);
  JsonNode *se = vlm_json_member (o, "shortest_edge"), *le = vlm_json_member (o, "longest_edge");
  JsonNode *hn = vlm_json_member (o, "height"), *wn = vlm_json_member (o, "width");
  if (se && !le && !hn && !wn && node_size (se, shortest))
    return TRUE;
  if (le && !se && !hn && !wn && node_size (le, longest))
    return TRUE;
  if (hn && wn && !se && !le && node_size (hn, h) && node_size (wn, w))
    return TRUE;
  *shortest = *h = *w = *longest = 0;
  return bad_key (c, key, expected, error);
}

/* image_mean / image_std: three numbers, or one for all channels. */
static gboolean
cfg_rgb (const Cfg *c, const char *key, gboolean positive, float v[3], GError **error)
{
  JsonNode *n = vlm_json_member (c->o, key);
  if (!n)
    return TRUE;
  const char *expected = positive ? "3 positive numbers" : "3 numbers";
  double d[3];
  if (vlm_json_node_number (n, &d[0])) {
    d[1] = d[2] = d[0];
  } else if (JSON_NODE_HOLDS_ARRAY (n) && json_array_get_length (json_node_get_array (n)) == 3) {
    for (int i = 0; i < 3; i++)
      if (!vlm_json_node_number (json_array_get_element (json_node_get_array (n), i), &d[i]))
        return bad_key (c, key, expected, error);
  } else {
    return bad_key (c, key, expected, error);
  }
  for (int i = 0; i < 3; i++) {
    if (positive && d[i] <= 0)
      return bad_key (c, key, expected, error);
    v[i] = (float) d[i];
  }
  return TRUE;
}

static gboolean
cfg_resample (const Cfg *c, VlmResample *v, GError **error)
{
  JsonNode *n = vlm_json_member (c->o, "resample");
  if (!n)
    return TRUE;
  double d;
  if (!vlm_json_node_number (n, &d) || d != floor (d) || d < VLM_RESAMPLE_NEAREST ||
      d > VLM_RESAMPLE_HAMMING)
    return bad_key (c, "resample", "a PIL resample code 0..5", error);
  *v = (VlmResample) d;
  return TRUE;
}

static gboolean
cfg_rescale_factor (const Cfg *c, double *v, GError **error)
{
  JsonNode *n = vlm_json_member (c->o, "rescale_factor");
  if (!n)
    return TRUE;
  double d;
  if (!vlm_json_node_number (n, &d) || d <= 0)
    return bad_key (c, "rescale_factor", "a positive number", error);
  *v = d;
  return TRUE;
}

/* SmolVLMVideoProcessor's `video_sampling` {fps, max_frames, video_size}:
 * its sampling rate and frame cap, and video_size as `size` when the
 * config has no `size` of its own (HF's __init__ copies `size` over it). */
static gboolean
video_sampling (const Cfg *c, VlmImageProcessor *p, JsonObject **video_size, GError **error)
{
  JsonNode *n = vlm_json_member (c->o, "video_sampling");
  *video_size = NULL;
  if (!n)
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (n))
    return bad_key (c, "video_sampling", "an object with \"fps\" and \"max_frames\"", error);
  JsonObject *o = json_node_get_object (n);
  JsonNode *fps = vlm_json_member (o, "fps"), *max_frames = vlm_json_member (o, "max_frames");
  if ((fps && (!vlm_json_node_number (fps, &p->video_fps) || p->video_fps <= 0)) ||
      (max_frames && !node_size (max_frames, &p->video_max_frames)))
    return bad_key (c, "video_sampling", "\"fps\" > 0 and \"max_frames\" ≥ 1", error);
  if (vlm_json_member (o, "video_size") && !vlm_json_member (c->o, "size"))
    *video_size = o;
  return TRUE;
}

/* Resize target from `size`; for Idefics3/SmolVLM (ref:
 * SmolVLMVideoProcessor.resize) `size` is a first resize (longest edge,
 * keeping the aspect, or height × width) and every frame is then squashed
 * to max_image_size². */
static gboolean
processor_size (const Cfg *c, const ProcDefaults *d, VlmImageProcessor *p, GError **error)
{
  int shortest = d->square ? 0 : d->size, h = d->square ? d->size : 0, w = h, longest = 0;
  if (d->squash) {
    JsonObject *video_size;
    Cfg vs = *c;
    longest = 4 * d->size;   /* the class default: size 4·364, max_image_size 364 */
    h = w = 0;
    if (!video_sampling (c, p, &video_size, error))
      return FALSE;
    if (video_size)
      vs.o = video_size;
    if (!cfg_size (&vs, video_size ? "video_size" : "size", TRUE, &shortest, &h, &w, &longest, error))
      return FALSE;
    if (shortest)
      return bad_key (c, "size", "{\"longest_edge\": n} or \"height\" and \"width\"", error);
    p->pre_longest_edge = longest;
    p->pre_h = h;
    p->pre_w = w;
    int s, mh, mw, ml = d->size;
    if (!cfg_size (c, "max_image_size", TRUE, &s, &mh, &mw, &ml, error))
      return FALSE;
    if (!ml)
      return bad_key (c, "max_image_size", "{\"longest_edge\": n}", error);
    shortest = longest = 0;
    h = w = ml;
  } else if (!cfg_size (c, "size", d->square, &shortest, &h, &w, &longest, error)) {
    return FALSE;
  }
  if (longest)
    return bad_key (c, "size", "\"shortest_edge\" or \"height\" and \"width\" "
                    "(a longest-edge resize gives frame-dependent sizes)", error);
  p->shortest_edge = shortest;
  p->resize_h = h;
  p->resize_w = w;
  if (p->do_resize && !shortest && !(h && w))
    return bad_key (c, "size", "a size when do_resize is true", error);
  return TRUE;
}

static gboolean
processor_crop (const Cfg *c, const ProcDefaults *d, VlmImageProcessor *p, GError **error)
{
  int shortest = 0, h = d->crop, w = d->crop, longest = 0;
  if (!cfg_size (c, "crop_size", TRUE, &shortest, &h, &w, &longest, error))
    return FALSE;
  if (shortest || longest)   /* HF's get_size_dict(crop_size) squares a lone edge */
    h = w = MAX (shortest, longest);
  p->crop_h = h;
  p->crop_w = w;
  if (p->do_center_crop && !(h && w))
    return bad_key (c, "crop_size", "a size when do_center_crop is true", error);
  return TRUE;
}

/* Reads one processor object into `p`, defaults first. */
static gboolean
processor_parse (const Cfg *c, VlmImageProcessor *p, GError **error)
{
  const char *type = vlm_json_string (c->o, "image_processor_type", NULL);
  if (!type)
    type = vlm_json_string (c->o, "video_processor_type", NULL);
  if (!type)
    type = vlm_json_string (c->o, "feature_extractor_type", "");
  const ProcDefaults *d = find_defaults (type);
  *p = (VlmImageProcessor) {
    .do_convert_rgb = TRUE, .do_resize = TRUE, .resample = d->resample,
    .do_center_crop = d->do_center_crop, .do_rescale = TRUE, .rescale_factor = 1.0 / 255.0,
    .do_normalize = TRUE,
  };
  g_strlcpy (p->type, type, sizeof p->type);
  memcpy (p->mean, d->mean, sizeof p->mean);
  memcpy (p->std, d->std, sizeof p->std);
  if (!cfg_bool (c, "do_convert_rgb", &p->do_convert_rgb, error) ||
      !cfg_bool (c, "do_resize", &p->do_resize, error) ||
      !cfg_bool (c, "do_center_crop", &p->do_center_crop, error) ||
      !cfg_bool (c, "do_rescale", &p->do_rescale, error) ||
      !cfg_bool (c, "do_normalize", &p->do_normalize, error) ||
      !cfg_resample (c, &p->resample, error) || !cfg_rescale_factor (c, &p->rescale_factor, error) ||
      !cfg_rgb (c, "image_mean", FALSE, p->mean, error) ||
      !cfg_rgb (c, "image_std", TRUE, p->std, error) || !processor_size (c, d, p, error) ||
      !processor_crop (c, d, p, error))
    return FALSE;
  /* torchvision has no LANCZOS: HF's SmolVLM video processor (and
   * Idefics3's fast one) falls back to BICUBIC. */
  if (d->squash && p->resample == VLM_RESAMPLE_LANCZOS)
    p->resample = VLM_RESAMPLE_BICUBIC;
  if (p->do_center_crop) {
    p->out_h = p->crop_h;
    p->out_w = p->crop_w;
  } else if (p->do_resize && !p->shortest_edge) {
    p->out_h = p->resize_h;
    p->out_w = p->resize_w;
  } else {
    return bad_key (c, "do_center_crop", "true, or a fixed \"size\" (the output size "
                    "would depend on the frame)", error);
  }
  return TRUE;
}

/* The nested processor of a processor_config.json: `section`, else the
 * other one; NULL when the file has neither. */
static JsonObject *
pick_section (JsonObject *root, const char *section)
{
  const char *other = g_strcmp0 (section, "image_processor") == 0 ? "video_processor"
                                                                  : "image_processor";
  JsonObject *o = vlm_json_object (root, section ? section : "video_processor");
  return o ? o : vlm_json_object (root, other);
}

/* Reads the processor from `root` of `path`, freeing the parser. */
static gboolean
parse_object (JsonParser *parser, JsonObject *o, const char *path, VlmImageProcessor *proc,
              GError **error)
{
  Cfg c = { o, path };
  gboolean ok = processor_parse (&c, proc, error);
  g_autofree char *base = g_path_get_basename (path);
  g_strlcpy (proc->file, base, sizeof proc->file);
  g_object_unref (parser);
  return ok;
}

gboolean
vlm_image_processor_load (VlmImageProcessor *proc, const char *dir, const char *section,
                          GError **error)
{
  g_return_val_if_fail (proc && dir, FALSE);
  g_autofree char *nested_path = g_build_filename (dir, "processor_config.json", NULL);
  g_autofree char *flat_path = g_build_filename (dir, "preprocessor_config.json", NULL);
  g_autofree char *video_path = g_build_filename (dir, "video_preprocessor_config.json", NULL);
  JsonParser *parser = NULL;
  JsonObject *root = NULL;
  if (g_file_test (nested_path, G_FILE_TEST_EXISTS)) {
    if (!(root = vlm_json_load (nested_path, &parser, error)))
      return FALSE;
    JsonObject *nested = pick_section (root, section);
    if (nested)
      return parse_object (parser, nested, nested_path, proc, error);
  }
  /* a processor_config.json without a nested processor only names the
   * processor class: a flat file beside it, if any, holds the settings —
   * for videos video_preprocessor_config.json first (transformers ≥ 4.52
   * saves video processors there), else preprocessor_config.json */
  if (g_strcmp0 (section, "video_processor") == 0 && g_file_test (video_path, G_FILE_TEST_EXISTS)) {
    g_clear_object (&parser);
    if (!(root = vlm_json_load (video_path, &parser, error)))
      return FALSE;
    return parse_object (parser, root, video_path, proc, error);
  }
  if (g_file_test (flat_path, G_FILE_TEST_EXISTS)) {
    g_clear_object (&parser);
    if (!(root = vlm_json_load (flat_path, &parser, error)))
      return FALSE;
    return parse_object (parser, root, flat_path, proc, error);
  }
  if (root)
    return parse_object (parser, root, nested_path, proc, error);
  g_set_error (error, VLM_ERROR, VLM_ERROR_NOT_FOUND,
               "%s: no processor_config.json or preprocessor_config.json", dir);
  return FALSE;
}
