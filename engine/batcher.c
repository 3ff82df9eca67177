/* batcher.c — one inference thread per shared model, batching the work of
 * every session that uses it (vlm.h "batching", batcher.h).
 *
 * The thread takes, each round: every decode step waiting (one batched
 * step: VlmDecoder step_batch over the groups, one group a caption), every
 * clip waiting to be encoded (one tower call where the architecture has
 * encode_batch), and the oldest call. Sessions hand in work and sleep on
 * `done`; a job lives on its caller's stack and is linked into the queues
 * through its own list node, so a step allocates nothing. The thread's
 * scratch (the batched step's arena, the groups) grows only when a batch
 * larger than any before arrives. */
#include "batcher.h"

/* How long the thread waits for captions still decoding to hand in their
 * next step once one has: the generation loop's own work between steps
 * (selection, sampling, stop strings) takes well under this. */
#define STRAGGLER_US 2000

typedef struct {
  GList link;                       /* in one of the batcher's queues; data = the job */
  const volatile gint *cancel;
  gboolean (*fn) (void *data, GError **error);   /* a call */
  void *data;
  void *run;                        /* an encode */
  const float *pixels;
  const VlmDecoder *dec;            /* a step */
  VlmStepGroup group;
  gboolean done;
  GError *error;
} Job;

struct VlmBatcher {
  gint ref_count;
  VlmModel *model;
  VlmOps *ops;
  GThread *thread;
  GMutex lock;
  GCond wake;                       /* the thread waits for work */
  GCond done;                       /* callers wait for theirs */
  GQueue calls, encodes, steps;     /* of Job, linked through Job.link */
  int decoding;                     /* captions inside their generation loop */
  gboolean quit;
  VlmBatcherStats stats;
  /* the thread's own */
  VlmArena arena;                   /* batched steps' temporaries */
  VlmArena encode_arena;            /* batched towers' */
  VlmStepGroup *groups;
  Job **jobs;
  void **runs;                      /* a batched encode's runs and their pixels */
  const float **pixels;
  int cap;
};

static gboolean
queues_empty (const VlmBatcher *b)
{
  return !b->calls.length && !b->encodes.length && !b->steps.length;
}

/* Room for n jobs in the thread's arrays. */
static void
ensure_jobs (VlmBatcher *b, int n)
{
  if (n <= b->cap)
    return;
  b->cap = MAX (n, 2 * b->cap);
  b->groups = g_renew (VlmStepGroup, b->groups, b->cap);
  b->jobs = g_renew (Job *, b->jobs, b->cap);
  b->runs = g_renew (void *, b->runs, b->cap);
  b->pixels = g_renew (const float *, b->pixels, b->cap);
}

/* Room for `need` bytes in `arena`: reallocated only for a batch larger
 * than any before. FALSE (arena empty) if that fails. */
static gboolean
grow (VlmArena *arena, size_t need)
{
  if (need <= arena->size)
    return TRUE;
  vlm_arena_clear (arena);
  return vlm_arena_init (arena, need + need / 4);
}

/* The job's outcome; `done` is set under the lock once the round is over. */
static void
finish (Job *job, GError *error)
{
  job->error = error;
}

static gboolean
cancelled (Job *job)
{
  if (!job->cancel || !g_atomic_int_get (job->cancel))
    return FALSE;
  finish (job, g_error_new (VLM_ERROR, VLM_ERROR_CANCELLED, "cancelled before its turn"));
  return TRUE;
}

static int run_step (VlmBatcher *b, Job **jobs, int n);

/* One decode step for the n jobs at `jobs`, in *calls batched steps of
 * at most *most captions; the rows they held. Where
 * rows of one linear depend on each other (int8: one input scale per
 * matmul), in runs of groups of at most that many rows each (a group
 * with more beams alone, as it would run privately). */
static int
run_steps (VlmBatcher *b, Job **jobs, int n, int *calls, int *most)
{
  int apart = vlm_ops_independent_rows (b->model->weights.dtype), rows = 0;
  *calls = *most = 0;
  for (int i = 0, end; i < n; i = end, ++*calls) {
    int r = jobs[i]->group.n_beams;
    for (end = i + 1; end < n && (!apart || r + jobs[end]->group.n_beams <= apart); end++)
      r += jobs[end]->group.n_beams;
    rows += run_step (b, jobs + i, end - i);
    *most = MAX (*most, end - i);
  }
  return rows;
}

