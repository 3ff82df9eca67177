/* bench_report.c — vlm-bench's results: each model figure derived against
 * its limit, printed, and written as JSON (tools/vlm-bench-plot.py draws
 * it). */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <unistd.h>

void
print_paired (Stats r)
{
  if (r.median > 0)
    printf ("  %-22s = %.0f%% [%.0f .. %.0f] of the GEMV probe timed just before each run (median [min .. max])\n", "",
            100 * r.median, 100 * r.min, 100 * r.max);
}

/* ================================================================ report */

double
ratio (double value, double limit)
{
  return limit > 0 ? value / limit : 0;
}

Derived
derive (const ModelResult *m, const Work *w, const Limits *l, gboolean have_limits)
{
  Derived d = {0};
  /* int8: against the machine's int8 matmul peak (u8·s8) and, for
   * decode, the best GEMV bandwidth measured in any dtype */
  gboolean dnnl = strcmp (m->backend, "onednn") == 0, bf16 = strcmp (m->dtype, "bf16") == 0,
           int8 = strcmp (m->dtype, "int8") == 0;
  d.peak = limits_matmul_peak (l, dnnl, m->dtype, &d.peak_name);
  if (!have_limits)
    d.peak = 0;
  d.gemv = have_limits ? (int8 ? l->gemv_int8 : bf16 ? l->gemv_bf16 : l->gemv_f32) : 0;
  d.gemv_name = int8 ? "GEMV, best dtype" : bf16 ? "GEMV bf16" : "GEMV f32";
  d.step_mb = decode_step_bytes (w->p, w->n_tokens, int8 ? 1 : bf16 ? 2 : 4) / 1e6;
  /* vision_ms = tower + projection + (L - 1) full text layers over the
   * visual rows + the last layer's keys and values, so two layer counts
   * give a full layer's time; the keys-and-values-only layer is taken as
   * that time scaled by its share of the FLOPs (its two matmuls run like
   * the full layer's). What is left is the tower (+ the projection, 1 % of
   * its FLOPs). */
  int L = w->p->layers;
  if (m->has_one_layer && L > 1) {
    double v1 = m->vision_one_layer.median, layer_ms = (m->vision.median - v1) / (L - 1);
    d.tower_ms = v1 - layer_ms * visual_layer_flops (w->p, TRUE) / visual_layer_flops (w->p, FALSE);
    d.tower_gflops = gflops ((w->tower_gflop + w->projection_gflop) * 1e9, d.tower_ms / 1000);
  }
  d.encode_gflops = gflops (w->encode_gflop * 1e9, m->vision.median / 1000);
  int steps = MAX (m->n_tokens - 1, 1);   /* the first token comes from the prefill's logits */
  d.step_ms = m->decode.median / steps;
  d.token_ms = m->n_tokens ? m->decode.median / m->n_tokens : 0;
  d.decode_gbps = d.step_mb * 1e6 / 1e9 / (d.step_ms / 1000);
  double gemv = d.gemv;
  if (d.peak > 0 && gemv > 0)
    d.bound_ms = w->encode_gflop / d.peak * 1000 + (steps + 1) * d.step_mb * 1e6 / (gemv * 1e9) * 1000;
  d.r_tower = ratio (d.tower_gflops, d.peak);
  d.r_encode = ratio (d.encode_gflops, d.peak);
  d.r_decode = ratio (d.decode_gbps, gemv);
  d.r_decode_paired = paired_decode_ratio (m, d.step_mb, steps);
  d.r_e2e = ratio (d.bound_ms, m->total.median);
  return d;
}

void
print_load (const ModelResult *m)
{
  printf ("  %-22s %9.0f ms;  peak RSS %.0f MiB;  others used ≤ %.2f cores during a run; %d disturbed runs kept\n",
          "load + session", m->load_ms, m->peak_rss_mib, m->other_cores, m->n_disturbed);
}

void
print_stats (const char *what, Stats s, const char *extra)
{
  printf ("  %-22s %9.1f ms  [%.1f .. %.1f]%s\n", what, s.median, s.min, s.max, extra);
}

