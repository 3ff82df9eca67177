/* bench_encdec.c — vlm-bench's image captioners whose text decoder
 * cross-attends to the image: blip-image-captioning-base and
 * vit-gpt2-image-captioning at their Hub config.json sizes, random f32
 * weights under the Hub's names (as engine/blip.c and engine/vitgpt2.c
 * load them), one 320x240 frame per clip. vision_ms is the tower plus
 * every layer's cross-attention keys and values (once per clip); a decode
 * step reads the decoder's weights but those cross K/V projections, plus
 * the cached cross K/V. Captions run to --max-new-tokens: BLIP's [SEP] has
 * output bias -100, GPT-2's eos_token_id is the vocabulary size (an id the
 * head cannot produce). */
#include "bench.h"

#include <stdio.h>

typedef struct {
  const char *name;
  gboolean gpt2;                          /* ViT + GPT-2 (VisionEncoderDecoderModel); else BLIP */
  int image, patch, Dv, Iv, Lv, Hv;       /* the ViT tower */
  int D, I, L, H, vocab, positions;       /* the text decoder */
  int bos;                                /* BLIP: text_config.bos_token_id; GPT-2: decoder_start_token_id */
} EdPreset;

static const EdPreset ed_presets[] = {
  /* Salesforce/blip-image-captioning-base: ViT-B/16 at 384 (577 tokens),
   * BERT-base text decoder with cross-attention, 12 layers, 12 heads,
   * vocabulary 30524, 512 positions, bos 30522 ([DEC]) */
  {ED_BLIP_PRESET, FALSE, 384, 16, 768, 3072, 12, 12, 768, 3072, 12, 12, 30524, 512, 30522},
  /* nlpconnect/vit-gpt2-image-captioning: ViT-B/16 at 224 (197 tokens,
   * vit-base-patch16-224-in21k) + GPT-2 124M (12 layers, 12 heads,
   * vocabulary 50257, 1024 positions) with cross-attention, start 50256 */
  {ED_VITGPT2_PRESET, TRUE, 224, 16, 768, 3072, 12, 12, 768, 3072, 12, 12, 50257, 1024, 50256},
};

static int ed_tokens (const EdPreset *p) { return (p->image / p->patch) * (p->image / p->patch) + 1; }

/* ---------------------------------------------------------------- checkpoint */

static void
blip_tensors (SynthCheckpoint *c, const EdPreset *p)
{
  const char *vm = "vision_model", *td = "text_decoder";
  synth_tensor (c, "vision_model.embeddings.class_embedding", SYNTH_WEIGHT, 3, 1, 1, p->Dv, 0);
  synth_tensor (c, "vision_model.embeddings.patch_embedding.weight", SYNTH_WEIGHT, 4, p->Dv, 3, p->patch, p->patch);
  synth_tensor (c, "vision_model.embeddings.patch_embedding.bias", SYNTH_WEIGHT, 1, p->Dv, 0, 0, 0);
  synth_tensor (c, "vision_model.embeddings.position_embedding", SYNTH_WEIGHT, 3, 1, ed_tokens (p), p->Dv, 0);
  for (int i = 0; i < p->Lv; i++) {
    const char *l = synth_name (c, "%s.encoder.layers.%d", vm, i);
    synth_linear (c, synth_name (c, "%s.self_attn.qkv", l), 3 * p->Dv, p->Dv);
    synth_linear (c, synth_name (c, "%s.self_attn.projection", l), p->Dv, p->Dv);
    synth_layer_norm (c, synth_name (c, "%s.layer_norm1", l), p->Dv);
    synth_layer_norm (c, synth_name (c, "%s.layer_norm2", l), p->Dv);
    synth_linear (c, synth_name (c, "%s.mlp.fc1", l), p->Iv, p->Dv);
    synth_linear (c, synth_name (c, "%s.mlp.fc2", l), p->Dv, p->Iv);
  }
  synth_layer_norm (c, "vision_model.post_layernorm", p->Dv);
  synth_tensor (c, "text_decoder.bert.embeddings.word_embeddings.weight", SYNTH_WEIGHT, 2, p->vocab, p->D, 0, 0);
  synth_tensor (c, "text_decoder.bert.embeddings.position_embeddings.weight", SYNTH_WEIGHT, 2, p->positions, p->D, 0,
                0);
  synth_layer_norm (c, "text_decoder.bert.embeddings.LayerNorm", p->D);
  for (int i = 0; i < p->L; i++) {
    const char *l = synth_name (c, "%s.bert.encoder.layer.%d", td, i);
    const char *blocks[] = {"attention", "crossattention"};
    for (int b = 0; b < 2; b++) {
      synth_linear (c, synth_name (c, "%s.%s.self.query", l, blocks[b]), p->D, p->D);
      synth_linear (c, synth_name (c, "%s.%s.self.key", l, blocks[b]), p->D, b ? p->Dv : p->D);
      synth_linear (c, synth_name (c, "%s.%s.self.value", l, blocks[b]), p->D, b ? p->Dv : p->D);
      synth_linear (c, synth_name (c, "%s.%s.output.dense", l, blocks[b]), p->D, p->D);
      synth_layer_norm (c, synth_name (c, "%s.%s.output.LayerNorm", l, blocks[b]), p->D);
    }
    synth_linear (c, synth_name (c, "%s.intermediate.dense", l), p->I, p->D);
    synth_linear (c, synth_name (c, "%s.output.dense", l), p->D, p->I);
    synth_layer_norm (c, synth_name (c, "%s.output.LayerNorm", l), p->D);
  }
  synth_linear (c, "text_decoder.cls.predictions.transform.dense", p->D, p->D);
  synth_layer_norm (c, "text_decoder.cls.predictions.transform.LayerNorm", p->D);
  SynthTensor *bias = synth_tensor (c, "text_decoder.cls.predictions.bias", SYNTH_WEIGHT, 1, p->vocab, 0, 0, 0);
  bias->pinned = SEP_ID;   /* [SEP] never wins: full-length captions */
  bias->pinned_value = -100;
}

