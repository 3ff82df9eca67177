/* gstvlmjpeg.c — video frames as JPEG (libjpeg-turbo) for the remote
 * backend. */
#include <turbojpeg.h>

#include "gstvlmjpeg.h"

struct _GstVlmJpeg
{
  guint quality;
  tjhandle tj;                  /* NULL until the first frame */
  GstVideoConverter *convert;   /* frame format -> RGB; NULL: not made */
  GstVideoInfo convert_in;
  GstVideoInfo rgb_info;
  GstBuffer *rgb;               /* the converted frame */
  guint8 *out;                  /* tjBufSize () for rgb_info */
  unsigned long capacity;
};

GstVlmJpeg *
gst_vlm_jpeg_new (guint quality)
{
  GstVlmJpeg *jpeg = g_new0 (GstVlmJpeg, 1);

  jpeg->quality = CLAMP (quality, 1, 100);
  gst_video_info_init (&jpeg->convert_in);
  gst_video_info_init (&jpeg->rgb_info);
  return jpeg;
}

void
gst_vlm_jpeg_free (GstVlmJpeg * jpeg)
{
  if (!jpeg)
    return;
  if (jpeg->tj)
    tjDestroy (jpeg->tj);
  if (jpeg->convert)
    gst_video_converter_free (jpeg->convert);
  gst_clear_buffer (&jpeg->rgb);
  tjFree (jpeg->out);
  g_free (jpeg);
}

static const struct
{
  GstVideoFormat gst;
  int tj;
} packed_formats[] = {
  {GST_VIDEO_FORMAT_RGB, TJPF_RGB},
  {GST_VIDEO_FORMAT_RGBx, TJPF_RGBX},
  {GST_VIDEO_FORMAT_BGRx, TJPF_BGRX},
  {GST_VIDEO_FORMAT_RGBA, TJPF_RGBA},
  {GST_VIDEO_FORMAT_BGRA, TJPF_BGRA},
};

/* Sizes the RGB scratch and the JPEG buffer for a w x h frame. */
static void
ensure_scratch (GstVlmJpeg * jpeg, gint width, gint height)
{
  if (GST_VIDEO_INFO_WIDTH (&jpeg->rgb_info) == width &&
      GST_VIDEO_INFO_HEIGHT (&jpeg->rgb_info) == height)
    return;
  gst_video_info_set_format (&jpeg->rgb_info, GST_VIDEO_FORMAT_RGB, width,
      height);
  gst_clear_buffer (&jpeg->rgb);
  jpeg->rgb = gst_buffer_new_allocate (NULL,
      GST_VIDEO_INFO_SIZE (&jpeg->rgb_info), NULL);
  tjFree (jpeg->out);
  jpeg->capacity = tjBufSize (width, height, TJSAMP_420);
  jpeg->out = tjAlloc (jpeg->capacity);
}

/* Packed RGB layouts go to libjpeg-turbo as they are; YUV goes through
 * GstVideoConverter to RGB first, which honours the frame's matrix and
 * range (JPEG's own YCbCr is full-range BT.601, so handing it the video's
 * planes would shift every colour of a limited-range frame). */
const guint8 *
gst_vlm_jpeg_encode (GstVlmJpeg * jpeg, const GstVideoFrame * frame,
    gsize * size, GError ** error)
{
  const GstVideoInfo *info = &frame->info;
  gint width = GST_VIDEO_INFO_WIDTH (info), height = GST_VIDEO_INFO_HEIGHT (info);
  const guint8 *pixels = GST_VIDEO_FRAME_PLANE_DATA (frame, 0);
  gint stride = GST_VIDEO_FRAME_PLANE_STRIDE (frame, 0), pf = -1;
  GstVideoFrame rgb;
  gboolean mapped = FALSE, ok;
  unsigned long out_size;
  guint i;

  if (!jpeg->tj && !(jpeg->tj = tjInitCompress ())) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
        "libjpeg-turbo: %s", tjGetErrorStr ());
    return NULL;
  }
  ensure_scratch (jpeg, width, height);
  for (i = 0; i < G_N_ELEMENTS (packed_formats); i++)
    if (packed_formats[i].gst == GST_VIDEO_INFO_FORMAT (info))
      pf = packed_formats[i].tj;
  if (pf < 0) {
    if (!jpeg->convert || !gst_video_info_is_equal (&jpeg->convert_in,
            info)) {
      if (jpeg->convert)
        gst_video_converter_free (jpeg->convert);
      jpeg->convert_in = *info;
      /* the converter wants the same rate on both sides */
      GST_VIDEO_INFO_FPS_N (&jpeg->rgb_info) = GST_VIDEO_INFO_FPS_N (info);
      GST_VIDEO_INFO_FPS_D (&jpeg->rgb_info) = GST_VIDEO_INFO_FPS_D (info);
      jpeg->convert = gst_video_converter_new (&jpeg->convert_in,
          &jpeg->rgb_info, NULL);
    }
    if (!jpeg->convert || !gst_video_frame_map (&rgb, &jpeg->rgb_info,
            jpeg->rgb, GST_MAP_WRITE)) {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
          "cannot convert %s frames to RGB",
          gst_video_format_to_string (GST_VIDEO_INFO_FORMAT (info)));
      return NULL;
    }
    mapped = TRUE;
    gst_video_converter_frame (jpeg->convert, frame, &rgb);
    pixels = GST_VIDEO_FRAME_PLANE_DATA (&rgb, 0);
    stride = GST_VIDEO_FRAME_PLANE_STRIDE (&rgb, 0);
    pf = TJPF_RGB;
  }
  out_size = jpeg->capacity;
  ok = tjCompress2 (jpeg->tj, pixels, width, stride, height, pf,
      &jpeg->out, &out_size, TJSAMP_420, jpeg->quality,
      TJFLAG_NOREALLOC) == 0;
  *size = out_size;
  if (!ok)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
        "JPEG encoding of a %dx%d frame: %s", width, height, tjGetErrorStr ());
  if (mapped)
    gst_video_frame_unmap (&rgb);
  return ok ? jpeg->out : NULL;
}