void
print_model (const ModelResult *m, const Work *w, const Derived *d)
{
  int F = w->p->frames;
  printf ("\n%s backend, %s (%d runs after %d warm-up; median [min .. max]):\n", m->backend, m->dtype, n_runs,
          n_warmup);
  if (d->tower_ms > 0)
    printf ("  %-22s %9.1f ms  %.1f ms/frame, %.0f GFLOP/s = %.0f%% of %s %.0f\n", "vision tower (+proj)",
            d->tower_ms, d->tower_ms / F, d->tower_gflops, 100 * d->r_tower, d->peak_name, d->peak);
  g_autofree char *enc = g_strdup_printf ("  %.1f ms/frame, %.0f GFLOP/s = %.0f%% of peak", m->vision.median / F,
                                          d->encode_gflops, 100 * d->r_encode);
  print_stats ("vision_ms (+proj, KV)", m->vision, enc);
  print_stats ("preprocess", m->preprocess, "");
  print_stats ("prefill", m->prefill, "");
  g_autofree char *dec = g_strdup_printf ("  %d tokens: %.2f ms/token, %.2f ms/step reading %.0f MB, %.1f GB/s = %.0f%% "
                                          "of %s", m->n_tokens, d->token_ms, d->step_ms, d->step_mb, d->decode_gbps,
                                          100 * d->r_decode, d->gemv_name);
  print_stats ("decode", m->decode, dec);
  print_paired (d->r_decode_paired);
  g_autofree char *tot = g_strdup_printf ("  bound %.0f ms: %.0f%%", d->bound_ms, 100 * d->r_e2e);
  print_stats ("caption end to end", m->total, tot);
  print_load (m);
  printf ("  caption: \"%s\"\n", m->text ? m->text : "");
}

void
print_limits (const Limits *l)
{
  printf ("\nmachine limits (same libraries, same process; best weight layout and implementation; CPU tier %s):\n",
          vlm_cpu_describe ());
  printf ("  oneDNN matmul %dx%dx%d  f32  %6.0f GFLOP/s  (%s)\n", LIM_M, LIM_K, LIM_N, l->matmul_f32, l->impl_f32);
  printf ("  %27s bf16 %6.0f GFLOP/s  (%s)\n", "", l->matmul_bf16, l->impl_bf16);
  printf ("  %27s u8s8 %6.0f GFLOP/s  (%s)\n", "", l->matmul_u8s8, l->impl_u8s8 ? l->impl_u8s8 : "unavailable");
  printf ("  OpenBLAS sgemm %d²              %6.0f GFLOP/s\n", SGEMM_N, l->sgemm);
  printf ("  GEMV %dx%d from DRAM     f32  %6.1f GB/s  (the engine's linear %.1f; OpenBLAS sgemv %.1f; oneDNN %.1f, %s)\n",
          GEMV_COLS, GEMV_ROWS, l->gemv_f32, l->gemv_f32_engine, l->gemv_f32_blas, l->gemv_f32_dnnl,
          l->impl_gemv_f32);
  printf ("  %27s bf16 %6.1f GB/s  (the engine's linear %.1f; oneDNN %.1f, %s)\n", "", l->gemv_bf16,
          l->gemv_bf16_engine, l->gemv_bf16_dnnl, l->impl_gemv_bf16);
  printf ("  %27s int8 %6.1f GB/s  (the engine's linear over s8 rows)\n", "", l->gemv_int8_engine);
  printf ("  other processes used at most %.2f cores while these were measured\n", l->other_cores);
}

/* ---- JSON */

void
json_stats (JsonBuilder *b, const char *key, Stats s)
{
  json_builder_set_member_name (b, key);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "median");
  json_builder_add_double_value (b, s.median);
  json_builder_set_member_name (b, "min");
  json_builder_add_double_value (b, s.min);
  json_builder_set_member_name (b, "max");
  json_builder_add_double_value (b, s.max);
  json_builder_end_object (b);
}

void
json_num (JsonBuilder *b, const char *key, double v)
{
  json_builder_set_member_name (b, key);
  json_builder_add_double_value (b, v);
}

void
json_int (JsonBuilder *b, const char *key, gint64 v)
{
  json_builder_set_member_name (b, key);
  json_builder_add_int_value (b, v);
}