/* One batched step for the n jobs at `jobs`; the rows they held. */
static int
run_step (VlmBatcher *b, Job **jobs, int n)
{
  const VlmDecoder *dec = jobs[0]->dec;
  GError *error = NULL;
  int rows = 0;
  for (int i = 0; i < n; i++) {
    b->groups[i] = jobs[i]->group;
    rows += b->groups[i].n_beams;
  }
  gboolean ok = TRUE;
  if (dec->step_batch) {
    size_t need = dec->step_bytes (b->groups[0].self, rows);
    if (!grow (&b->arena, need)) {
      error = g_error_new (VLM_ERROR, VLM_ERROR_INFERENCE, "cannot allocate %zu MiB for a batched step of %d rows",
                           need >> 20, rows);
      ok = FALSE;
    }
    ok = ok && dec->step_batch (b->groups, n, &b->arena, &error);
  } else {
    for (int i = 0; i < n; i++) {
      VlmStepGroup *g = &b->groups[i];
      jobs[i]->dec->step (g->self, g->tokens, g->n_beams, g->pos, g->logits, &g->error);
    }
  }
  ok = ok && vlm_ops_take_error (b->ops, &error);
  for (int i = 0; i < n; i++)
    finish (jobs[i], b->groups[i].error ? b->groups[i].error : ok ? NULL : g_error_copy (error));
  g_clear_error (&error);
  return rows;
}

/* The n clips at `jobs`: one tower call where the architecture batches
 * clips, else one encode each; the tower calls it took. */
static int
run_encodes (VlmBatcher *b, Job **jobs, int n)
{
  const VlmArch *arch = b->model->arch;
  GError *error = NULL;
  int k = 0, calls = 0;
  for (int i = 0; i < n; i++)
    if (!cancelled (jobs[i])) {
      b->runs[k] = jobs[i]->run;
      b->pixels[k++] = jobs[i]->pixels;
    }
  /* int8 towers quantise each matmul's input with one scale: one clip at a time */
  if (arch->encode_batch && k > 1 && !vlm_ops_independent_rows (b->model->weights.dtype) &&
      grow (&b->encode_arena, arch->encode_batch_bytes (b->model, k))) {
    gboolean ok = arch->encode_batch (b->runs, b->pixels, k, &b->encode_arena, &error) &&
                  vlm_ops_take_error (b->ops, &error);
    for (int i = 0; i < n; i++)
      if (!jobs[i]->error)
        finish (jobs[i], ok ? NULL : g_error_copy (error));
    g_clear_error (&error);
    return 1;
  }
  for (int i = 0; i < n; i++) {
    if (jobs[i]->error)
      continue;
    if (!arch->encode (jobs[i]->run, jobs[i]->pixels, b->model->info.frames_per_clip, &error) ||
        !vlm_ops_take_error (b->ops, &error))
      finish (jobs[i], error ? error : g_error_new (VLM_ERROR, VLM_ERROR_INFERENCE, "encode failed"));
    error = NULL;
    calls++;
  }
  return calls;
}

static void
run_call (VlmBatcher *b, Job *job)
{
  GError *error = NULL;
  if (cancelled (job))
    return;
  gboolean ok = job->fn (job->data, &error);
  if (!vlm_ops_take_error (b->ops, ok ? &error : NULL))
    ok = FALSE;
  finish (job, ok ? NULL : error ? error : g_error_new (VLM_ERROR, VLM_ERROR_INFERENCE, "failed"));
}

static gpointer
batcher_thread (gpointer data)
{
  VlmBatcher *b = data;
  vlm_ops_bind_thread (b->ops);
  g_mutex_lock (&b->lock);
  for (;;) {
    while (!b->quit && queues_empty (b))
      g_cond_wait (&b->wake, &b->lock);
    if (queues_empty (b))
      break;   /* quit: sessions hold references, so none is waiting */
    /* captions still decoding hand in their steps first: they share this one */
    gint64 waited = g_get_monotonic_time (), deadline = waited + STRAGGLER_US;
    while (b->steps.length && (int) b->steps.length < b->decoding)
      if (!g_cond_wait_until (&b->wake, &b->lock, deadline))
        break;
    b->stats.straggler_ms += (g_get_monotonic_time () - waited) / 1e3;
    /* this round: every step, every clip, the oldest call (in b->jobs in that order) */
    int n_steps = b->steps.length, n_encodes = b->encodes.length, n = 0;
    ensure_jobs (b, n_steps + n_encodes + 1);
    for (GQueue *q = &b->steps; q; q = q == &b->steps ? &b->encodes : NULL)
      for (GList *l; (l = g_queue_pop_head_link (q));)
        b->jobs[n++] = l->data;
    Job *call = b->calls.length ? g_queue_pop_head_link (&b->calls)->data : NULL;
    if (call)
      b->jobs[n++] = call;
    g_mutex_unlock (&b->lock);

    gint64 t0 = g_get_monotonic_time ();
    int step_calls = 0, most = 0, rows = n_steps ? run_steps (b, b->jobs, n_steps, &step_calls, &most) : 0;
    gint64 t1 = g_get_monotonic_time ();
    int towers = n_encodes ? run_encodes (b, b->jobs + n_steps, n_encodes) : 0;
    gint64 t2 = g_get_monotonic_time ();
    if (call)
      run_call (b, call);
    gint64 t3 = g_get_monotonic_time ();

    g_mutex_lock (&b->lock);
    if (n_steps) {
      b->stats.steps += step_calls;
      b->stats.step_captions += n_steps;
      b->stats.step_rows += rows;
      b->stats.max_step_captions = MAX (b->stats.max_step_captions, most);
    }
    b->stats.step_ms += (t1 - t0) / 1e3;
    b->stats.encode_ms += (t2 - t1) / 1e3;
    b->stats.call_ms += (t3 - t2) / 1e3;
    b->stats.encodes += n_encodes;
    b->stats.encode_batches += towers;
    for (int i = 0; i < n; i++)
      b->jobs[i]->done = TRUE;
    g_cond_broadcast (&b->done);
  }
  g_mutex_unlock (&b->lock);
  return NULL;
}

