/* vlm-bench — how fast the engine runs a real-sized model, against what
 * this machine's libraries can do at best (issue 6).
 *
 *   vlm-bench                                   git-base-vatex, both backends
 *   vlm-bench --backend onednn --runs 9 --json bench.json
 *   vlm-bench --preset tiny --quick --json t.json   a few seconds: code paths only
 *   vlm-bench --preset languagebind-video           ms per 8-frame clip, zero-shot tags
 *   vlm-bench --streams 4 [--scheduler both] [--realtime]   4 streams on one model (bench_streams.c)
 *
 * A preset writes a full-size HuggingFace checkpoint folder with random
 * weights (the real config values are written out below), so no download is
 * needed and the engine loads it exactly as it would load the Hub's files.
 * Then, through the public API only, it captions a clip several times and
 * reports medians and spreads; and in the same process it measures the
 * limits that bound each number (oneDNN matmul, OpenBLAS sgemm, GEMV from
 * DRAM) and prints every model number as a ratio to its limit.
 * Each timed run starts on a quiet machine and is repeated if other
 * processes took CPU meanwhile: on 2 cores one compiler halves the speed.
 * Progress goes to stderr, the report to stdout, everything to --json;
 * tools/vlm-bench-plot.py draws the JSON as an SVG.
 * Nothing here is asserted in CI: times depend on the machine and its load. */
#include <cblas.h>
#include <dnnl.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <signal.h>
#include <unistd.h>

#include "bench.h"

char *preset_name = "git-base-vatex", *out_dir, *backend_name = "both", *json_path, *precision_name = "auto";
VlmPrecision precision = VLM_PRECISION_AUTO;
int n_runs = 5, n_warmup = 1, n_threads, max_new_tokens = -1;   /* -1: the preset's default */
gboolean quick, skip_limits;
int n_busy;

static GOptionEntry entries[] = {
  {"preset", 'p', 0, G_OPTION_ARG_STRING, &preset_name, "Model preset: git-base-vatex, tiny, languagebind-video, llava-onevision-0.5b, "
   ED_BLIP_PRESET ", " ED_VITGPT2_PRESET " or " FL_PRESET, "NAME"},
  {"out", 'o', 0, G_OPTION_ARG_FILENAME, &out_dir, "Write (and keep) the checkpoint here instead of a temp dir", "DIR"},
  {"backend", 'b', 0, G_OPTION_ARG_STRING, &backend_name, "onednn, blas or both", "NAME"},
  {"precision", 'P', 0, G_OPTION_ARG_STRING, &precision_name,
   "oneDNN's precision: auto (default), f32, bf16 or int8 (BLAS is always f32)", "NAME"},
  {"runs", 'r', 0, G_OPTION_ARG_INT, &n_runs, "Timed captions per backend (default 5)", "N"},
  {"warmup", 'w', 0, G_OPTION_ARG_INT, &n_warmup, "Untimed captions first (default 1)", "N"},
  {"threads", 't', 0, G_OPTION_ARG_INT, &n_threads, "Threads (0: all cores)", "N"},
  {"max-new-tokens", 'n', 0, G_OPTION_ARG_INT, &max_new_tokens, "Tokens per caption (default 20; 32 for llava-onevision-0.5b)", "N"},
  {"json", 'j', 0, G_OPTION_ARG_FILENAME, &json_path, "Write all results as JSON here", "FILE"},
  {"busy", 0, 0, G_OPTION_ARG_INT, &n_busy,
   "Start N processes that spin on a core beside every run (a machine where other work takes N cores)", "N"},
  {"skip-limits", 0, 0, G_OPTION_ARG_NONE, &skip_limits, "Do not measure the machine limits", NULL},
  {"streams", 0, 0, G_OPTION_ARG_INT, &n_streams,
   "Caption N streams at once on one model (no limits measured): aggregate captions/s, latency, memory", "N"},
  {"scheduler", 0, 0, G_OPTION_ARG_STRING, &scheduler_name,
   "With --streams: shared (one batcher), private (a session each) or both (default)", "NAME"},
  {"clips", 0, 0, G_OPTION_ARG_INT, &n_clips, "With --streams: clips per stream (default 6)", "N"},
  {"realtime", 0, 0, G_OPTION_ARG_NONE, &realtime,
   "With --streams: each stream's clips end one per second instead of back-to-back", NULL},
  {"budget-ms", 0, 0, G_OPTION_ARG_INT, &budget_ms,
   "With --streams: a caption later than this after its clip's end is late (default 2000)", "MS"},
  {"quick", 'q', 0, G_OPTION_ARG_NONE, &quick,
   "1 run, no warm-up, no waiting for a quiet machine, limits timed briefly on small buffers: checks code "
   "paths, not numbers", NULL},
  {NULL}};