void
json_str (JsonBuilder *b, const char *key, const char *v)
{
  json_builder_set_member_name (b, key);
  if (v)
    json_builder_add_string_value (b, v);
  else
    json_builder_add_null_value (b);
}

void
json_limits (JsonBuilder *b, const Limits *l)
{
  json_builder_set_member_name (b, "limits");
  json_builder_begin_object (b);
  json_num (b, "onednn_matmul_f32_gflops", l->matmul_f32);
  json_num (b, "onednn_matmul_bf16_gflops", l->matmul_bf16);
  json_num (b, "onednn_matmul_u8s8_gflops", l->matmul_u8s8);
  json_str (b, "onednn_matmul_f32_impl", l->impl_f32);
  json_str (b, "onednn_matmul_bf16_impl", l->impl_bf16);
  json_str (b, "onednn_matmul_u8s8_impl", l->impl_u8s8);
  json_str (b, "matmul_shape", "1182x768x3072");
  json_num (b, "openblas_sgemm_gflops", l->sgemm);
  json_num (b, "gemv_f32_gbps", l->gemv_f32);
  json_num (b, "gemv_bf16_gbps", l->gemv_bf16);
  json_num (b, "gemv_f32_openblas_gbps", l->gemv_f32_blas);
  json_num (b, "gemv_f32_onednn_gbps", l->gemv_f32_dnnl);
  json_num (b, "gemv_f32_engine_gbps", l->gemv_f32_engine);
  json_str (b, "gemv_f32_onednn_impl", l->impl_gemv_f32);
  json_num (b, "gemv_bf16_onednn_gbps", l->gemv_bf16_dnnl);
  json_num (b, "gemv_bf16_engine_gbps", l->gemv_bf16_engine);
  json_str (b, "gemv_bf16_onednn_impl", l->impl_gemv_bf16);
  json_num (b, "gemv_int8_engine_gbps", l->gemv_int8_engine);
  json_num (b, "gemv_int8_bound_gbps", l->gemv_int8);
  json_str (b, "gemv_shape", "1x4096x11008");
  json_num (b, "other_cores", l->other_cores);
  json_builder_end_object (b);
}

/* The members every model object starts with. */
void
json_model_fields (JsonBuilder *b, const ModelResult *m)
{
  json_str (b, "backend", m->backend);
  json_str (b, "precision", m->dtype);
  json_num (b, "load_ms", m->load_ms);
  json_num (b, "peak_rss_mib", m->peak_rss_mib);
  json_num (b, "other_cores", m->other_cores);
  json_int (b, "n_disturbed", m->n_disturbed);
  json_int (b, "n_tokens", m->n_tokens);
  json_str (b, "text", m->text);
  json_stats (b, "preprocess_ms", m->preprocess);
  json_stats (b, "vision_ms", m->vision);
  json_stats (b, "prefill_ms", m->prefill);
  json_stats (b, "decode_ms", m->decode);
  json_stats (b, "total_ms", m->total);
}

static void
json_model (JsonBuilder *b, const ModelResult *m, const Work *w, const Derived *d)
{
  json_builder_begin_object (b);
  json_model_fields (b, m);
  if (m->has_one_layer)
    json_stats (b, "vision_ms_one_text_layer", m->vision_one_layer);
  json_num (b, "tower_ms", d->tower_ms);
  json_num (b, "vision_ms_per_frame", m->vision.median / w->p->frames);
  json_num (b, "tower_ms_per_frame", d->tower_ms / w->p->frames);
  json_num (b, "tower_gflops", d->tower_gflops);
  json_num (b, "encode_gflops", d->encode_gflops);
  json_num (b, "ms_per_token", d->token_ms);
  json_num (b, "ms_per_step", d->step_ms);
  json_num (b, "decode_step_mb", d->step_mb);
  json_num (b, "decode_gbps", d->decode_gbps);
  json_num (b, "bound_ms", d->bound_ms);
  json_str (b, "peak", d->peak_name);
  json_str (b, "gemv", d->gemv_name);
  json_builder_set_member_name (b, "ratios");
  json_builder_begin_object (b);
  json_num (b, "tower_vs_matmul_peak", d->r_tower);
  json_num (b, "encode_vs_matmul_peak", d->r_encode);
  json_num (b, "decode_vs_gemv", d->r_decode);
  json_stats (b, "decode_vs_gemv_probe_per_run", d->r_decode_paired);
  json_num (b, "end_to_end_bound_vs_measured", d->r_e2e);
  json_builder_end_object (b);
  json_builder_end_object (b);
}

