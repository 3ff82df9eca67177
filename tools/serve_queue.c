/* serve_queue.c — a FIFO of ServeJobs and the threads that caption them,
 * one VlmSession each (serve_queue.h says why it is shaped so). */
#include "serve_queue.h"

struct ServeQueue {
  GMutex lock;
  GCond cond;                    /* jobs arrived, or quit */
  GQueue waiting;                /* ServeJob, oldest first */
  int max_waiting, n_idle;       /* n_idle: threads waiting for a job */
  gboolean quit;
  int n_sessions;
  VlmBatcher *batcher;           /* NULL: private sessions */
  VlmSession **sessions;         /* [n_sessions] */
  GThread **threads;             /* [n_sessions] */
};

typedef struct {
  ServeQueue *queue;
  VlmSession *session;
} Worker;

static gboolean
on_token (int token_id, const char *piece, void *user_data)
{
  ServeJob *job = user_data;

  if (g_atomic_int_get (&job->cancelled))
    return FALSE;
  return job->token ? job->token (job, piece) : TRUE;
}

static gpointer
worker_main (gpointer data)
{
  Worker *w = data;
  ServeQueue *q = w->queue;

  g_mutex_lock (&q->lock);
  for (;;) {
    q->n_idle++;
    while (!q->quit && g_queue_is_empty (&q->waiting))
      g_cond_wait (&q->cond, &q->lock);
    q->n_idle--;
    if (q->quit)
      break;
    ServeJob *job = g_queue_pop_head (&q->waiting);
    g_mutex_unlock (&q->lock);
    if (g_atomic_int_get (&job->cancelled))
      g_set_error (&job->error, VLM_ERROR, VLM_ERROR_CANCELLED, "the client went away");
    else
      vlm_session_caption (w->session, job->frames, job->n_frames, job->prompt, &job->params,
                           on_token, job, &job->caption, &job->error);
    job->done (job);
    g_mutex_lock (&q->lock);
  }
  g_mutex_unlock (&q->lock);
  g_free (w);
  return NULL;
}

ServeQueue *
serve_queue_new (VlmModel *model, gboolean shared, int n_sessions, int max_waiting,
                 GError **error)
{
  ServeQueue *q = g_new0 (ServeQueue, 1);

  g_mutex_init (&q->lock);
  g_cond_init (&q->cond);
  g_queue_init (&q->waiting);
  q->max_waiting = MAX (max_waiting, 0);
  q->sessions = g_new0 (VlmSession *, MAX (n_sessions, 1));
  q->threads = g_new0 (GThread *, MAX (n_sessions, 1));
  if (shared && !(q->batcher = vlm_batcher_new (model, error))) {
    serve_queue_free (q);
    return NULL;
  }
  for (int i = 0; i < MAX (n_sessions, 1); i++) {
    q->sessions[i] = q->batcher ? vlm_session_new_batched (q->batcher, error)
                                : vlm_session_new (model, error);
    if (!q->sessions[i]) {
      serve_queue_free (q);
      return NULL;
    }
    q->n_sessions++;
  }
  for (int i = 0; i < q->n_sessions; i++) {
    Worker *w = g_new (Worker, 1);
    *w = (Worker) {q, q->sessions[i]};
    q->threads[i] = g_thread_new ("vlm-serve", worker_main, w);
  }
  return q;
}

gboolean
serve_queue_push (ServeQueue *q, ServeJob *job)
{
  gboolean taken;

  g_mutex_lock (&q->lock);
  /* a job an idle thread is about to take does not wait */
  taken = !q->quit && (int) q->waiting.length < q->max_waiting + q->n_idle;
  if (taken) {
    g_queue_push_tail (&q->waiting, job);
    g_cond_signal (&q->cond);
  }
  g_mutex_unlock (&q->lock);
  return taken;
}

void
serve_queue_free (ServeQueue *q)
{
  ServeJob *job;

  if (!q)
    return;
  g_mutex_lock (&q->lock);
  q->quit = TRUE;
  g_cond_broadcast (&q->cond);
  while ((job = g_queue_pop_head (&q->waiting))) {
    g_set_error (&job->error, VLM_ERROR, VLM_ERROR_CANCELLED, "the server is shutting down");
    job->done (job);
  }
  for (int i = 0; i < q->n_sessions; i++)
    vlm_session_cancel (q->sessions[i]);
  g_mutex_unlock (&q->lock);
  for (int i = 0; i < q->n_sessions; i++)
    if (q->threads[i])
      g_thread_join (q->threads[i]);
  for (int i = 0; i < q->n_sessions; i++)
    vlm_session_free (q->sessions[i]);
  vlm_batcher_unref (q->batcher);   /* after its sessions: joins its thread */
  g_free (q->threads);
  g_free (q->sessions);
  g_mutex_clear (&q->lock);
  g_cond_clear (&q->cond);
  g_free (q);
}

gboolean
serve_queue_get_stats (ServeQueue *q, VlmBatcherStats *stats)
{
  if (!q->batcher)
    return FALSE;
  vlm_batcher_get_stats (q->batcher, stats);
  return TRUE;
}