/* Queues `job` on `q` and sleeps until the thread is done with it. */
static gboolean
submit (VlmBatcher *b, GQueue *q, Job *job, GError **error)
{
  job->link = (GList) {job, NULL, NULL};
  g_mutex_lock (&b->lock);
  g_queue_push_tail_link (q, &job->link);
  g_cond_signal (&b->wake);
  while (!job->done)
    g_cond_wait (&b->done, &b->lock);
  g_mutex_unlock (&b->lock);
  if (job->error) {
    g_propagate_error (error, job->error);
    return FALSE;
  }
  return TRUE;
}

/* ---------------------------------------------------------------- sessions' side */

VlmOps *
vlm_batcher_ops (VlmBatcher *b)
{
  return b->ops;
}

VlmModel *
vlm_batcher_model (VlmBatcher *b)
{
  return b->model;
}

gboolean
vlm_batcher_call (VlmBatcher *b, gboolean (*fn) (void *data, GError **error), void *data,
                  const volatile gint *cancel, GError **error)
{
  Job job = {.cancel = cancel, .fn = fn, .data = data};
  return submit (b, &b->calls, &job, error);
}

gboolean
vlm_batcher_encode (VlmBatcher *b, void *run, const float *pixels, const volatile gint *cancel, GError **error)
{
  Job job = {.cancel = cancel, .run = run, .pixels = pixels};
  return submit (b, &b->encodes, &job, error);
}

void
vlm_batcher_decoding (VlmBatcher *b, int delta)
{
  g_mutex_lock (&b->lock);
  b->decoding += delta;
  if (delta < 0)   /* the thread may be waiting for this caption's next step */
    g_cond_signal (&b->wake);
  if (delta > 0)
    b->stats.prefills++;
  g_mutex_unlock (&b->lock);
}

gboolean
vlm_batcher_step (VlmBatcher *b, const VlmDecoder *dec, const int *tokens, int n_beams, int pos, float *logits,
                  GError **error)
{
  Job job = {.dec = dec, .group = {dec->self, tokens, n_beams, pos, logits, NULL}};
  return submit (b, &b->steps, &job, error);
}

/* ---------------------------------------------------------------- public */

VlmBatcher *
vlm_batcher_new (VlmModel *model, GError **error)
{
  VlmOps *ops = vlm_ops_new (model->params.backend, model->params.n_threads, error);
  if (!ops)
    return NULL;
  vlm_ops_set_attention_dtype (ops, model->weights.dtype);
  VlmBatcher *b = g_new0 (VlmBatcher, 1);
  b->ref_count = 1;
  b->model = vlm_model_ref (model);
  b->ops = ops;
  g_mutex_init (&b->lock);
  g_cond_init (&b->wake);
  g_cond_init (&b->done);
  g_queue_init (&b->calls);
  g_queue_init (&b->encodes);
  g_queue_init (&b->steps);
  ensure_jobs (b, 8);
  if (!(b->thread = g_thread_try_new ("vlm-batcher", batcher_thread, b, error))) {
    b->ref_count = 1;
    vlm_batcher_unref (b);
    return NULL;
  }
  return b;
}

VlmBatcher *
vlm_batcher_ref (VlmBatcher *b)
{
  g_atomic_int_inc (&b->ref_count);
  return b;
}

void
vlm_batcher_unref (VlmBatcher *b)
{
  if (!b || !g_atomic_int_dec_and_test (&b->ref_count))
    return;
  if (b->thread) {
    g_mutex_lock (&b->lock);
    b->quit = TRUE;
    g_cond_signal (&b->wake);
    g_mutex_unlock (&b->lock);
    g_thread_join (b->thread);
  }
  vlm_arena_clear (&b->arena);
  vlm_arena_clear (&b->encode_arena);
  g_free (b->groups);
  g_free (b->jobs);
  g_free (b->runs);
  g_free (b->pixels);
  g_mutex_clear (&b->lock);
  g_cond_clear (&b->wake);
  g_cond_clear (&b->done);
  vlm_ops_free (b->ops);
  vlm_model_unref (b->model);
  g_free (b);
}

void
vlm_batcher_get_stats (VlmBatcher *b, VlmBatcherStats *stats)
{
  g_mutex_lock (&b->lock);
  *stats = b->stats;
  g_mutex_unlock (&b->lock);
}