/* GPT-2's Conv1D: weight [in, out], bias [out]. */
static void
conv1d (SynthCheckpoint *c, const char *prefix, int in, int out)
{
  synth_tensor (c, synth_name (c, "%s.weight", prefix), SYNTH_WEIGHT, 2, in, out, 0, 0);
  synth_tensor (c, synth_name (c, "%s.bias", prefix), SYNTH_WEIGHT, 1, out, 0, 0, 0);
}

static void
vitgpt2_tensors (SynthCheckpoint *c, const EdPreset *p)
{
  synth_tensor (c, "encoder.embeddings.cls_token", SYNTH_WEIGHT, 3, 1, 1, p->Dv, 0);
  synth_tensor (c, "encoder.embeddings.patch_embeddings.projection.weight", SYNTH_WEIGHT, 4, p->Dv, 3, p->patch,
                p->patch);
  synth_tensor (c, "encoder.embeddings.patch_embeddings.projection.bias", SYNTH_WEIGHT, 1, p->Dv, 0, 0, 0);
  synth_tensor (c, "encoder.embeddings.position_embeddings", SYNTH_WEIGHT, 3, 1, ed_tokens (p), p->Dv, 0);
  for (int i = 0; i < p->Lv; i++) {
    const char *l = synth_name (c, "encoder.encoder.layer.%d", i);
    synth_linear (c, synth_name (c, "%s.attention.attention.query", l), p->Dv, p->Dv);
    synth_linear (c, synth_name (c, "%s.attention.attention.key", l), p->Dv, p->Dv);
    synth_linear (c, synth_name (c, "%s.attention.attention.value", l), p->Dv, p->Dv);
    synth_linear (c, synth_name (c, "%s.attention.output.dense", l), p->Dv, p->Dv);
    synth_linear (c, synth_name (c, "%s.intermediate.dense", l), p->Iv, p->Dv);
    synth_linear (c, synth_name (c, "%s.output.dense", l), p->Dv, p->Iv);
    synth_layer_norm (c, synth_name (c, "%s.layernorm_before", l), p->Dv);
    synth_layer_norm (c, synth_name (c, "%s.layernorm_after", l), p->Dv);
  }
  synth_layer_norm (c, "encoder.layernorm", p->Dv);
  synth_tensor (c, "decoder.transformer.wte.weight", SYNTH_WEIGHT, 2, p->vocab, p->D, 0, 0);
  synth_tensor (c, "decoder.transformer.wpe.weight", SYNTH_WEIGHT, 2, p->positions, p->D, 0, 0);
  for (int i = 0; i < p->L; i++) {
    const char *h = synth_name (c, "decoder.transformer.h.%d", i);
    synth_layer_norm (c, synth_name (c, "%s.ln_1", h), p->D);
    conv1d (c, synth_name (c, "%s.attn.c_attn", h), p->D, 3 * p->D);
    conv1d (c, synth_name (c, "%s.attn.c_proj", h), p->D, p->D);
    synth_layer_norm (c, synth_name (c, "%s.ln_cross_attn", h), p->D);
    conv1d (c, synth_name (c, "%s.crossattention.q_attn", h), p->D, p->D);
    conv1d (c, synth_name (c, "%s.crossattention.c_attn", h), p->D, 2 * p->D);
    conv1d (c, synth_name (c, "%s.crossattention.c_proj", h), p->D, p->D);
    synth_layer_norm (c, synth_name (c, "%s.ln_2", h), p->D);
    conv1d (c, synth_name (c, "%s.mlp.c_fc", h), p->D, p->I);
    conv1d (c, synth_name (c, "%s.mlp.c_proj", h), p->I, p->D);
  }
  synth_layer_norm (c, "decoder.transformer.ln_f", p->D);
}

