/* bench_streams.c — vlm-bench --streams N: N streams caption clips of one
 * preset's model at once, on the shared scheduler (one VlmBatcher, N
 * sessions made on it: what elements sharing a model-instance-id get) or on
 * private sessions (N vlm_session_new on the one model, each run by its own
 * thread with all the cores, as N elements with scheduler=private), or both.
 *
 *   back-to-back  each stream captions --clips clips one after the other:
 *                 aggregate captions/s
 *   --realtime    each stream's clip k (1 s long) ends at k + 1 s and is
 *                 captioned then, or as soon as the stream's previous caption
 *                 is done; a clip overtaken by a newer one while it waited is
 *                 dropped (the element's drop-oldest, queue-size 1). A
 *                 caption is on time when it comes within --budget-ms of its
 *                 clip's end: the share of clips kept up with is on-time
 *                 captions / clips.
 *
 * Per stream: captions/s and latency p50/p95/max; per scheduler: the
 * resident memory with 1 stream and with N (so the memory an extra stream
 * costs) and the batcher's counters over the timed run. Nothing asserted:
 * time it on a quiet machine (docs/scaling.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

char *scheduler_name = "both";
int n_streams, n_clips = 6, budget_ms = 2000;
gboolean realtime;

typedef struct {
  const VlmFrame *frames;
  int n_frames;
  VlmGenParams gp;
  int n_clips;
  gboolean realtime;
  gint64 t0;               /* monotonic µs: every stream starts here */
} Plan;

typedef struct {
  const Plan *plan;
  VlmSession *session;
  double *latency_ms;      /* [n_clips] of the captions made */
  int captions, dropped, on_time;
  gint64 end;              /* when its last caption was done */
  char *text;              /* its last caption */
  GError *error;
} Stream;

static gpointer
stream_main (gpointer data)
{
  Stream *s = data;
  const Plan *p = s->plan;

  g_usleep (MAX (p->t0 - g_get_monotonic_time (), 0));
  for (int next = 0; next < p->n_clips;) {
    int k = next;
    gint64 ready = g_get_monotonic_time ();   /* back-to-back: the clip is there */
    if (p->realtime) {
      gint64 end_of_next = p->t0 + (gint64) (next + 1) * G_USEC_PER_SEC;
      g_usleep (MAX (end_of_next - g_get_monotonic_time (), 0));
      /* the newest clip that has ended; those before it were overtaken */
      k = MIN (p->n_clips - 1, (int) ((g_get_monotonic_time () - p->t0) / G_USEC_PER_SEC) - 1);
      k = MAX (k, next);
      s->dropped += k - next;
      ready = p->t0 + (gint64) (k + 1) * G_USEC_PER_SEC;
    }
    VlmCaption cap;
    if (!vlm_session_caption (s->session, p->frames, p->n_frames, NULL, &p->gp, NULL, NULL, &cap, &s->error))
      return NULL;
    s->end = g_get_monotonic_time ();
    double ms = (s->end - ready) / 1000.0;
    s->latency_ms[s->captions++] = ms;
    s->on_time += ms <= budget_ms;
    g_free (s->text);
    s->text = g_strdup (cap.text);
    vlm_caption_clear (&cap);
    next = k + 1;
  }
  return NULL;
}

/* Runs streams[0..n) with `plan` on their threads from now + 50 ms. */
static gboolean
run_streams (Stream *streams, int n, Plan *plan, GError **error)
{
  GThread *threads[n];
  plan->t0 = g_get_monotonic_time () + 50000;
  for (int i = 0; i < n; i++) {
    g_free (streams[i].latency_ms);
    g_free (streams[i].text);
    streams[i] = (Stream) {plan, streams[i].session, g_new0 (double, plan->n_clips)};
    threads[i] = g_thread_new ("stream", stream_main, &streams[i]);
  }
  for (int i = 0; i < n; i++)
    g_thread_join (threads[i]);
  for (int i = 0; i < n; i++)
    if (streams[i].error) {
      g_propagate_error (error, g_steal_pointer (&streams[i].error));
      return FALSE;
    }
  return TRUE;
}

