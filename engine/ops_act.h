/* ops_act.h — the activations HF configs name, and their reference
 * definitions in plain C (as PyTorch defines each). The bottom of the ops:
 * the BLAS backend and the GEMV epilogue apply them from here. */
#ifndef VLM_OPS_ACT_H
#define VLM_OPS_ACT_H

#include <glib.h>
#include <stddef.h>

typedef enum {
  VLM_ACT_NONE,
  VLM_ACT_GELU_ERF,     /* HF "gelu" */
  VLM_ACT_GELU_TANH,    /* HF "gelu_pytorch_tanh", "gelu_new" */
  VLM_ACT_QUICK_GELU,   /* x * sigmoid(1.702 x) */
  VLM_ACT_SILU,         /* x * sigmoid(x) */
  VLM_ACT_RELU,
} VlmAct;

/* HF hidden_act string -> VlmAct; FALSE if unknown. */
gboolean vlm_act_from_name (const char *name, VlmAct *act);

/* In place over n values, one at a time. */
void vlm_act_ref (VlmAct act, float *x, size_t n);

#endif
