/* fuzz_image.c — image preprocessing: a processor config made from the
 * first bytes (class, resize, crop, resample; loaded through
 * preprocessor_config.json as a model's is), then a frame of any format,
 * odd size and stride made from the rest, preprocessed and converted. */
#include "fuzz.h"
#include "image.h"

#define HEAD 13

static const char *const types[] = {
  "CLIPImageProcessor", "VideoMAEImageProcessor", "SiglipImageProcessor", "LlavaOnevisionImageProcessor",
  "SmolVLMImageProcessor", "BlipImageProcessor", "ViTImageProcessor", "SomethingElse",
};

/* A size member of kind 0..3: bare int, {"shortest_edge"}, {"height", "width"}, {"longest_edge"}. */
static void
append_size (GString *s, const char *key, int kind, int a, int b)
{
  static const char *const fmt[] = { "\"%s\":%d,", "\"%s\":{\"shortest_edge\":%d},",
                                     "\"%s\":{\"height\":%d,\"width\":%d},", "\"%s\":{\"longest_edge\":%d}," };
  g_string_append_printf (s, fmt[kind], key, a, b);
}

int
LLVMFuzzerTestOneInput (const uint8_t *d, size_t size)
{
  fuzz_init ();
  if (size < HEAD)
    return 0;
  GString *cfg = g_string_new ("{");
  g_string_append_printf (cfg, "\"image_processor_type\":\"%s\",\"do_resize\":%s,\"do_center_crop\":%s,"
                          "\"resample\":%d,", types[d[0] % G_N_ELEMENTS (types)], d[1] & 1 ? "true" : "false",
                          d[1] & 2 ? "true" : "false", d[6] % 6);
  append_size (cfg, "size", (d[1] >> 2) & 3, 1 + d[2] % 96, 1 + d[3] % 96);
  append_size (cfg, "crop_size", (d[1] >> 4) & 3, 1 + d[4] % 96, 1 + d[5] % 96);
  if (d[1] & 0x40)
    g_string_append_printf (cfg, "\"max_image_size\":{\"longest_edge\":%d},", 1 + d[3] % 96);
  g_string_append (cfg, "\"do_normalize\":true}");
  fuzz_write ("preprocessor_config.json", (const uint8_t *) cfg->str, cfg->len);
  g_string_free (cfg, TRUE);

  VlmImageProcessor p;
  GError *error = NULL;
  if (!vlm_image_processor_load (&p, fuzz_dir (), d[1] & 0x80 ? "video_processor" : NULL, &error)) {
    g_error_free (error);
    return 0;
  }
  /* the frame: format, size up to 300 a side, stride padding, colorimetry */
  VlmFrame f = { .format = (VlmPixelFormat) (d[7] % 8), .width = 1 + (d[8] | d[9] << 8) % 300,
                 .height = 1 + (d[10] | d[11] << 8) % 300, .yuv_matrix = d[12] & 1, .yuv_full_range = (d[12] >> 1) & 1 };
  int pad = (d[12] >> 2) % 9, cw = (f.width + 1) / 2, ch = (f.height + 1) / 2;
  int bpp = f.format <= VLM_PIXEL_RGB ? 3 : 4;
  size_t plane_bytes[3] = {0};
  if (f.format == VLM_PIXEL_I420 || f.format == VLM_PIXEL_NV12) {
    f.strides[0] = f.width + pad;
    f.strides[1] = (f.format == VLM_PIXEL_NV12 ? 2 * cw : cw) + pad;
    f.strides[2] = f.format == VLM_PIXEL_I420 ? cw + pad : 0;
    plane_bytes[0] = (size_t) f.strides[0] * f.height;
    plane_bytes[1] = (size_t) f.strides[1] * ch;
    plane_bytes[2] = (size_t) f.strides[2] * ch;
  } else {
    f.strides[0] = f.width * bpp + pad;
    plane_bytes[0] = (size_t) f.strides[0] * f.height;
  }
  /* the pixels: the rest of the input, repeated */
  uint8_t *planes[3] = {NULL};
  for (int i = 0; i < 3; i++)
    if (plane_bytes[i]) {
      planes[i] = g_malloc (plane_bytes[i]);
      for (size_t k = 0; k < plane_bytes[i]; k++)
        planes[i][k] = size > HEAD ? d[HEAD + (k + i) % (size - HEAD)] : (uint8_t) k;
      f.planes[i] = planes[i];
    }
  size_t need = vlm_image_scratch_size (&p, f.width, f.height);
  void *scratch = g_malloc (MAX (need, 1));
  float *out = g_new (float, (size_t) 3 * p.out_h * p.out_w);
  uint8_t *rgb = g_malloc ((size_t) f.width * f.height * 3);
  if (!vlm_image_preprocess (&p, &f, out, scratch, &error))
    g_clear_error (&error);
  if (!vlm_frame_to_rgb (&f, rgb, &error))
    g_clear_error (&error);
  g_free (rgb);
  g_free (out);
  g_free (scratch);
  for (int i = 0; i < 3; i++)
    g_free (planes[i]);
  return 0;
}
