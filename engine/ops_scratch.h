/* ops_scratch.h — a float buffer that grows (by half at least) when a
 * request exceeds it and never shrinks, so a steady state allocates
 * nothing. Each backend keeps its own. Internal to the ops. */
#ifndef VLM_OPS_SCRATCH_H
#define VLM_OPS_SCRATCH_H

#include <glib.h>

typedef struct {
  float *data;
  size_t cap;   /* floats */
} VlmScratch;

/* At least n floats, 64-byte aligned; contents undefined after growth. */
float *vlm_scratch_get (VlmScratch *s, size_t n);
void vlm_scratch_clear (VlmScratch *s);

#endif
