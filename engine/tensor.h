/* tensor.h — dtypes, a borrowed tensor view, scalar conversions, a bump arena.
 * Internal to the engine. */
#ifndef VLM_TENSOR_H
#define VLM_TENSOR_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum {
  VLM_DTYPE_F32, VLM_DTYPE_BF16, VLM_DTYPE_F16, VLM_DTYPE_I64, VLM_DTYPE_I32,
  VLM_DTYPE_U8, VLM_DTYPE_I8, VLM_DTYPE_BOOL,
} VlmDType;

#define VLM_MAX_DIMS 6

/* A dense row-major view of data owned elsewhere (an mmap, an arena). */
typedef struct {
  const void *data;
  VlmDType dtype;
  int ndim;
  int64_t shape[VLM_MAX_DIMS];
} VlmTensor;

size_t vlm_dtype_size (VlmDType dtype);
const char *vlm_dtype_name (VlmDType dtype);   /* "F32", ... as safetensors spells it */
int64_t vlm_tensor_numel (const VlmTensor *t);
/* "[2, 3, 4]" into buf; returns buf. */
char *vlm_shape_str (const int64_t *shape, int ndim, char *buf, size_t len);

static inline float vlm_bf16_to_f32 (uint16_t h) {
  uint32_t u = (uint32_t) h << 16; float f; memcpy (&f, &u, 4); return f;
}
/* Round to nearest even, as torch does. */
static inline uint16_t vlm_f32_to_bf16 (float f) {
  uint32_t u; memcpy (&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t) ((u >> 16) | 0x40);  /* NaN */
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t) (u >> 16);
}
float vlm_f16_to_f32 (uint16_t h);

/* Converts n elements of `t` (f32/bf16/f16) to f32 into dst. */
void vlm_tensor_to_f32 (const VlmTensor *t, float *dst);
/* The same for rows row0 .. row0 + n_rows - 1 of the first dimension. */
void vlm_tensor_rows_to_f32 (const VlmTensor *t, int64_t row0, int64_t n_rows, float *dst);

/* ---- arena: one block allocated up front, carved by vlm_arena_alloc;
 * vlm_arena_reset rewinds it. Steady state allocates nothing. */
typedef struct {
  uint8_t *base;
  size_t size, used, peak;
} VlmArena;

gboolean vlm_arena_init (VlmArena *arena, size_t size);
void vlm_arena_clear (VlmArena *arena);
/* 64-byte aligned; g_assert on overflow (size the arena at session creation). */
void *vlm_arena_alloc (VlmArena *arena, size_t size);
#define vlm_arena_new(arena, type, n) ((type *) vlm_arena_alloc ((arena), sizeof (type) * (size_t) (n)))
static inline size_t vlm_arena_mark (VlmArena *a) { return a->used; }
static inline void vlm_arena_rewind (VlmArena *a, size_t mark) { a->used = mark; }

#endif
