/* serve_queue.h — vlm-server: one queue per served model, drained by a
 * fixed pool of sessions.
 *
 * Every request becomes a ServeJob pushed on the model's queue; each of
 * `n_sessions` threads owns one VlmSession (the model's weights are shared)
 * and takes jobs in arrival order. Concurrency is bounded twice: at most
 * n_sessions captions run, and at most `max_waiting` wait; a push past that
 * is refused at once (the server answers 429), so a burst never piles up.
 *
 * With the shared scheduler (the default) the sessions are made on one
 * VlmBatcher: the pool threads only wait in vlm_session_caption while the
 * batcher's one inference thread runs every job's forward passes, the
 * decode steps of all running jobs as one batched step. Private sessions
 * run each caption on its own pool thread with all the cores (they
 * contend). */
#ifndef VLM_SERVE_QUEUE_H
#define VLM_SERVE_QUEUE_H

#include <vlm/vlm.h>

G_BEGIN_DECLS

typedef struct ServeJob ServeJob;
typedef struct ServeQueue ServeQueue;

struct ServeJob {
  /* in: set before the push, read-only after */
  const VlmFrame *frames;
  int n_frames;
  const char *prompt;            /* NULL: the model's plain caption */
  VlmGenParams params;
  /* Called from a pool thread with each generated piece (greedy and
   * sampling); FALSE stops the caption. May be NULL. */
  gboolean (*token) (ServeJob *job, const char *piece);
  /* Called once from a pool thread (or from serve_queue_free) when the job
   * is over: `caption` or `error` filled. The queue does not touch the job
   * after it. */
  void (*done) (ServeJob *job);
  /* out */
  VlmCaption caption;
  GError *error;                 /* VLM_ERROR_CANCELLED: cancelled or shut down */
  /* set from any thread (client gone): the caption stops at the next token */
  gint cancelled;
};

/* A queue for `model` with `n_sessions` sessions (≥ 1; each allocates its
 * run state now), on one batcher when `shared`, and room for `max_waiting`
 * jobs beyond the running ones. NULL with `error` from vlm_batcher_new or
 * vlm_session_new. */
ServeQueue *serve_queue_new (VlmModel *model, gboolean shared, int n_sessions, int max_waiting,
                             GError **error);

/* The shared scheduler's counters; FALSE (stats untouched) for private
 * sessions. Thread-safe. */
gboolean serve_queue_get_stats (ServeQueue *queue, VlmBatcherStats *stats);

/* Queues `job`; FALSE (job untouched, done not called) when max_waiting
 * jobs already wait. Thread-safe. */
gboolean serve_queue_push (ServeQueue *queue, ServeJob *job);

/* Waiting jobs end with VLM_ERROR_CANCELLED, running ones are cancelled,
 * the threads are joined. Accepts NULL. */
void serve_queue_free (ServeQueue *queue);

G_END_DECLS

#endif /* VLM_SERVE_QUEUE_H */