void
progress (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  fprintf (stderr, "vlm-bench: %s\n", msg);
}

/* ================================================================ statistics */

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

Stats
stats_of (const double *v, int n)
{
  double *s = g_memdup2 (v, n * sizeof (double));
  qsort (s, n, sizeof (double), cmp_double);
  Stats r = {n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]), s[0], s[n - 1]};
  g_free (s);
  return r;
}

/* Peak resident set since the last reset (VmHWM; file-backed pages of the
 * mapped weights count). Linux resets it on "5" into clear_refs. */
void
peak_rss_reset (void)
{
  FILE *f = fopen ("/proc/self/clear_refs", "w");
  if (f) {
    fputs ("5", f);
    fclose (f);
  }
}

double
peak_rss_mib (void)
{
  g_autofree char *status = NULL;
  const char *hwm;
  long kib = 0;
  if (g_file_get_contents ("/proc/self/status", &status, NULL, NULL) && (hwm = strstr (status, "VmHWM:")))
    kib = strtol (hwm + 6, NULL, 10);
  return kib / 1024.0;
}

CpuMark
cpu_mark (void)
{
  CpuMark m = {g_get_monotonic_time (), 0, 0};
  g_autofree char *stat = NULL;
  guint64 v[8] = {0};   /* user nice system idle iowait irq softirq steal */
  if (g_file_get_contents ("/proc/stat", &stat, NULL, NULL))
    sscanf (stat, "cpu %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT
            " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT,
            &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
  m.busy_s = (double) (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / sysconf (_SC_CLK_TCK);
  struct rusage ru;
  getrusage (RUSAGE_SELF, &ru);
  m.self_s = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  return m;
}

double
other_cores_since (CpuMark a)
{
  CpuMark b = cpu_mark ();
  double wall = (b.wall_us - a.wall_us) / 1e6;
  return wall > 0 ? MAX (0.0, (b.busy_s - a.busy_s) - (b.self_s - a.self_s)) / wall : 0;
}

/* Waits (up to 2 minutes) for a second in which other processes take at
 * most MAX_OTHER_CORES: one compiler on a 2-core machine halves our speed. */
void
wait_quiet (void)
{
  if (quick)
    return;
  for (int i = 0; i < 120; i++) {
    CpuMark mark = cpu_mark ();
    g_usleep (G_USEC_PER_SEC);
    double others = other_cores_since (mark);
    if (others <= MAX_OTHER_CORES)
      return;
    if (i % 10 == 0)
      progress ("waiting for a quiet machine (other processes use %.2f cores)", others);
  }
}

/* ================================================================ model runs */

/* Per kept run: its decode GB/s (step_mb per step of `steps`) over the
 * probe's GB/s of its minute; median and spread. Zeros without a probe. */
Stats
paired_decode_ratio (const ModelResult *m, double step_mb, int steps)
{
  Stats st = {0};
  if (!m->probe_runs || !m->decode_runs)
    return st;
  double r[n_runs];
  for (int i = 0; i < n_runs; i++)
    r[i] = m->probe_runs[i] > 0 ? step_mb / 1e3 / (m->decode_runs[i] / steps / 1000) / m->probe_runs[i] : 0;
  return stats_of (r, n_runs);
}

/* n frames of a moving pattern, w×h packed RGB, into a new *pixels. */
VlmFrame *
make_frames (int n, int w, int h, guint8 **pixels)
{
  VlmFrame *frames = g_new0 (VlmFrame, n);
  *pixels = g_malloc ((size_t) n * w * h * 3);
  for (int f = 0; f < n; f++) {
    guint8 *px = *pixels + (size_t) f * w * h * 3;
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        guint8 *o = px + ((size_t) y * w + x) * 3;
        o[0] = (guint8) (x + 8 * f);
        o[1] = (guint8) (2 * y);
        o[2] = (guint8) ((x ^ y) + 16 * f);
      }
    frames[f] = (VlmFrame) {.format = VLM_PIXEL_RGB, .width = w, .height = h, .planes = {px}, .strides = {w * 3}};
  }
  return frames;
}

/* Captions the clip n_warmup times, then until n_runs runs were clean
 * (other processes took ≤ MAX_OTHER_CORES meanwhile), accepting disturbed
 * ones only after 2 × n_runs tries; fills the per-run arrays, counts the
 * disturbed runs it had to keep and the most other processes took during a
 * kept run. */
gboolean
run_captions (VlmSession *s, const VlmFrame *frames, int n_frames, const VlmGenParams *gp, const char *label,
              double *ms[5], double *probe_runs, int *n_tokens, char **text, int *n_disturbed, double *max_others,
              GError **error)
{
  for (int tries = 0, done = -n_warmup; done < n_runs; tries++) {
    VlmCaption cap;
    wait_quiet ();
    double probe_now = probe_runs ? probe_gbps () : 0;
    CpuMark mark = cpu_mark ();
    if (!vlm_session_caption (s, frames, n_frames, NULL, gp, NULL, NULL, &cap, error))
      return FALSE;
    double others = other_cores_since (mark);
    gboolean keep = done < 0 || others <= MAX_OTHER_CORES || tries >= 2 * n_runs + n_warmup;
    progress ("%s %s %d/%d: vision %.1f ms, prefill %.1f ms, decode %.1f ms (%d tokens), total %.1f ms%s", label,
              done < 0 ? "warm-up" : "run", done < 0 ? done + n_warmup + 1 : done + 1, done < 0 ? n_warmup : n_runs,
              cap.vision_ms, cap.prefill_ms, cap.decode_ms, cap.n_tokens, cap.total_ms,
              others > MAX_OTHER_CORES ? keep ? " (disturbed, kept)" : " (disturbed: repeated)" : "");
    if (keep && done >= 0) {
      double v[5] = {cap.preprocess_ms, cap.vision_ms, cap.prefill_ms, cap.decode_ms, cap.total_ms};
      for (int i = 0; i < 5; i++)
        ms[i][done] = v[i];
      if (probe_runs)
        probe_runs[done] = probe_now;
      *n_tokens = cap.n_tokens;
      *n_disturbed += others > MAX_OTHER_CORES;
      *max_others = MAX (*max_others, others);
      g_free (*text);
      *text = g_strdup (cap.text);
    }
    done += keep;
    vlm_caption_clear (&cap);
  }
  return TRUE;
}

/* What the model's big matmuls run in. */
const char *
dtype_name (const VlmModel *model)
{
  switch (vlm_model_get_precision (model)) {
    case VLM_PRECISION_BF16: return "bf16";
    case VLM_PRECISION_INT8: return "int8";
    default: return "f32";
  }
}

/* Loads `dir` with `backend` and times captions; on success fills the
 * stats, tokens and text of `res` (only res->vision_one_layer when
 * `one_layer`). */
gboolean
measure_model (const char *dir, VlmBackend backend, gboolean one_layer, ModelResult *res, GError **error)
{
  VlmModelParams mp = vlm_model_default_params ();
  mp.backend = backend;
  mp.precision = precision;
  mp.n_threads = n_threads;
  g_autofree char *label = one_layer ? g_strdup_printf ("%s, 1 text layer", res->backend) : g_strdup (res->backend);
  gint64 t0 = g_get_monotonic_time ();
  VlmModel *model = vlm_model_load (dir, &mp, error);
  VlmSession *s = model ? vlm_session_new (model, error) : NULL;
  gboolean ok = s != NULL;
  if (ok && !one_layer)
    res->load_ms = (g_get_monotonic_time () - t0) / 1000.0;
  if (ok)
    res->dtype = dtype_name (model);
  if (ok) {
    g_autofree char *kernels = vlm_model_describe_kernels (model);
    progress ("%s: model loaded and session made in %.0f ms; %s", label, (g_get_monotonic_time () - t0) / 1000.0,
              kernels);
  }
  int F = ok ? vlm_model_get_frames_per_clip (model) : 0;
  g_autofree guint8 *pixels = NULL;
  g_autofree VlmFrame *frames = ok ? make_frames (F, 320, 240, &pixels) : NULL;
  double *ms[5];
  for (int i = 0; i < 5; i++)
    ms[i] = g_new (double, n_runs);
  int n_tokens = 0, n_disturbed = 0;
  double max_others = 0;
  char *text = NULL;
  if (ok) {
    VlmGenParams gp = vlm_gen_default_params (model);
    gp.max_new_tokens = one_layer ? 1 : max_new_tokens;   /* only its vision_ms is used */
    gp.num_beams = 1;
    gp.do_sample = FALSE;
    double *probe_runs = probe && !one_layer ? g_new0 (double, n_runs) : NULL;
    ok = run_captions (s, frames, F, &gp, label, ms, probe_runs, &n_tokens, &text, &n_disturbed, &max_others, error);
    if (ok && !one_layer) {
      res->probe_runs = probe_runs;
      res->decode_runs = g_memdup2 (ms[3], n_runs * sizeof (double));
    } else {
      g_free (probe_runs);
    }
  }
  if (ok && one_layer) {
    res->vision_one_layer = stats_of (ms[1], n_runs);
    res->has_one_layer = TRUE;
    g_free (text);
  } else if (ok) {
    Stats *dst[5] = {&res->preprocess, &res->vision, &res->prefill, &res->decode, &res->total};
    for (int i = 0; i < 5; i++)
      *dst[i] = stats_of (ms[i], n_runs);
    res->n_tokens = n_tokens;
    res->n_disturbed = n_disturbed;
    res->other_cores = max_others;
    res->text = text;
  }
  for (int i = 0; i < 5; i++)
    g_free (ms[i]);
  vlm_session_free (s);
  vlm_model_unref (model);
  return ok;
}

/* ================================================================ main */

double
loadavg (void)
{
  g_autofree char *s = NULL;
  return g_file_get_contents ("/proc/loadavg", &s, NULL, NULL) ? g_ascii_strtod (s, NULL) : -1;
}

int
fail (const char *what, GError *error)
{
  fprintf (stderr, "vlm-bench: %s%s%s\n", what, error ? ": " : "", error ? error->message : "");
  g_clear_error (&error);
  return 1;
}

/* Warns when the machine is busy and makes the checkpoint folder: --out,
 * or a new temp dir returned in *tmp for the caller to remove. NULL (after
 * saying why) on failure. */
const char *
begin_run (double load_before, char **tmp)
{
  GError *error = NULL;
  if (load_before > 0.5)
    progress ("load average is %.2f: other work is running and the numbers will be low", load_before);
  written = g_ptr_array_new_with_free_func (g_free);
  if (!out_dir && !(*tmp = g_dir_make_tmp ("vlm-bench-XXXXXX", &error))) {
    fail ("cannot make a temp dir", error);
    return NULL;
  }
  if (out_dir && g_mkdir_with_parents (out_dir, 0755) != 0) {
    fail ("cannot make --out", NULL);
    return NULL;
  }
  return out_dir ? out_dir : *tmp;
}

/* Runs each selected backend on the full checkpoint and its one-text-layer
 * variant; returns how many results were filled, -1 on error. */
int
measure_backends (const char *dir, const char *one_layer_dir, ModelResult *models, GError **error)
{
  static const struct { const char *name; VlmBackend backend; } all[] = {
    {"onednn", VLM_BACKEND_ONEDNN}, {"blas", VLM_BACKEND_BLAS}};
  int n = 0;
  for (guint i = 0; i < G_N_ELEMENTS (all); i++) {
    if (strcmp (backend_name, "both") != 0 && strcmp (backend_name, all[i].name) != 0)
      continue;
    ModelResult *m = &models[n];
    m->backend = all[i].name;
    peak_rss_reset ();
    if (!measure_model (dir, all[i].backend, FALSE, m, error))
      return -1;
    m->peak_rss_mib = peak_rss_mib () - probe_mib ();
    GError *one_error = NULL;
    if (one_layer_dir && !measure_model (one_layer_dir, all[i].backend, TRUE, m, &one_error)) {
      progress ("%s: one-text-layer variant failed (%s); no tower-alone figure", m->backend, one_error->message);
      g_clear_error (&one_error);
    }
    n++;
  }
  return n;
}

void
models_clear (ModelResult *models, int n)
{
  for (int i = 0; i < n; i++) {
    g_free (models[i].text);
    g_free (models[i].decode_runs);
    g_free (models[i].probe_runs);
  }
}

/* ---- --busy: other work on the machine, as a pipeline's decoders and
 * converters are. Children spin until vlm-bench exits (they watch their
 * parent, so they end even if it is killed). */
static void
start_busy (int n)
{
  pid_t parent = getpid ();
  for (int i = 0; i < n; i++) {
    pid_t pid = fork ();
    if (pid == 0) {
      volatile guint64 x = 0;
      for (;;) {
        for (int k = 0; k < 10000000; k++) x += k;
        if (getppid () != parent)
          _exit (0);
      }
    }
    if (pid < 0)
      progress ("--busy: fork failed: %s", g_strerror (errno));
  }
  if (n > 0)
    progress ("%d spinning processes started beside the runs (--busy)", n);
}

static void
stop_busy (void)
{
  signal (SIGTERM, SIG_IGN);
  kill (0, SIGTERM);
}

int
main (int argc, char **argv)
{
  GError *error = NULL;
  g_autoptr (GOptionContext) ctx = g_option_context_new (NULL);
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_set_summary (ctx, "Times a real-sized model through the engine's public API against this "
                                     "machine's matmul and memory-bandwidth limits.");
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return fail ("bad arguments", error);
  if (n_busy < 0)
    return fail ("--busy must be ≥ 0", NULL);
  if (n_busy > 0) {
    setpgid (0, 0);   /* the spinners share our group: stop_busy signals it */
    start_busy (n_busy);
    atexit (stop_busy);
  }
  gboolean languagebind = strcmp (preset_name, LB_PRESET) == 0, onevision = strcmp (preset_name, OV_PRESET) == 0;
  gboolean florence = strcmp (preset_name, FL_PRESET) == 0;
  const GitPreset *p = find_preset (preset_name);
  const char *captioner = ed_find (preset_name);
  if (!p && !languagebind && !onevision && !captioner && !florence)
    return fail ("unknown --preset (known: git-base-vatex, tiny, " LB_PRESET ", " OV_PRESET ", " ED_BLIP_PRESET
                 ", " ED_VITGPT2_PRESET ", " FL_PRESET ")", NULL);
  if (max_new_tokens == -1)
    max_new_tokens = onevision ? 32 : 20;
  if (strcmp (backend_name, "both") && strcmp (backend_name, "onednn") && strcmp (backend_name, "blas"))
    return fail ("--backend must be onednn, blas or both", NULL);
  if (strcmp (precision_name, "auto") == 0)
    precision = VLM_PRECISION_AUTO;
  else if (strcmp (precision_name, "f32") == 0)
    precision = VLM_PRECISION_F32;
  else if (strcmp (precision_name, "bf16") == 0)
    precision = VLM_PRECISION_BF16;
  else if (strcmp (precision_name, "int8") == 0)
    precision = VLM_PRECISION_INT8;
  else
    return fail ("--precision must be auto, f32, bf16 or int8", NULL);
  if (quick) {
    n_runs = 1;
    n_warmup = 0;
  }
  if (n_runs < 1 || n_warmup < 0 || max_new_tokens < 1)
    return fail ("--runs and --max-new-tokens must be ≥ 1, --warmup ≥ 0", NULL);
  if (n_streams < 0)
    return fail ("--streams must be ≥ 1", NULL);
  if (n_streams > 0)
    return streams_main ();
  if (languagebind)
    return lb_main ();
  if (!skip_limits && !quick)
    probe_open ();
  if (onevision)
    return ov_main ();
  if (captioner)
    return ed_main (captioner);
  if (florence)
    return fl_main ();

  double load_before = loadavg ();
  g_autofree char *tmp = NULL;
  const char *dir = begin_run (load_before, &tmp);
  if (!dir)
    return 1;
  g_autofree char *one_layer_dir = NULL;
  ModelResult models[2] = {{0}};
  int n_models = -1;
  if (write_checkpoint (dir, p, &error) && write_one_layer (dir, p, &one_layer_dir, &error))
    n_models = measure_backends (dir, one_layer_dir, models, &error);
  if (tmp)
    remove_written (tmp);
  if (n_models < 0)
    return fail ("benchmark failed", error);

  Limits limits = {0};
  if (!skip_limits) {
    measure_limits (&limits);
    limits.other_cores = limits_others;
  }
  Work w = {p, vision_tower_flops (p) / 1e9, visual_projection_flops (p) / 1e9, visual_kv_flops (p) / 1e9};
  w.encode_gflop = w.tower_gflop + w.projection_gflop + w.visual_kv_gflop;
  w.n_tokens = models[0].n_tokens;
  Derived derived[2];
  printf ("vlm-bench: %s, %d frames 320x240, %d new tokens greedy, %d threads, load average %.2f before\n", p->name,
          p->frames, max_new_tokens, n_threads > 0 ? n_threads : (int) g_get_num_processors (), load_before);
  printf ("work: vision tower %.1f GFLOP, projection %.1f, visual KV in the text layers %.1f; "
          "a decode step reads %.0f MB in f32, %.0f MB with bf16 weights\n", w.tower_gflop, w.projection_gflop,
          w.visual_kv_gflop, decode_step_bytes (p, w.n_tokens, 4) / 1e6, decode_step_bytes (p, w.n_tokens, 2) / 1e6);
  for (int i = 0; i < n_models; i++) {
    derived[i] = derive (&models[i], &w, &limits, !skip_limits);
    print_model (&models[i], &w, &derived[i]);
  }
  if (!skip_limits)
    print_limits (&limits);
  if (json_path && !write_json (json_path, &w, models, n_models, derived, &limits, !skip_limits, load_before, &error))
    return fail ("cannot write --json", error);
  probe_close ();
  models_clear (models, n_models);
  limits_clear (&limits);
  g_ptr_array_free (written, TRUE);
  return 0;
}
