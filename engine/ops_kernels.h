/* ops_kernels.h — the table of the engine's own kernels for one CPU tier
 * (ops_kernels.c, compiled once per tier). Internal to the ops. */
#ifndef VLM_OPS_KERNELS_H
#define VLM_OPS_KERNELS_H

#include <glib.h>
#include <stdint.h>

#include "ops_act.h"

#define VLM_GEMV_MAX_ROWS 4
#define VLM_DECODE_MAX_ROWS 8

typedef struct {
  /* out[r · 64 + j] = Σ_t x[r, t] · W[j, t] for the len <= 64 rows of W at w
   * ([len][ldw], f32 or bf16) and m <= VLM_GEMV_MAX_ROWS rows of x [m, k] */
  void (*gemv_rows) (const void *w, size_t ldw, gboolean bf16, int len, const float *x, int k, int m,
                     float *out);
  /* out[r · 64 + j] = Σ_t x[r, t] · W[j, t] exactly (s32) for the len <= 64
   * s8 rows of W at w ([len][ldw]) and m <= VLM_GEMV_MAX_ROWS rows of u8 x
   * [m, kpad], kpad a multiple of 64 (both zero past k). Below VNNI the
   * weights must be 7-bit (|W| <= 63, vlm_cpu_int8_weight_max): pairs of
   * products are summed in s16 there. */
  void (*gemv_rows_s8) (const int8_t *w, size_t ldw, int len, const uint8_t *x, int kpad, int m, int32_t *out);
  /* n bf16 values widened to f32 */
  void (*bf16_to_f32) (const uint16_t *src, size_t n, float *dst);
  /* R <= VLM_DECODE_MAX_ROWS query rows qr of one kv head over transposed
   * keys kt [hd rows, stride ldkt] and values v [rows, stride ldv], f32 or
   * (kv_bf16) bf16, widened exactly: row r sees keys < lim[r]; scores
   * (scaled), softmax in sr[r], context in or[r] (hd % 16 == 0) */
  void (*attend_rows) (const float *const *qr, int R, const int *lim, const void *kt, int ldkt,
                       const void *v, int ldv, gboolean kv_bf16, int hd, float scale, float *const *sr,
                       float *const *or);
  /* the activation over n values in place, vectorised (the decode GEMV's
   * epilogue; vlm_act_ref is the definition) */
  void (*act) (VlmAct act, float *x, size_t n);
  /* *lo, *hi widened to cover the n values at x (NaNs left out) */
  void (*u8_range) (const float *x, size_t n, float *lo, float *hi);
  /* q[i] = clamp (rne (x[i] · inv) + zero, 0, 255), the same bytes on
   * every tier (an int8 linear's input, ops_dnnl.c) */
  void (*u8_quantise) (const float *x, size_t n, float inv, float zero, uint8_t *q);
} VlmKernels;

/* avx512vnni: the avx512 kernels with vpdpbusd for int8 (the tiers from
 * avx512-bf16 up, which have VNNI); avx512 without it */
extern const VlmKernels vlm_kernels_avx512vnni, vlm_kernels_avx512, vlm_kernels_avx2, vlm_kernels_generic;

/* The table of the current tier (vlm_cpu_tier). */
const VlmKernels *vlm_kernels (void);

#endif
