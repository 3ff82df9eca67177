/* testutil.h — shared helpers for the engine tests (GLib gtest, TAP). */
#ifndef VLM_TESTUTIL_H
#define VLM_TESTUTIL_H

#include "safetensors.h"
#include "tensor.h"

/* Absolute path of `rel` under ../shared (relative to the project root,
 * taken from $VLM_PROJECT_ROOT or the working directory). g_free. */
char *vt_shared_path (const char *rel);
/* Absolute path of `rel` under the project root (e.g. "models/testcard-git"). g_free. */
char *vt_project_path (const char *rel);

/* Opens a golden file (e.g. "fixtures/git-video-tiny/golden.safetensors");
 * aborts the test with a message if it cannot. */
VlmSafetensors *vt_open_golden (const char *rel);

/* Tensor `name` of `st` as a newly allocated f32 array (g_free), numel in *n
 * (n may be NULL). Fails the test if absent. Accepts f32/bf16/f16/i64/u8. */
float *vt_tensor_f32 (const VlmSafetensors *st, const char *name, int64_t *n);
/* Tensor `name` as int array (from I64/I32). g_free. */
int *vt_tensor_int (const VlmSafetensors *st, const char *name, int64_t *n);

/* max |a-b| / (max(b)-min(b)) over n values — the fixtures' tolerance rule. */
double vt_max_rel_range_diff (const float *a, const float *b, int64_t n);
/* Asserts vt_max_rel_range_diff(a, b, n) <= tol, printing the figure with
 * `what` via g_test_message either way so the log records parity. */
void vt_assert_close (const char *what, const float *a, const float *b, int64_t n, double tol);

#endif