/* Resident memory now (VmRSS, the mapped weights' touched pages included). */
static double
rss_mib (void)
{
  g_autofree char *status = NULL;
  const char *rss;
  return g_file_get_contents ("/proc/self/status", &status, NULL, NULL) && (rss = strstr (status, "VmRSS:"))
             ? strtol (rss + 6, NULL, 10) / 1024.0
             : 0;
}

static int
cmp_ms (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

/* The q-quantile of v[0..n) (nearest rank); 0 for none. */
static double
percentile (const double *v, int n, double q)
{
  if (n < 1)
    return 0;
  double *s = g_memdup2 (v, n * sizeof (double));
  qsort (s, n, sizeof (double), cmp_ms);
  double r = s[CLAMP ((int) ceil (q * n) - 1, 0, n - 1)];
  g_free (s);
  return r;
}

/* One scheduler on `model`: 1 stream warmed and measured for memory, then
 * N, then the timed run; its report to stdout and its object into `b`. */
static gboolean
measure_scheduler (VlmModel *model, gboolean shared, JsonBuilder *b, double *aggregate, GError **error)
{
  const char *name = shared ? "shared" : "private";
  int F = MAX (vlm_model_get_frames_per_clip (model), 1);
  g_autofree guint8 *pixels = NULL;
  g_autofree VlmFrame *frames = make_frames (F, 320, 240, &pixels);
  Plan warm = {frames, F, vlm_gen_default_params (model), 1, FALSE};
  warm.gp.max_new_tokens = max_new_tokens;
  warm.gp.num_beams = 1;
  warm.gp.do_sample = FALSE;
  Plan plan = warm;
  plan.n_clips = n_clips;
  plan.realtime = realtime;
  Stream *streams = g_new0 (Stream, n_streams);
  VlmBatcher *batcher = shared ? vlm_batcher_new (model, error) : NULL;
  VlmBatcherStats before = {0}, after = {0};
  double rss1 = 0, rssn = 0;
  gboolean ok = !shared || batcher;

  for (int i = 0; ok && i < n_streams; i++) {
    streams[i].session = batcher ? vlm_session_new_batched (batcher, error) : vlm_session_new (model, error);
    ok = streams[i].session != NULL;
    /* one stream alone, warmed, then all N warmed together */
    if (ok && i == 0 && (ok = run_streams (streams, 1, &warm, error)))
      rss1 = rss_mib ();
  }
  if (ok && (ok = run_streams (streams, n_streams, &warm, error)))
    rssn = rss_mib ();
  if (ok) {
    progress ("%s: %d streams, %s, %d clips each", name, n_streams, realtime ? "real time" : "back-to-back",
              n_clips);
    wait_quiet ();
    if (batcher)
      vlm_batcher_get_stats (batcher, &before);
    ok = run_streams (streams, n_streams, &plan, error);
    if (batcher)
      vlm_batcher_get_stats (batcher, &after);
  }
  if (ok) {
    int total = 0, on_time = 0, dropped = 0;
    gint64 end = plan.t0;
    for (int i = 0; i < n_streams; i++) {
      total += streams[i].captions;
      on_time += streams[i].on_time;
      dropped += streams[i].dropped;
      end = MAX (end, streams[i].end);
    }
    double wall_s = (end - plan.t0) / 1e6;
    guint64 steps = after.steps - before.steps, step_captions = after.step_captions - before.step_captions;
    *aggregate = total / wall_s;
    printf ("%s: %d streams, aggregate %.2f captions/s (%d in %.1f s), %d of %d clips on time (%.0f %%), %d dropped; "
            "RSS %.0f MiB with 1 stream, %.0f MiB with %d (%.1f MiB per extra stream)\n", name, n_streams,
            *aggregate, total, wall_s, on_time, n_streams * n_clips, 100.0 * on_time / (n_streams * n_clips),
            dropped, rss1, rssn, n_streams, n_streams > 1 ? (rssn - rss1) / (n_streams - 1) : 0);
    double step_ms = after.step_ms - before.step_ms, encode_ms = after.encode_ms - before.encode_ms;
    double call_ms = after.call_ms - before.call_ms, straggler_ms = after.straggler_ms - before.straggler_ms;
    if (batcher)
      printf ("  batcher: %" G_GUINT64_FORMAT " decode steps, mean %.2f captions per step (max %d), %.2f rows, "
              "%.1f ms a step; %" G_GUINT64_FORMAT " clips encoded in %" G_GUINT64_FORMAT " tower calls (%.0f ms), %"
              G_GUINT64_FORMAT " prefills; busy: steps %.0f ms, towers %.0f ms, other %.0f ms; waited for "
              "stragglers %.0f ms\n", steps, steps ? (double) step_captions / steps : 0, after.max_step_captions,
              steps ? (double) (after.step_rows - before.step_rows) / steps : 0, steps ? step_ms / steps : 0,
              after.encodes - before.encodes, after.encode_batches - before.encode_batches, encode_ms,
              after.prefills - before.prefills, step_ms, encode_ms, call_ms, straggler_ms);
    json_builder_begin_object (b);
    json_str (b, "scheduler", name);
    json_num (b, "aggregate_captions_per_s", *aggregate);
    json_num (b, "wall_s", wall_s);
    json_int (b, "captions", total);
    json_int (b, "clips", n_streams * n_clips);
    json_int (b, "on_time", on_time);
    json_int (b, "dropped", dropped);
    json_num (b, "kept_up_share", (double) on_time / (n_streams * n_clips));
    json_num (b, "rss_1_stream_mib", rss1);
    json_num (b, "rss_n_streams_mib", rssn);
    json_num (b, "rss_per_extra_stream_mib", n_streams > 1 ? (rssn - rss1) / (n_streams - 1) : 0);
    if (batcher) {
      json_builder_set_member_name (b, "batcher");
      json_builder_begin_object (b);
      json_int (b, "steps", steps);
      json_num (b, "mean_captions_per_step", steps ? (double) step_captions / steps : 0);
      json_int (b, "max_step_captions", after.max_step_captions);
      json_int (b, "step_rows", after.step_rows - before.step_rows);
      json_int (b, "encodes", after.encodes - before.encodes);
      json_int (b, "encode_batches", after.encode_batches - before.encode_batches);
      json_int (b, "prefills", after.prefills - before.prefills);
      json_num (b, "step_ms", step_ms);
      json_num (b, "mean_step_ms", steps ? step_ms / steps : 0);
      json_num (b, "encode_ms", encode_ms);
      json_num (b, "call_ms", call_ms);
      json_num (b, "straggler_ms", straggler_ms);
      json_builder_end_object (b);
    }
    json_builder_set_member_name (b, "streams");
    json_builder_begin_array (b);
    for (int i = 0; i < n_streams; i++) {
      Stream *s = &streams[i];
      double s_wall = (s->end - plan.t0) / 1e6;
      double p50 = percentile (s->latency_ms, s->captions, 0.5), p95 = percentile (s->latency_ms, s->captions, 0.95);
      double max = percentile (s->latency_ms, s->captions, 1.0);
      printf ("  stream %d: %d captions, %.2f captions/s, latency p50 %.0f ms, p95 %.0f ms, max %.0f ms, %d on time, "
              "%d dropped: \"%s\"\n", i, s->captions, s->captions / s_wall, p50, p95, max, s->on_time, s->dropped,
              s->text ? s->text : "");
      json_builder_begin_object (b);
      json_int (b, "captions", s->captions);
      json_num (b, "captions_per_s", s->captions / s_wall);
      json_num (b, "latency_p50_ms", p50);
      json_num (b, "latency_p95_ms", p95);
      json_num (b, "latency_max_ms", max);
      json_int (b, "on_time", s->on_time);
      json_int (b, "dropped", s->dropped);
      json_str (b, "text", s->text ? s->text : "");
      json_builder_end_object (b);
    }
    json_builder_end_array (b);
    json_builder_end_object (b);
  }
  for (int i = 0; i < n_streams; i++) {
    vlm_session_free (streams[i].session);
    g_free (streams[i].latency_ms);
    g_free (streams[i].text);
    g_clear_error (&streams[i].error);
  }
  g_free (streams);
  vlm_batcher_unref (batcher);
  return ok;
}

/* The preset's checkpoint into `dir`. */
static gboolean
write_preset (const char *dir, GError **error)
{
  const GitPreset *git = find_preset (preset_name);
  const char *captioner = ed_find (preset_name);
  if (git)
    return write_checkpoint (dir, git, error);
  if (captioner)
    return ed_write_named (dir, captioner, error);
  if (strcmp (preset_name, OV_PRESET) == 0)
    return ov_write_checkpoint (dir, NULL, error);
  g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT, "--streams runs git-base-vatex, tiny, " OV_PRESET ", "
               ED_BLIP_PRESET " or " ED_VITGPT2_PRESET ", not %s", preset_name);
  return FALSE;
}