static char *
ed_config_json (const EdPreset *p)
{
  if (!p->gpt2)
    return g_strdup_printf (
      "{\n  \"architectures\": [\"BlipForConditionalGeneration\"],\n  \"model_type\": \"blip\",\n"
      "  \"text_config\": {\"bos_token_id\": %d, \"encoder_hidden_size\": %d, \"eos_token_id\": 2,\n"
      "    \"hidden_act\": \"gelu\", \"hidden_size\": %d, \"intermediate_size\": %d, \"layer_norm_eps\": 1e-12,\n"
      "    \"max_position_embeddings\": %d, \"model_type\": \"blip_text_model\", \"num_attention_heads\": %d,\n"
      "    \"num_hidden_layers\": %d, \"pad_token_id\": %d, \"sep_token_id\": %d, \"vocab_size\": %d},\n"
      "  \"vision_config\": {\"hidden_size\": %d, \"image_size\": %d, \"intermediate_size\": %d,\n"
      "    \"layer_norm_eps\": 1e-05, \"model_type\": \"blip_vision_model\", \"num_attention_heads\": %d,\n"
      "    \"num_hidden_layers\": %d, \"patch_size\": %d}\n}\n",
      p->bos, p->Dv, p->D, p->I, p->positions, p->H, p->L, PAD_ID, SEP_ID, p->vocab, p->Dv, p->image, p->Iv, p->Hv,
      p->Lv, p->patch);
  return g_strdup_printf (
    "{\n  \"architectures\": [\"VisionEncoderDecoderModel\"],\n  \"model_type\": \"vision-encoder-decoder\",\n"
    "  \"decoder_start_token_id\": %d, \"eos_token_id\": %d, \"pad_token_id\": %d, \"is_encoder_decoder\": true,\n"
    "  \"decoder\": {\"activation_function\": \"gelu_new\", \"add_cross_attention\": true, \"bos_token_id\": %d,\n"
    "    \"eos_token_id\": %d, \"is_decoder\": true, \"layer_norm_epsilon\": 1e-05, \"model_type\": \"gpt2\",\n"
    "    \"n_embd\": %d, \"n_head\": %d, \"n_inner\": null, \"n_layer\": %d, \"n_positions\": %d, \"vocab_size\": %d},\n"
    "  \"encoder\": {\"hidden_act\": \"gelu\", \"hidden_size\": %d, \"image_size\": %d, \"intermediate_size\": %d,\n"
    "    \"layer_norm_eps\": 1e-12, \"model_type\": \"vit\", \"num_attention_heads\": %d, \"num_channels\": 3,\n"
    "    \"num_hidden_layers\": %d, \"patch_size\": %d, \"qkv_bias\": true}\n}\n",
    p->bos, p->bos, p->bos, p->bos, p->bos, p->D, p->H, p->L, p->positions, p->vocab, p->Dv, p->image, p->Iv, p->Hv,
    p->Lv, p->patch);
}

static char *
ed_processor_json (const EdPreset *p)
{
  const char *clip = "\"image_mean\": [0.48145466, 0.4578275, 0.40821073], \"image_std\": [0.26862954, "
                     "0.26130258, 0.27577711], \"image_processor_type\": \"BlipImageProcessor\", \"resample\": 3";
  const char *vit = "\"image_mean\": [0.5, 0.5, 0.5], \"image_std\": [0.5, 0.5, 0.5], "
                    "\"image_processor_type\": \"ViTImageProcessor\", \"resample\": 2";
  return g_strdup_printf ("{\"do_normalize\": true, \"do_rescale\": true, \"do_resize\": true, %s,\n"
                          " \"rescale_factor\": 0.00392156862745098, \"size\": {\"height\": %d, \"width\": %d}}\n",
                          p->gpt2 ? vit : clip, p->image, p->image);
}

