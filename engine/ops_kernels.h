/* ops_kernels.h — the table of the engine's own kernels for one CPU tier
 * (ops_kernels.c, compiled once per tier). Internal to the ops. */
#ifndef VLM_OPS_KERNELS_H
#define VLM_OPS_KERNELS_H

#include <glib.h>
#include <stdint.h>

#define VLM_GEMV_MAX_ROWS 4
#define VLM_DECODE_MAX_ROWS 8

typedef struct {
  /* out[r · 64 + j] = Σ_t x[r, t] · W[j, t] for the len <= 64 rows of W at w
   * ([len][ldw], f32 or bf16) and m <= VLM_GEMV_MAX_ROWS rows of x [m, k] */
  void (*gemv_rows) (const void *w, size_t ldw, gboolean bf16, int len, const float *x, int k, int m,
                     float *out);
  /* n bf16 values widened to f32 */
  void (*bf16_to_f32) (const uint16_t *src, size_t n, float *dst);
  /* R <= VLM_DECODE_MAX_ROWS query rows qr of one kv head over transposed
   * keys kt [hd rows, stride ldkt] and values v [rows, stride ldv]: row r
   * sees keys < lim[r]; scores (scaled), softmax in sr[r], context in or[r]
   * (hd % 16 == 0) */
  void (*attend_rows) (const float *const *qr, int R, const int *lim, const float *kt, int ldkt,
                       const float *v, int ldv, int hd, float scale, float *const *sr, float *const *or);
} VlmKernels;

extern const VlmKernels vlm_kernels_avx512, vlm_kernels_avx2, vlm_kernels_generic;

/* The table of the current tier (vlm_cpu_tier). */
const VlmKernels *vlm_kernels (void);

#endif
