/* serve_image.h — vlm-server: image content parts to RGB frames.
 *
 * OpenAI's image_url parts carry a URL; vlm-server takes only data URLs
 * ("data:image/jpeg;base64,..." or image/png), and never fetches a remote
 * URL (a server that fetches what a request names can be turned on the
 * network it sits in). The bytes are recognised by their signature, not by
 * the declared type, and their size is checked from the header before a
 * pixel is decoded. */
#ifndef VLM_SERVE_IMAGE_H
#define VLM_SERVE_IMAGE_H

#include <vlm/vlm.h>

G_BEGIN_DECLS

/* An image of a request, decoded: packed RGB, owned. */
typedef struct {
  guint8 *rgb;
  int width, height;
} ServeImage;

/* Decodes the data URL `url` into `image` (clear with serve_image_clear).
 * FALSE with `error` (VLM_ERROR_BAD_FRAME) saying what is wrong: not a
 * data URL, not base64, neither JPEG nor PNG, a broken image, or one of
 * more than `max_pixels` pixels or a side beyond VLM_MAX_FRAME_SIDE.
 * Thread-safe. */
gboolean serve_image_decode (const char *url, guint64 max_pixels, ServeImage *image,
                             GError **error);
void serve_image_clear (ServeImage *image);

/* The engine's view of `image` (borrowed). */
VlmFrame serve_image_frame (const ServeImage *image);

G_END_DECLS

#endif /* VLM_SERVE_IMAGE_H */
