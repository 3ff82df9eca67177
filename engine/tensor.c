/* tensor.c — dtype table, conversions and the bump arena. */
#include "tensor.h"

#include <stdio.h>
#include <stdlib.h>

/* ---------------------------------------------------------------- dtypes */

static const struct { const char *name; size_t size; } dtype_table[] = {
  [VLM_DTYPE_F32] = {"F32", 4}, [VLM_DTYPE_BF16] = {"BF16", 2}, [VLM_DTYPE_F16] = {"F16", 2},
  [VLM_DTYPE_I64] = {"I64", 8}, [VLM_DTYPE_I32] = {"I32", 4},   [VLM_DTYPE_U8] = {"U8", 1},
  [VLM_DTYPE_I8] = {"I8", 1},   [VLM_DTYPE_BOOL] = {"BOOL", 1},
};

size_t
vlm_dtype_size (VlmDType dtype)
{
  return dtype_table[dtype].size;
}

const char *
vlm_dtype_name (VlmDType dtype)
{
  return dtype_table[dtype].name;
}

int64_t
vlm_tensor_numel (const VlmTensor *t)
{
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++)
    n *= t->shape[i];
  return n;
}

char *
vlm_shape_str (const int64_t *shape, int ndim, char *buf, size_t len)
{
  size_t off = (size_t) snprintf (buf, len, "[");
  for (int i = 0; i < ndim && off < len; i++)
    off += (size_t) snprintf (buf + off, len - off, i ? ", %lld" : "%lld", (long long) shape[i]);
  if (off < len)
    snprintf (buf + off, len - off, "]");
  return buf;
}

/* IEEE half to float, subnormals included. */
float
vlm_f16_to_f32 (uint16_t h)
{
  uint32_t sign = (uint32_t) (h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
  if (exp == 0x1f)
    u = sign | 0x7f800000u | (man << 13);
  else if (exp != 0)
    u = sign | ((exp + 112) << 23) | (man << 13);
  else if (man == 0)
    u = sign;
  else {                        /* subnormal: normalise the mantissa */
    exp = 113;
    while (!(man & 0x400)) { man <<= 1; exp--; }
    u = sign | (exp << 23) | ((man & 0x3ff) << 13);
  }
  float f;
  memcpy (&f, &u, 4);
  return f;
}

void
vlm_tensor_to_f32 (const VlmTensor *t, float *dst)
{
  vlm_tensor_rows_to_f32 (t, 0, t->ndim ? t->shape[0] : 1, dst);
}

void
vlm_tensor_rows_to_f32 (const VlmTensor *t, int64_t row0, int64_t n_rows, float *dst)
{
  int64_t row = t->ndim ? vlm_tensor_numel (t) / MAX (t->shape[0], 1) : 1;
  int64_t n = n_rows * row;
  const uint16_t *h = (const uint16_t *) t->data + row0 * row;
  switch (t->dtype) {
    case VLM_DTYPE_F32: memcpy (dst, (const float *) t->data + row0 * row, (size_t) n * 4); break;
    case VLM_DTYPE_BF16: for (int64_t i = 0; i < n; i++) dst[i] = vlm_bf16_to_f32 (h[i]); break;
    case VLM_DTYPE_F16: for (int64_t i = 0; i < n; i++) dst[i] = vlm_f16_to_f32 (h[i]); break;
    default: g_assert_not_reached ();
  }
}

/* ---------------------------------------------------------------- arena */

gboolean
vlm_arena_init (VlmArena *arena, size_t size)
{
  memset (arena, 0, sizeof *arena);
  arena->base = size ? aligned_alloc (64, (size + 63) & ~(size_t) 63) : NULL;
  arena->size = size;
  return size == 0 || arena->base != NULL;
}

void
vlm_arena_clear (VlmArena *arena)
{
  free (arena->base);
  memset (arena, 0, sizeof *arena);
}

void *
vlm_arena_alloc (VlmArena *arena, size_t size)
{
  size_t start = (arena->used + 63) & ~(size_t) 63;
  g_assert (start + size <= arena->size);  /* sized at session creation: a bug if not */
  arena->used = start + size;
  if (arena->used > arena->peak)
    arena->peak = arena->used;
  return arena->base + start;
}
