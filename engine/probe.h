/* probe.h — one of the engine's own kernels as a benchmark times it,
 * without a model: the linear decode runs (one row of input) over weights
 * prepared as a model's are (vlm_linear_pack). tools/vlm-bench uses it for
 * a machine limit (the engine's GEMV from DRAM) and for its bandwidth
 * probe: the one engine-internal interface a tool sees (vlm.h is the rest),
 * so that ops.h stays the engine's own. Not thread-safe per probe. */
#ifndef VLM_PROBE_H
#define VLM_PROBE_H

#include "vlm/vlm.h"

typedef struct VlmGemvProbe VlmGemvProbe;

/* `n_copies` random weights of rows × cols, each packed for the oneDNN
 * backend in what `precision` keeps them in (see vlm_precision_is_f32), run
 * on n_threads (0: all cores). NULL + error if the tier cannot. */
VlmGemvProbe *vlm_gemv_probe_new (VlmPrecision precision, int rows, int cols, int n_copies, int n_threads,
                                  GError **error);
void vlm_gemv_probe_free (VlmGemvProbe *p);
/* Applies the probe's thread count to the calling thread: before timing. */
void vlm_gemv_probe_bind (VlmGemvProbe *p);
/* y = W x for copy i % n_copies (the copies together exceed the caches). */
void vlm_gemv_probe_run (VlmGemvProbe *p, int i);
/* Bytes of one copy's weight as it is read. */
double vlm_gemv_probe_bytes (const VlmGemvProbe *p);
/* Whether oneDNN keeps the weights of `precision` (AUTO resolved for this
 * tier, as a model's) in f32. */
gboolean vlm_precision_is_f32 (VlmPrecision precision);

#endif
