/* gstvlmjpeg.h — video frames as JPEG, for the remote backend.
 *
 * Any format GstVideoConverter reads becomes a 4:2:0 JPEG of the frame's
 * size at the given quality. The encoder keeps its scratch (the RGB copy,
 * the JPEG buffer sized for the worst case, the converter) between frames
 * of one size and format, so a stream allocates nothing per frame.
 * Not thread-safe: one thread uses a GstVlmJpeg. */
#ifndef __GST_VLM_JPEG_H__
#define __GST_VLM_JPEG_H__

#include <gio/gio.h>
#include <gst/video/video.h>

G_BEGIN_DECLS

typedef struct _GstVlmJpeg GstVlmJpeg;

/* An encoder at `quality` (clamped to 1..100). */
GstVlmJpeg *gst_vlm_jpeg_new (guint quality);
void gst_vlm_jpeg_free (GstVlmJpeg * jpeg);

/* `frame` (mapped) as JPEG: `*size` bytes, owned by the encoder and valid
 * until its next call. NULL with `error` for a format that cannot be
 * converted to RGB or a failing encoder. */
const guint8 *gst_vlm_jpeg_encode (GstVlmJpeg * jpeg,
    const GstVideoFrame * frame, gsize * size, GError ** error);

G_END_DECLS

#endif /* __GST_VLM_JPEG_H__ */
