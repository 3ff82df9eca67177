/* bench.h — what vlm-bench's files share: the run's options, the result
 * types, and each file's functions. vlm-bench.c holds the options, the
 * statistics, the model runs and main; bench_presets.c what is measured
 * (bench_encdec.c: BLIP and ViT-GPT2; bench_streams.c: many streams at once);
 * bench_limits.c the machine's limits; bench_report.c the report. The
 * engine is seen through vlm.h and probe.h only. */
#ifndef VLM_BENCH_H
#define VLM_BENCH_H

#include <glib.h>
#include <json-glib/json-glib.h>

#include "probe.h"
#include "synth.h"
#include "vlm/vlm.h"

/* the presets besides GIT's (bench_presets.c) */
#define LB_PRESET "languagebind-video"
#define OV_PRESET "llava-onevision-0.5b"
#define ED_BLIP_PRESET "blip-image-captioning-base"
#define ED_VITGPT2_PRESET "vit-gpt2-image-captioning"
#define FL_PRESET "florence-2-base"

/* ---- options (vlm-bench.c; the --streams ones in bench_streams.c) */
extern char *preset_name, *out_dir, *backend_name, *json_path, *precision_name;
extern VlmPrecision precision;
extern int n_runs, n_warmup, n_threads, max_new_tokens;
extern gboolean quick, skip_limits;
extern int n_busy;   /* --busy: spinning processes started beside the runs */
extern char *scheduler_name;   /* --scheduler: shared, private or both */
extern int n_streams, n_clips, budget_ms;
extern gboolean realtime;

#define MIB (1024.0 * 1024.0)

typedef SynthGit GitPreset;

enum { PAD_ID = SYNTH_PAD_ID, CLS_ID = SYNTH_CLS_ID, SEP_ID = SYNTH_SEP_ID };

typedef struct {
  double median, min, max;
} Stats;

/* Other processes share this 2-core machine (compilers, tests): how many
 * cores they took while a phase ran tells whether its numbers are clean.
 * Machine busy time from /proc/stat (steal included: a VM's lost time)
 * minus this process's own CPU time, over the wall time. */
typedef struct {
  gint64 wall_us;
  double busy_s, self_s;
} CpuMark;

typedef struct {
  const char *backend;
  const char *dtype;      /* what the matmuls ran in: "f32" or "bf16" */
  double load_ms, peak_rss_mib;
  double other_cores;     /* other processes' largest CPU use during a kept run */
  int n_disturbed;        /* timed runs kept although others took > MAX_OTHER_CORES */
  int n_tokens;
  char *text;
  Stats preprocess, vision, prefill, decode, total;
  Stats vision_one_layer; /* vision_ms of the one-text-layer variant */
  gboolean has_one_layer;
  double *decode_runs;    /* [n_runs] each kept run's decode ms */
  double *probe_runs;     /* [n_runs] the GEMV probe's GB/s just before it; NULL without a probe */
} ModelResult;

typedef struct {
  double matmul_f32, matmul_bf16, matmul_u8s8;   /* GFLOP/s, oneDNN 1182×768×3072; 0 = unavailable */
  char *impl_f32, *impl_bf16, *impl_u8s8;
  double sgemm;                                   /* GFLOP/s, OpenBLAS 2048³ */
  double gemv_f32_blas, gemv_f32_dnnl, gemv_bf16; /* GB/s of weights read */
  double gemv_bf16_dnnl, gemv_bf16_engine;        /* gemv_bf16 is the better of these */
  double gemv_f32_engine;                         /* the engine's own f32 linear at m = 1 */
  double gemv_int8_engine;                        /* ... and its int8 one (s8 weights) */
  double gemv_int8;                               /* int8 decode's bound: the best of every dtype's */
  char *impl_gemv_f32, *impl_gemv_bf16;
  double gemv_f32;                                /* the better f32 library */
  double other_cores;                             /* other processes' largest CPU use while measured */
} Limits;

enum { LIM_M = 1182, LIM_K = 768, LIM_N = 3072, SGEMM_N = 2048, GEMV_ROUNDS = 3 };

typedef void (*BenchFunc) (void *data, int iteration);

typedef struct {
  const GitPreset *p;
  double tower_gflop, projection_gflop, visual_kv_gflop, encode_gflop;
  int n_tokens;           /* generated per caption, for the KV a step reads */
} Work;

/* Derived numbers of one backend against its limits: the matmul peak of the
 * library and dtype it uses, and the GEMV bandwidth of that dtype for decode. */
typedef struct {
  double tower_ms, tower_gflops, encode_gflops, step_ms, token_ms, step_mb, decode_gbps, bound_ms;
  double peak, gemv, r_tower, r_encode, r_decode, r_e2e;
  Stats r_decode_paired;   /* per run, against the GEMV probe of its minute */
  const char *peak_name, *gemv_name;
} Derived;

/* A run during which other processes took more than this is repeated. */
#define MAX_OTHER_CORES (0.1 + n_busy)   /* --busy N adds the N cores its own spinners take */

/* ---- the engine's linear at m = 1 on a GEMV_ROWS × GEMV_COLS weight packed
 * as a model's are (probe.h), in precision prec, cycling through copies
 * that exceed the caches: the engine's GEMV from DRAM. */
enum { GEMV_ROWS = 11008, GEMV_COLS = 4096 };

typedef VlmGemvProbe EngineGemv;

/* ---- files written into a temp dir, removed at exit (bench_presets.c) */
extern GPtrArray *written;
/* ---- the GEMV probe and the limits' load (bench_limits.c) */
extern EngineGemv *probe;
extern double limits_others;

