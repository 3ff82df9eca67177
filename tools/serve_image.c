/* serve_image.c — data URLs of JPEG (libjpeg-turbo) and PNG (libpng's
 * simplified API) images into packed RGB. */
#include "serve_image.h"

#include <png.h>
#include <string.h>
#include <turbojpeg.h>

static gboolean
bad (GError **error, const char *what)
{
  g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_FRAME, "image_url: %s", what);
  return FALSE;
}

/* The size check before decoding: a small file can claim a huge image. */
static gboolean
size_ok (int width, int height, guint64 max_pixels, GError **error)
{
  if (width <= 0 || height <= 0 || width > VLM_MAX_FRAME_SIDE || height > VLM_MAX_FRAME_SIDE ||
      (guint64) width * height > max_pixels) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_FRAME,
                 "image_url: a %dx%d image is more than the %" G_GUINT64_FORMAT
                 " pixels (sides up to %d) this server takes", width, height, max_pixels,
                 VLM_MAX_FRAME_SIDE);
    return FALSE;
  }
  return TRUE;
}

static gboolean
decode_jpeg (const guint8 *data, gsize size, guint64 max_pixels, ServeImage *image, GError **error)
{
  tjhandle tj = tjInitDecompress ();
  int width, height, subsamp, colorspace;
  gboolean ok = FALSE;

  if (!tj)
    return bad (error, "libjpeg-turbo could not start");
  if (tjDecompressHeader3 (tj, data, size, &width, &height, &subsamp, &colorspace) != 0) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_FRAME, "image_url: bad JPEG header: %s",
                 tjGetErrorStr2 (tj));
  } else if (size_ok (width, height, max_pixels, error)) {
    image->rgb = g_malloc ((gsize) width * height * 3);
    image->width = width;
    image->height = height;
    if (tjDecompress2 (tj, data, size, image->rgb, width, width * 3, height, TJPF_RGB, 0) != 0) {
      g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_FRAME, "image_url: bad JPEG data: %s",
                   tjGetErrorStr2 (tj));
      serve_image_clear (image);
    } else {
      ok = TRUE;
    }
  }
  tjDestroy (tj);
  return ok;
}

static gboolean
decode_png (const guint8 *data, gsize size, guint64 max_pixels, ServeImage *image, GError **error)
{
  png_image png = {.version = PNG_IMAGE_VERSION};

  if (!png_image_begin_read_from_memory (&png, data, size)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_FRAME, "image_url: bad PNG: %s", png.message);
    png_image_free (&png);
    return FALSE;
  }
  if (!size_ok (png.width, png.height, max_pixels, error)) {
    png_image_free (&png);
    return FALSE;
  }
  png.format = PNG_FORMAT_RGB;   /* alpha composited on black, grey widened */
  image->width = png.width;
  image->height = png.height;
  image->rgb = g_malloc (PNG_IMAGE_SIZE (png));
  if (!png_image_finish_read (&png, NULL, image->rgb, 0, NULL)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_FRAME, "image_url: bad PNG data: %s", png.message);
    png_image_free (&png);
    serve_image_clear (image);
    return FALSE;
  }
  return TRUE;
}

gboolean
serve_image_decode (const char *url, guint64 max_pixels, ServeImage *image, GError **error)
{
  const char *comma, *p;
  guint8 *data;
  gsize size;
  gboolean ok;

  memset (image, 0, sizeof (*image));
  if (g_str_has_prefix (url, "http://") || g_str_has_prefix (url, "https://"))
    return bad (error, "this server does not fetch URLs: send the image as a data URL "
                       "(data:image/jpeg;base64,...)");
  if (!g_str_has_prefix (url, "data:image/") || !(comma = strchr (url, ',')))
    return bad (error, "not a data URL of an image (data:image/jpeg;base64,...)");
  if (comma - url < 7 || strncmp (comma - 7, ";base64", 7) != 0)
    return bad (error, "the data URL is not base64 (data:image/...;base64,...)");
  /* g_base64_decode skips what is not base64: check, so garbage is refused */
  for (p = comma + 1; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '+' && *p != '/' && *p != '=' && !g_ascii_isspace (*p))
      return bad (error, "the data URL holds characters that are not base64");
  data = g_base64_decode (comma + 1, &size);
  if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
    ok = decode_jpeg (data, size, max_pixels, image, error);
  else if (size >= 8 && memcmp (data, "\x89PNG\r\n\x1a\n", 8) == 0)
    ok = decode_png (data, size, max_pixels, image, error);
  else
    ok = bad (error, "the data is neither JPEG nor PNG");
  g_free (data);
  return ok;
}

void
serve_image_clear (ServeImage *image)
{
  g_clear_pointer (&image->rgb, g_free);
  image->width = image->height = 0;
}

VlmFrame
serve_image_frame (const ServeImage *image)
{
  return (VlmFrame) {.format = VLM_PIXEL_RGB, .width = image->width, .height = image->height,
                     .planes = {image->rgb}, .strides = {image->width * 3},
                     .yuv_matrix = VLM_YUV_BT601};
}
