/* batcher.h — what sessions (session.c) call on a VlmBatcher (vlm.h):
 * every computation of a batched session runs on the batcher's thread.
 *
 * Work comes in three kinds. A call runs one function there (a stage the
 * batcher does not batch: prefill, tagging, resizing a run). An encode is
 * a clip for the vision tower: clips waiting together go through the
 * tower in one call where the architecture has encode_batch. A step is
 * one decode step of one caption: every step waiting is run as one
 * batched step (VlmDecoder step_batch). Callers block until their work is
 * done. Between work, the thread waits briefly for the captions still
 * decoding (vlm_batcher_decoding) to hand in their next step, so that
 * captions in flight share each step instead of alternating. */
#ifndef VLM_BATCHER_H
#define VLM_BATCHER_H

#include "arch.h"

/* The context every batched session computes with (owned by the batcher). */
VlmOps *vlm_batcher_ops (VlmBatcher *b);
VlmModel *vlm_batcher_model (VlmBatcher *b);

/* Runs fn(data, error) on the batcher's thread, then takes the ops' error.
 * A caller whose `cancel` is set before its turn comes gets CANCELLED. */
gboolean vlm_batcher_call (VlmBatcher *b, gboolean (*fn) (void *data, GError **error), void *data,
                           const volatile gint *cancel, GError **error);

/* arch->encode (run, pixels, frames_per_clip) on the batcher's thread,
 * batched with the other clips waiting where the architecture can. */
gboolean vlm_batcher_encode (VlmBatcher *b, void *run, const float *pixels, const volatile gint *cancel,
                             GError **error);

/* A caption enters (+1) or leaves (-1) its generation loop. */
void vlm_batcher_decoding (VlmBatcher *b, int delta);

/* dec->step (tokens, n_beams, pos, logits) for dec's run, batched with
 * the other captions' steps. */
gboolean vlm_batcher_step (VlmBatcher *b, const VlmDecoder *dec, const int *tokens, int n_beams, int pos,
                           float *logits, GError **error);

#endif