static gboolean
ed_write (const char *dir, const EdPreset *p, double *params, GError **error)
{
  SynthCheckpoint c;
  synth_init (&c, FALSE);
  if (p->gpt2)
    vitgpt2_tensors (&c, p);
  else
    blip_tensors (&c, p);
  /* GPT-2 stops on an id it cannot produce (the vocabulary size) */
  g_autofree char *gen = p->gpt2 ? g_strdup_printf ("{\"decoder_start_token_id\": %d, \"eos_token_id\": %d}\n",
                                                    p->bos, p->vocab)
                                 : g_strdup ("{}\n");
  return write_weights (dir, &c, p->name, params, error) &&
         write_text (dir, "config.json", ed_config_json (p), error) &&
         write_text (dir, "preprocessor_config.json", ed_processor_json (p), error) &&
         write_text (dir, "generation_config.json", g_steal_pointer (&gen), error) &&
         write_text (dir, "tokenizer.json", synth_wordpiece_json (p->vocab, TRUE), error);
}

/* ---------------------------------------------------------------- work */

/* The tower (patch embedding, layers' matmuls and attention) and every
 * layer's cross-attention K/V projection of its output, in FLOP. */
static void
ed_encode_flop (const EdPreset *p, double *tower, double *cross_kv)
{
  double T = ed_tokens (p), Dv = p->Dv;
  *tower = 2.0 * (T - 1) * 3 * p->patch * p->patch * Dv +
           p->Lv * (2.0 * T * (4 * Dv * Dv + 2 * Dv * p->Iv) + 4.0 * T * T * Dv);
  *cross_kv = p->L * 2.0 * T * 2 * Dv * p->D;
}

/* Bytes one decode step reads at weights of `wbytes` bytes: every decoder
 * matrix but the cross K/V projections (self q/k/v/out, cross q/out, the
 * MLP), BLIP's head transform, the head, and the cross K/V cache (bf16
 * with bf16 weights, as the engine keeps it; f32 otherwise). */
static double
ed_step_bytes (const EdPreset *p, int wbytes)
{
  double D = p->D, layer = 6 * D * D + 2 * D * p->I;
  double weights = p->L * layer + (p->gpt2 ? 0 : D * D) + (double) p->vocab * D;
  return wbytes * weights + (wbytes == 2 ? 2.0 : 4.0) * p->L * 2 * ed_tokens (p) * D;
}

/* ---------------------------------------------------------------- run */

static void
ed_report (const EdPreset *p, const ModelResult *m, const Limits *l, JsonBuilder *b)
{
  double tower, cross_kv;
  ed_encode_flop (p, &tower, &cross_kv);
  gboolean dnnl = strcmp (m->backend, "onednn") == 0, half = strcmp (m->dtype, "f32") != 0;
  const char *peak_name = "";
  double peak = skip_limits ? 0 : limits_matmul_peak (l, dnnl, m->dtype, &peak_name);
  double gemv = skip_limits ? 0 : half ? l->gemv_bf16 : dnnl ? l->gemv_f32 : l->gemv_f32_blas;
  double encode_gflops = (tower + cross_kv) / 1e9 / (m->vision.median / 1000);
  int steps = MAX (m->n_tokens - 1, 1);
  double step_ms = m->decode.median / steps, step_mb = ed_step_bytes (p, half ? 2 : 4) / 1e6;
  double gbps = step_mb / 1e3 / (step_ms / 1000), bound_ms = gemv > 0 ? step_mb / 1e3 / gemv * 1000 : 0;
  printf ("\n%s backend, %s (%d runs after %d warm-up; median [min .. max]):\n", m->backend, m->dtype, n_runs,
          n_warmup);
  g_autofree char *enc = peak > 0 ? g_strdup_printf ("  %.0f GFLOP/s = %.0f%% of %s %.0f", encode_gflops,
                                                      100 * ratio (encode_gflops, peak), peak_name, peak)
                                   : g_strdup_printf ("  %.0f GFLOP/s", encode_gflops);
  print_stats ("vision + cross K/V", m->vision, enc);
  print_stats ("prefill", m->prefill, "");
  g_autofree char *bound = bound_ms > 0 ? g_strdup_printf (" = %.0f%% of the GEMV bound %.1f ms/step",
                                                           100 * ratio (bound_ms, step_ms), bound_ms)
                                        : g_strdup ("");
  g_autofree char *dec = g_strdup_printf ("  %d tokens: %.1f ms/step = %.1f tokens/s, %.1f GB/s%s", m->n_tokens,
                                          step_ms, 1000 / step_ms, gbps, bound);
  print_stats ("decode", m->decode, dec);
  print_stats ("total", m->total, "");
  print_load (m);
  json_builder_begin_object (b);
  json_model_fields (b, m);
  json_num (b, "encode_gflops", encode_gflops);
  json_num (b, "ms_per_step", step_ms);
  json_num (b, "decode_step_mb", step_mb);
  json_num (b, "decode_gbps", gbps);
  json_builder_set_member_name (b, "ratios");
  json_builder_begin_object (b);
  json_num (b, "encode_vs_matmul_peak", ratio (encode_gflops, peak));
  json_num (b, "decode_vs_gemv", ratio (bound_ms, step_ms));
  json_builder_end_object (b);
  json_builder_end_object (b);
}

