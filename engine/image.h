/* image.h — HF image processors in C: raw video frames to `pixel_values`.
 *
 * Reads the processor from `preprocessor_config.json` (flat, transformers 4)
 * or `processor_config.json` (nested under "image_processor" or
 * "video_processor", transformers 5). Reproduces what the HF processor does
 * through PIL: convert to RGB u8, resize (Pillow's antialiased bicubic /
 * bilinear, rounded back to u8; twice for SmolVLM's video frames), center
 * crop, rescale, normalise. */
#ifndef VLM_IMAGE_H
#define VLM_IMAGE_H

#include "tensor.h"
#include "vlm/vlm.h"

/* PIL resample codes, as HF configs store them. */
typedef enum {
  VLM_RESAMPLE_NEAREST = 0, VLM_RESAMPLE_LANCZOS = 1, VLM_RESAMPLE_BILINEAR = 2,
  VLM_RESAMPLE_BICUBIC = 3, VLM_RESAMPLE_BOX = 4, VLM_RESAMPLE_HAMMING = 5,
} VlmResample;

typedef struct {
  char file[32];             /* the config file read, in the model folder */
  char type[64];             /* "CLIPImageProcessor", "VideoMAEImageProcessor", ... */
  gboolean do_convert_rgb;
  gboolean do_resize;
  int shortest_edge;         /* > 0: resize shortest edge to this, keep aspect */
  int resize_h, resize_w;    /* > 0 (and shortest_edge 0): resize to exactly this */
  /* SmolVLM video frames are resized twice: first the longest edge to
   * pre_longest_edge keeping the aspect (the other edge made even), or to
   * pre_h × pre_w, rounded to u8; then to resize_h × resize_w. 0: once. */
  int pre_longest_edge, pre_h, pre_w;
  VlmResample resample;
  gboolean do_center_crop;
  int crop_h, crop_w;
  gboolean do_rescale;
  double rescale_factor;     /* double, as HF takes 1 / rescale_factor in Python */
  gboolean do_normalize;
  float mean[3], std[3];
  int out_h, out_w;          /* the pixel_values size this processor produces */
  double video_fps;          /* video_sampling.fps: frames a second (0: not given) */
  int video_max_frames;      /* video_sampling.max_frames (0: not given) */
} VlmImageProcessor;

/* Loads the processor for model folder `dir`. `section`: which nested
 * processor of processor_config.json to prefer ("video_processor" or
 * "image_processor"; falls back to the other, then to a flat file:
 * video_preprocessor_config.json for "video_processor", then
 * preprocessor_config.json). Error NOT_FOUND if no file exists,
 * BAD_CONFIG naming a bad key. */
gboolean vlm_image_processor_load (VlmImageProcessor *proc, const char *dir,
                                   const char *section, GError **error);

/* Bytes of scratch vlm_image_preprocess needs for a frame of w × h; 0 for
 * a size it refuses (< 1 or > VLM_MAX_FRAME_SIDE). */
size_t vlm_image_scratch_size (const VlmImageProcessor *proc, int w, int h);

/* frame -> out [3, out_h, out_w] (CHW, f32). `scratch` must hold
 * vlm_image_scratch_size() bytes. Error BAD_FRAME for zero/odd sizes that
 * the format cannot have, sides over VLM_MAX_FRAME_SIDE, NULL planes,
 * strides too small. */
gboolean vlm_image_preprocess (const VlmImageProcessor *proc, const VlmFrame *frame,
                               float *out, void *scratch, GError **error);

/* The RGB u8 conversion alone (packed RGB, stride w*3), for tools/tests. */
gboolean vlm_frame_to_rgb (const VlmFrame *frame, uint8_t *rgb, GError **error);

#endif
