/* ops_scratch.c — growing scratch buffers (ops_scratch.h). */
#include "ops_scratch.h"

float *
vlm_scratch_get (VlmScratch *s, size_t n)
{
  if (n > s->cap) {
    /* by half again at least: decode asks for one more key per token */
    s->cap = MAX (n, s->cap + s->cap / 2);
    g_aligned_free (s->data);
    s->data = g_aligned_alloc (s->cap, sizeof (float), 64);
  }
  return s->data;
}

void
vlm_scratch_clear (VlmScratch *s)
{
  g_aligned_free (s->data);
  s->data = NULL;
  s->cap = 0;
}