const char *
ed_find (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (ed_presets); i++)
    if (strcmp (ed_presets[i].name, name) == 0)
      return ed_presets[i].name;
  return NULL;
}

static const EdPreset *
ed_preset (const char *name)
{
  return &ed_presets[strcmp (name, ED_BLIP_PRESET) == 0 ? 0 : 1];
}

gboolean
ed_write_named (const char *dir, const char *name, GError **error)
{
  return ed_write (dir, ed_preset (name), NULL, error);
}

int
ed_main (const char *name)
{
  const EdPreset *p = ed_preset (name);
  GError *error = NULL;
  double load_before = loadavg (), params = 0;
  g_autofree char *tmp = NULL;
  const char *dir = begin_run (load_before, &tmp);
  if (!dir)
    return 1;
  ModelResult models[2] = {{0}};
  int n = ed_write (dir, p, &params, &error) ? measure_backends (dir, NULL, models, &error) : -1;
  if (tmp)
    remove_written (tmp);
  if (n < 0)
    return fail ("benchmark failed", error);
  Limits limits = {0};
  if (!skip_limits) {
    measure_limits (&limits);
    limits.other_cores = limits_others;
  }
  double tower, cross_kv;
  ed_encode_flop (p, &tower, &cross_kv);
  printf ("vlm-bench: %s (%.1f M parameters, random f32), 1 frame 320x240 → %d×%d (%d tower tokens), %d new tokens "
          "greedy, %d threads, load average %.2f before\n", p->name, params / 1e6, p->image, p->image, ed_tokens (p),
          max_new_tokens, n_threads > 0 ? n_threads : (int) g_get_num_processors (), load_before);
  printf ("work: tower %.1f GFLOP, cross-attention K/V %.1f GFLOP (once per clip); a decode step reads %.0f MB in "
          "f32, %.0f MB with bf16 weights (%.0f MB of them the cross K/V, bf16 too)\n", tower / 1e9, cross_kv / 1e9,
          ed_step_bytes (p, 4) / 1e6, ed_step_bytes (p, 2) / 1e6, 2.0 * p->L * 2 * ed_tokens (p) * p->D / 1e6);
  g_autoptr (JsonBuilder) b = json_begin (p->name, 1, load_before);
  json_builder_set_member_name (b, "work");
  json_builder_begin_object (b);
  json_num (b, "vision_tower_gflop", tower / 1e9);
  json_num (b, "cross_kv_gflop", cross_kv / 1e9);
  json_num (b, "encode_gflop", (tower + cross_kv) / 1e9);
  json_builder_end_object (b);
  if (!skip_limits)
    json_limits (b, &limits);
  json_builder_set_member_name (b, "models");
  json_builder_begin_array (b);
  for (int i = 0; i < n; i++)
    ed_report (p, &models[i], &limits, b);
  json_builder_end_array (b);
  if (!skip_limits)
    print_limits (&limits);
  if (json_path && !json_finish (b, json_path, &error))
    return fail ("cannot write --json", error);
  probe_close ();
  models_clear (models, n);
  limits_clear (&limits);
  g_ptr_array_free (written, TRUE);
  return 0;
}
