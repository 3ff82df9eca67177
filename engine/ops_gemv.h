/* ops_gemv.h — decode's linears (ops_gemv.c): a few rows of input
 * against each weight, streamed once from memory. Internal to the ops. */
#ifndef VLM_OPS_GEMV_H
#define VLM_OPS_GEMV_H

#include "ops_kernels.h"
#include "ops_types.h"

/* Whether the tier runs the blocked bf16 GEMV (vlm_cpu_native_bf16), the
 * blocked f32 one (AVX-512). */
gboolean vlm_gemv_bf16_supported (void);
gboolean vlm_gemv_f32_supported (void);
/* One output of vlm_gemv: y[m, n] = act(x · Wᵀ + bias) + residual. W is
 * bf16 {k, n} blocked as oneDNN's BA16a64b2a ([⌈n/64⌉][kpad/2][64][2], zero
 * padded) when the input is given in bf16 (VlmGemvIn.xb); f32 blocked as
 * BA16a64b ([⌈n/64⌉][kpad][64]) when the input is f32 x with kpad set; s8 rows [n][ldw]
 * (zero past k, ldw = kpad, 64-byte aligned) when `scales` is set, with
 * W[j, :] ≈ scales[j] · q[j, :] and sums[j] = Σ_t q[j, t] (for the input's
 * zero point); else HF's rows [n][ldw], f32 or bf16. bias and residual may
 * be NULL; residual may alias y. */
typedef struct {
  const void *w;
  size_t ldw;
  gboolean bf16;
  int n;
  const float *bias;
  VlmAct act;
  const float *residual;
  float *y;
  const float *scales;
  const int32_t *sums;
} VlmGemvOut;
/* The m <= VLM_GEMV_MAX_ROWS rows of input (bf16: vlm_gemv_bf16_max_rows): bf16 xb [m, kpad] (zero past
 * k; kpad a multiple of 32) for blocked bf16 weights; f32 x [m, k] and the
 * weight's kpad (a multiple of 16) for blocked f32 ones; u8 xq [m, kpad] (zero past
 * k; kpad a multiple of 64, 64-byte aligned) for s8 weights, each row with
 * its own scale and zero point, x[r] ≈ xq_scales[r] · (xq[r] - xq_zeros[r])
 * (so a row's output never depends on the other rows); else f32 x [m, k].
 * bf16 input of 3 to VLM_GEMV_TILE_ROWS rows runs on AMX tiles where the
 * process may use them (vlm_cpu_amx_tiles), else (up to 4) on vdpbf16ps. */
typedef struct {
  int m, k, kpad;
  const uint16_t *xb;
  const float *x;
  const uint8_t *xq;
  const float *xq_scales;
  const int32_t *xq_zeros;
  gboolean no_tiles;   /* bf16, m <= 4: the vector kernel even where AMX tiles would run it (tests) */
} VlmGemvIn;
#define VLM_GEMV_MAX_OUTS 4
/* The most rows of bf16 input vlm_gemv takes where AMX tiles run them (a
 * tile's rows); VLM_GEMV_MAX_ROWS elsewhere. */
#define VLM_GEMV_TILE_ROWS 16
/* The most rows of bf16 input (blocked weights) vlm_gemv takes on this
 * process: VLM_GEMV_TILE_ROWS with AMX tiles, else VLM_GEMV_MAX_ROWS. */
int vlm_gemv_bf16_max_rows (void);
/* Every output, their blocks shared out over OpenMP's current thread count
 * in one parallel region. */
void vlm_gemv (const VlmGemvOut *outs, int n_outs, const VlmGemvIn *in);
/* The same through the given table of kernels (tests: every table the
 * CPU runs; vlm_gemv passes the tier's, vlm_kernels()). */
void vlm_gemv_with (const VlmKernels *kernels, const VlmGemvOut *outs, int n_outs, const VlmGemvIn *in);

#endif