int
streams_main (void)
{
  GError *error = NULL;
  gboolean both = strcmp (scheduler_name, "both") == 0;
  if (!both && strcmp (scheduler_name, "shared") && strcmp (scheduler_name, "private"))
    return fail ("--scheduler must be shared, private or both", NULL);
  if (n_clips < 1 || budget_ms < 1)
    return fail ("--clips and --budget-ms must be ≥ 1", NULL);
  double load_before = loadavg ();
  g_autofree char *tmp = NULL;
  const char *dir = begin_run (load_before, &tmp);
  if (!dir)
    return 1;
  VlmModelParams mp = vlm_model_default_params ();
  mp.precision = precision;
  mp.n_threads = n_threads;
  VlmModel *model = write_preset (dir, &error) ? vlm_model_load (dir, &mp, &error) : NULL;
  if (tmp)
    remove_written (tmp);
  if (!model)
    return fail ("cannot make the model", error);
  printf ("vlm-bench: %s in %s, %d streams, %s, %d clips each of %d frames 320x240, %d new tokens greedy, budget "
          "%d ms, %d threads, on %s, load average %.2f before\n", preset_name, dtype_name (model), n_streams,
          realtime ? "real time (one 1 s clip per second)" : "back-to-back", n_clips,
          vlm_model_get_frames_per_clip (model), max_new_tokens, budget_ms,
          n_threads > 0 ? n_threads : (int) g_get_num_processors (), vlm_cpu_describe (), load_before);
  fflush (stdout);

  JsonBuilder *b = json_begin (preset_name, vlm_model_get_frames_per_clip (model), load_before);
  json_str (b, "mode", realtime ? "realtime" : "back-to-back");
  json_str (b, "precision", dtype_name (model));
  json_int (b, "streams", n_streams);
  json_int (b, "clips_per_stream", n_clips);
  json_int (b, "budget_ms", budget_ms);
  json_builder_set_member_name (b, "schedulers");
  json_builder_begin_array (b);
  double agg[2] = {0};
  gboolean ok = TRUE;
  for (int shared = 1; ok && shared >= 0; shared--)
    if (both || (shared == (strcmp (scheduler_name, "shared") == 0)))
      ok = measure_scheduler (model, shared, b, &agg[shared], &error);
  json_builder_end_array (b);
  if (ok && both) {
    printf ("shared / private: %.2fx the aggregate captions/s\n", agg[0] > 0 ? agg[1] / agg[0] : 0);
    json_num (b, "shared_over_private", agg[0] > 0 ? agg[1] / agg[0] : 0);
  }
  vlm_model_unref (model);
  if (ok && json_path && !json_finish (b, json_path, &error))
    ok = FALSE;
  g_object_unref (b);
  g_ptr_array_free (written, TRUE);
  return ok ? 0 : fail ("benchmark failed", error);
}
