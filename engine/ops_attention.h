/* ops_attention.h — softmax(q kᵀ · scale + mask) v over all heads, for
 * either backend: the pipeline (scores, mask, softmax, context) in query
 * blocks that stay in cache, bf16 on oneDNN where the tier has it, and
 * decode-sized queries sent to the engine's own kernel (ops_kernels.h) or
 * one single-threaded sgemm per head. Its scratch is its own. Internal to
 * the ops. */
#ifndef VLM_OPS_ATTENTION_H
#define VLM_OPS_ATTENTION_H

#include "ops_dnnl.h"

typedef struct VlmAttention VlmAttention;

VlmAttention *vlm_attention_new (void);
void vlm_attention_free (VlmAttention *a);
/* Full-length attention (more than VLM_DECODE_MAX_ROWS query rows) on
 * oneDNN multiplies in bf16 (see vlm_ops_set_attention_dtype). */
void vlm_attention_set_bf16 (VlmAttention *a, gboolean bf16);
/* On oneDNN `d`, or the BLAS backend when d is NULL; decode-sized work
 * is shared out over n_threads. */
void vlm_attention_run (VlmAttention *a, VlmOpsDnnl *d, int n_threads, const VlmAttnShape *s, const float *q,
                        const void *k, const void *v, const VlmMask *mask, float *out);

#endif