/* ---- vlm-bench.c */
void progress (const char *fmt, ...) G_GNUC_PRINTF (1, 2);
Stats stats_of (const double *v, int n);
void peak_rss_reset (void);
double peak_rss_mib (void);
CpuMark cpu_mark (void);
double other_cores_since (CpuMark a);
void wait_quiet (void);
Stats paired_decode_ratio (const ModelResult *m, double step_mb, int steps);
VlmFrame *make_frames (int n, int w, int h, guint8 **pixels);
gboolean run_captions (VlmSession *s, const VlmFrame *frames, int n_frames, const VlmGenParams *gp, const char *label, double *ms[5], double *probe_runs, int *n_tokens, char **text, int *n_disturbed, double *max_others, GError **error);
const char *dtype_name (const VlmModel *model);
gboolean measure_model (const char *dir, VlmBackend backend, gboolean one_layer, ModelResult *res, GError **error);
double loadavg (void);
int fail (const char *what, GError *error);
const char *begin_run (double load_before, char **tmp);
int measure_backends (const char *dir, const char *one_layer_dir, ModelResult *models, GError **error);
/* Frees what measure_model filled in models[0..n). */
void models_clear (ModelResult *models, int n);

/* ---- bench_presets.c */
const GitPreset *find_preset (const char *name);
int lb_main (void);
int ov_main (void);
gboolean write_checkpoint (const char *dir, const GitPreset *p, GError **error);
/* llava-onevision-0.5b's checkpoint into dir; its parameter count to
 * *params_out (may be NULL). */
gboolean ov_write_checkpoint (const char *dir, double *params_out, GError **error);
gboolean write_one_layer (const char *dir, const GitPreset *p, char **sub_out, GError **error);
void remove_written (const char *tmp_dir);
/* DIR/FILE = text (freed), or c's tensors to DIR/model.safetensors (c
 * freed; the parameter count to *params_out, may be NULL); the file is
 * removed at exit. */
gboolean write_text (const char *dir, const char *file, char *text, GError **error);
gboolean write_weights (const char *dir, SynthCheckpoint *c, const char *preset, double *params_out, GError **error);

/* ---- bench_encdec.c: BLIP and ViT-GPT2 */
/* The preset's name if `name` is one of them, else NULL. */
const char *ed_find (const char *name);
int ed_main (const char *name);
/* The checkpoint of the preset ed_find named into dir. */
gboolean ed_write_named (const char *dir, const char *name, GError **error);

/* ---- bench_streams.c: --streams N, shared scheduler against private sessions */
int streams_main (void);

/* ---- bench_florence.c */
int fl_main (void);
double vision_tower_flops (const GitPreset *p);
double visual_projection_flops (const GitPreset *p);
double visual_kv_flops (const GitPreset *p);
double visual_layer_flops (const GitPreset *p, gboolean kv_only);
double decode_step_bytes (const GitPreset *p, int n_tokens, int weight_bytes);

/* ---- bench_limits.c */
void probe_open (void);
double probe_mib (void);
double probe_gbps (void);
void probe_close (void);
double gflops (double flop, double seconds);
void measure_limits (Limits *l);
/* The matmul peak that bounds a run of `dtype` ("f32", "bf16", "int8") on
 * oneDNN (dnnl) or OpenBLAS, and its name. bf16 weights on a tier without
 * bf16 multiplies (matmul_bf16 0) run f32 matmuls: f32's peak bounds them. */
double limits_matmul_peak (const Limits *l, gboolean dnnl, const char *dtype, const char **name);
/* Frees the implementation names measure_limits wrote. */
void limits_clear (Limits *l);

/* ---- bench_report.c */
void print_paired (Stats r);
double ratio (double value, double limit);
Derived derive (const ModelResult *m, const Work *w, const Limits *l, gboolean have_limits);
void print_stats (const char *what, Stats s, const char *extra);
/* The "load + session" line: load time, peak RSS, others' use, disturbed runs. */
void print_load (const ModelResult *m);
void print_model (const ModelResult *m, const Work *w, const Derived *d);
void print_limits (const Limits *l);
void json_stats (JsonBuilder *b, const char *key, Stats s);
void json_num (JsonBuilder *b, const char *key, double v);
void json_int (JsonBuilder *b, const char *key, gint64 v);
void json_str (JsonBuilder *b, const char *key, const char *v);
void json_limits (JsonBuilder *b, const Limits *l);
JsonBuilder *json_begin (const char *preset, int frames, double load_before);
gboolean json_finish (JsonBuilder *b, const char *path, GError **error);
/* The members every model's JSON object holds: backend, precision, load,
 * RSS, disturbance, tokens, text, the stage stats. */
void json_model_fields (JsonBuilder *b, const ModelResult *m);
/* A one-model preset's "models": [{ backend, precision, load, RSS, tokens,
 * text, vision/prefill/decode stats ... — the caller adds its own members,
 * then opens "ratios" and fills it; json_model_finish closes all and
 * writes `path` (json_finish). */
void json_model_begin (JsonBuilder *b, const ModelResult *m);
gboolean json_model_finish (JsonBuilder *b, const char *path, GError **error);
/* A one-model preset's run on the checkpoint in `dir`: the caption runs
 * (peak RSS beside the GEMV probe), then `tmp` (if set) removed, then the
 * machine's limits unless --skip-limits. */
gboolean preset_measure (const char *dir, const char *tmp, VlmBackend backend, ModelResult *m, Limits *limits,
                         GError **error);
/* Releases a one-model preset's run (probe, result, limits, written); 0. */
int preset_done (ModelResult *m, Limits *limits);
gboolean write_json (const char *path, const Work *w, const ModelResult *models, int n_models, const Derived *derived, const Limits *l, gboolean have_limits, double load_before, GError **error);

#endif