static char *
cpu_model (void)
{
  g_autofree char *info = NULL;
  const char *p;
  if (!g_file_get_contents ("/proc/cpuinfo", &info, NULL, NULL) || !(p = strstr (info, "model name")) ||
      !(p = strchr (p, ':')))
    return g_strdup ("unknown");
  return g_strstrip (g_strndup (p + 1, strcspn (p + 1, "\n")));
}

/* A results file's opening: the tool, preset, machine and settings. */
JsonBuilder *
json_begin (const char *preset, int frames, double load_before)
{
  JsonBuilder *b = json_builder_new ();
  json_builder_begin_object (b);
  json_str (b, "tool", "vlm-bench");
  json_str (b, "preset", preset);
  json_builder_set_member_name (b, "machine");
  json_builder_begin_object (b);
  g_autofree char *cpu = cpu_model ();
  json_str (b, "cpu", cpu);
  json_str (b, "cpu_tier", vlm_cpu_tier_name (vlm_cpu_tier ()));
  json_str (b, "cpu_tier_detail", vlm_cpu_describe ());
  json_int (b, "n_cpus", g_get_num_processors ());
  json_int (b, "threads", n_threads > 0 ? n_threads : (int) g_get_num_processors ());
  json_num (b, "loadavg_1min_before", load_before);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "settings");
  json_builder_begin_object (b);
  json_int (b, "runs", n_runs);
  json_int (b, "warmup", n_warmup);
  json_int (b, "max_new_tokens", max_new_tokens);
  json_int (b, "frames", frames);
  json_str (b, "frame_size", "320x240");
  json_builder_end_object (b);
  return b;
}

gboolean
json_finish (JsonBuilder *b, const char *path, GError **error)
{
  json_builder_end_object (b);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  return json_generator_to_file (gen, path, error);
}

void
json_model_begin (JsonBuilder *b, const ModelResult *m)
{
  json_builder_set_member_name (b, "models");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  json_model_fields (b, m);
}

gboolean
json_model_finish (JsonBuilder *b, const char *path, GError **error)
{
  json_builder_end_object (b);   /* ratios */
  json_builder_end_object (b);
  json_builder_end_array (b);
  return json_finish (b, path, error);
}

gboolean
preset_measure (const char *dir, const char *tmp, VlmBackend backend, ModelResult *m, Limits *limits, GError **error)
{
  peak_rss_reset ();
  gboolean ok = measure_model (dir, backend, FALSE, m, error);
  m->peak_rss_mib = peak_rss_mib () - probe_mib ();
  if (tmp)
    remove_written (tmp);
  if (ok && !skip_limits) {
    measure_limits (limits);
    limits->other_cores = limits_others;
  }
  return ok;
}

int
preset_done (ModelResult *m, Limits *limits)
{
  probe_close ();
  models_clear (m, 1);
  limits_clear (limits);
  g_ptr_array_free (written, TRUE);
  return 0;
}

gboolean
write_json (const char *path, const Work *w, const ModelResult *models, int n_models, const Derived *derived,
            const Limits *l, gboolean have_limits, double load_before, GError **error)
{
  g_autoptr (JsonBuilder) b = json_begin (w->p->name, w->p->frames, load_before);
  json_builder_set_member_name (b, "work");
  json_builder_begin_object (b);
  json_num (b, "vision_tower_gflop", w->tower_gflop);
  json_num (b, "visual_projection_gflop", w->projection_gflop);
  json_num (b, "visual_kv_gflop", w->visual_kv_gflop);
  json_num (b, "encode_gflop", w->encode_gflop);
  json_builder_end_object (b);
  if (have_limits)
    json_limits (b, l);
  json_builder_set_member_name (b, "models");
  json_builder_begin_array (b);
  for (int i = 0; i < n_models; i++)
    json_model (b, &models[i], w, &derived[i]);
  json_builder_end_array (b);
  return json_finish (b, path, error);
}
