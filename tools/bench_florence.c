/* bench_florence.c — vlm-bench's florence-2-base preset: a random
 * checkpoint of florence-community/Florence-2-base's shape (config.json:
 * DaViT embed_dim [128, 256, 512, 1024], depths [1, 1, 9, 1], heads and
 * groups [4, 8, 16, 32], window 12, 768² frames → 577 image tokens;
 * BART-base 6 + 6 layers, d_model 768, FFN 3072, 12 heads, vocabulary
 * 51289; the head untied, see synth.h), stored in bf16, captioned with <CAPTION> through the public
 * API; the tower, the encoder and decode are reported against the
 * machine's limits. Decode is forced to --max-new-tokens: the
 * generation_config's eos_token_id is the vocabulary size, an id the head
 * cannot produce. */
#include "bench.h"

#include <math.h>
#include <stdio.h>

static const SynthFlorence2 fl = {
  .name = FL_PRESET, .n_stages = 4,
  .embed_dim = {128, 256, 512, 1024}, .depths = {1, 1, 9, 1}, .heads = {4, 8, 16, 32}, .groups = {4, 8, 16, 32},
  .patch = {7, 3, 3, 3}, .stride = {4, 2, 2, 2}, .padding = {3, 1, 1, 1},
  .window = 12, .image_size = 768, .max_image_positions = 50,
  .d_model = 768, .ffn = 3072, .encoder_layers = 6, .decoder_layers = 6, .text_heads = 12, .vocab = 51289,
  .max_positions = 1024, .image_token_id = 51288,
};

/* <s> What ␣does ␣the ␣image ␣describe ? </s> under the synthetic tokenizer:
 * no merges, so one token a byte of the question */
#define FL_QUESTION "What does the image describe?"

static int fl_side (int s) { int side = fl.image_size / 4; for (int i = 1; i <= s; i++) side /= 2; return side; }
static int fl_image_tokens (void) { int s = fl_side (fl.n_stages - 1); return 1 + s * s; }
static int fl_prompt (void) { return fl_image_tokens () + 2 + (int) strlen (FL_QUESTION); }

/* 2 FLOPs a multiply-add: the patch embeddings, and per block the
 * depthwise convs, qkv, attention (windows of ws² tokens over the padded
 * grid; channel groups of C/G channels with head_dim N), proj and MLP. */
static double
davit_flops (void)
{
  double total = 0, in = 3;
  for (int s = 0; s < fl.n_stages; s++) {
    double C = fl.embed_dim[s], side = fl_side (s), N = side * side, ws = fl.window;
    double padded = ceil (side / ws) * ws, Np = padded * padded, Cg = C / fl.groups[s];
    total += 2 * N * C * in * fl.patch[s] * fl.patch[s];
    double convs = 2 * 2 * N * C * 9, mlp = 2 * 2 * N * C * 4 * C;
    double spatial = convs + 2 * Np * C * 4 * C + 2 * 2 * Np * ws * ws * C + mlp;
    double channel = convs + 2 * N * C * 4 * C + 2 * 2 * N * C * Cg + mlp;
    total += fl.depths[s] * (spatial + channel);
    in = C;
  }
  return total;
}

/* the projector, the encoder over the prompt, the decoder's cross-attention keys and values */
static double
encoder_flops (void)
{
  double D = fl.d_model, L = fl_prompt (), Dv = fl.embed_dim[fl.n_stages - 1];
  double layer = 2 * L * (4 * D * D + 2 * D * fl.ffn) + 2 * 2 * L * L * D;
  return 2 * fl_image_tokens () * Dv * D + fl.encoder_layers * layer + fl.decoder_layers * 2 * L * 2 * D * D;
}

/* what one decode step reads: the decoder's weights but the cross keys'
 * and values' projections (done once), the tied head, the cross K/V
 * and the self K/V at the step's average position (bf16 with bf16
 * weights, as the engine keeps them; f32 otherwise) */
static double
fl_step_bytes (double weight_bytes, double pos)
{
  double D = fl.d_model, L = fl_prompt ();
  double layer = 4 * D * D + 2 * D * D + 2 * D * fl.ffn;
  return weight_bytes * (fl.decoder_layers * layer + (double) fl.vocab * D) +
         (weight_bytes == 2 ? 2.0 : 4.0) * fl.decoder_layers * 2 * D * (L + pos);
}

static char *
fl_config_json (void)
{
  return g_strdup_printf (
    "{\n"
    "  \"architectures\": [\"Florence2ForConditionalGeneration\"],\n"
    "  \"image_token_id\": %d,\n"
    "  \"is_encoder_decoder\": true,\n"
    "  \"model_type\": \"florence2\",\n"
    "  \"text_config\": {\n"
    "    \"activation_function\": \"gelu\", \"bos_token_id\": 0, \"d_model\": %d,\n"
    "    \"decoder_attention_heads\": %d, \"decoder_ffn_dim\": %d, \"decoder_layers\": %d,\n"
    "    \"decoder_start_token_id\": 2, \"encoder_attention_heads\": %d, \"encoder_ffn_dim\": %d,\n"
    "    \"encoder_layers\": %d, \"eos_token_id\": 2, \"forced_eos_token_id\": 2,\n"
    "    \"max_position_embeddings\": %d, \"model_type\": \"bart\", \"pad_token_id\": 1,\n"
    "    \"scale_embedding\": false, \"vocab_size\": %d\n"
    "  },\n"
    "  \"tie_word_embeddings\": false,\n"
    "  \"vision_config\": {\n"
    "    \"activation_function\": \"gelu\", \"depths\": [%d, %d, %d, %d], \"embed_dim\": [%d, %d, %d, %d],\n"
    "    \"in_channels\": 3, \"max_position_embeddings\": %d, \"max_temporal_embeddings\": 100,\n"
    "    \"mlp_ratio\": 4.0, \"model_type\": \"florence_vision\", \"num_groups\": [%d, %d, %d, %d],\n"
    "    \"num_heads\": [%d, %d, %d, %d], \"patch_padding\": [%d, %d, %d, %d],\n"
    "    \"patch_prenorm\": [false, true, true, true], \"patch_size\": [%d, %d, %d, %d],\n"
    "    \"patch_stride\": [%d, %d, %d, %d], \"projection_dim\": %d, \"qkv_bias\": true, \"window_size\": %d\n"
    "  }\n"
    "}\n",
    fl.image_token_id, fl.d_model, fl.text_heads, fl.ffn, fl.decoder_layers, fl.text_heads, fl.ffn,
    fl.encoder_layers, fl.max_positions, fl.vocab, fl.depths[0], fl.depths[1], fl.depths[2], fl.depths[3],
    fl.embed_dim[0], fl.embed_dim[1], fl.embed_dim[2], fl.embed_dim[3], fl.max_image_positions, fl.groups[0],
    fl.groups[1], fl.groups[2], fl.groups[3], fl.heads[0], fl.heads[1], fl.heads[2], fl.heads[3], fl.padding[0],
    fl.padding[1], fl.padding[2], fl.padding[3], fl.patch[0], fl.patch[1], fl.patch[2], fl.patch[3], fl.stride[0],
    fl.stride[1], fl.stride[2], fl.stride[3], fl.d_model, fl.window);
}

/* Florence-2's processor: CLIPImageProcessor to 768², no crop, ImageNet's mean and std */
static char *
fl_processor_json (void)
{
  return g_strdup_printf (
    "{\n"
    "  \"image_processor\": {\"do_center_crop\": false, \"do_convert_rgb\": true, \"do_normalize\": true,\n"
    "    \"do_rescale\": true, \"do_resize\": true, \"image_mean\": [0.485, 0.456, 0.406],\n"
    "    \"image_processor_type\": \"CLIPImageProcessor\", \"image_seq_length\": %d,\n"
    "    \"image_std\": [0.229, 0.224, 0.225], \"resample\": 3, \"rescale_factor\": 0.00392156862745098,\n"
    "    \"size\": {\"height\": %d, \"width\": %d}},\n"
    "  \"processor_class\": \"Florence2Processor\"\n"
    "}\n", fl_image_tokens (), fl.image_size, fl.image_size);
}

/* Writes the checkpoint folder `dir` (also what the element test captions). */
static gboolean
fl_write_checkpoint (const char *dir, double *params, GError **error)
{
  static const int ids[] = {0, 1, 2, 3, 51288};
  static const char *const tokens[] = {"<s>", "<pad>", "</s>", "<unk>", "<image>"};
  SynthCheckpoint c;
  synth_init (&c, TRUE);
  synth_florence2_tensors (&c, &fl);
  gint64 t0 = g_get_monotonic_time ();
  gboolean ok = write_weights (dir, &c, FL_PRESET, params, error) &&
                write_text (dir, "config.json", fl_config_json (), error) &&
                write_text (dir, "processor_config.json", fl_processor_json (), error) &&
                write_text (dir, "generation_config.json",
                            g_strdup_printf ("{\n  \"decoder_start_token_id\": 2,\n  \"eos_token_id\": %d,\n"
                                             "  \"pad_token_id\": 1\n}\n", fl.vocab), error) &&
                write_text (dir, "tokenizer.json",
                            synth_bytelevel_tokenizer (fl.vocab, ids, tokens, G_N_ELEMENTS (ids), 4), error);
  if (ok)
    progress ("checkpoint written in %.1f s", (g_get_monotonic_time () - t0) / 1e6);
  return ok;
}

int
fl_main (void)
{
  GError *error = NULL;
  double load_before = loadavg (), params = 0;
  g_autofree char *tmp = NULL;
  const char *dir = begin_run (load_before, &tmp);
  if (!dir)
    return 1;
  ModelResult m = {.backend = strcmp (backend_name, "blas") == 0 ? "blas" : "onednn"};
  Limits limits = {0};
  VlmBackend backend = strcmp (m.backend, "blas") == 0 ? VLM_BACKEND_BLAS : VLM_BACKEND_ONEDNN;
  if (!fl_write_checkpoint (dir, &params, &error) || !preset_measure (dir, tmp, backend, &m, &limits, &error))
    return fail ("benchmark failed", error);
  gboolean half = strcmp (m.dtype, "f32") != 0;
  int steps = MAX (m.n_tokens - 1, 1);
  double tower = davit_flops () / 1e9, encoder = encoder_flops () / 1e9;
  double step_bytes = fl_step_bytes (half ? 2 : 4, m.n_tokens / 2.0);
  double step_ms = m.decode.median / steps, gbps = step_bytes / 1e9 / (step_ms / 1000);
  const char *peak_name;
  double peak = limits_matmul_peak (&limits, strcmp (m.backend, "onednn") == 0, m.dtype, &peak_name);
  double gemv = half ? limits.gemv_bf16 : limits.gemv_f32;
  double tower_gflops = tower / (m.vision.median / 1000), enc_gflops = encoder / (m.prefill.median / 1000);
  printf ("vlm-bench: %s (DaViT + BART-base, bf16 checkpoint run in %s on %s), one 768² frame from 320x240, "
          "<CAPTION>, %d new tokens greedy (eos never produced), %d threads, load average %.2f before\n",
          FL_PRESET, m.dtype, m.backend, max_new_tokens, n_threads > 0 ? n_threads : (int) g_get_num_processors (),
          load_before);
  printf ("checkpoint %.1f M parameters; %d image tokens, prompt %d tokens; tower %.1f GFLOP, encoder %.1f GFLOP; "
          "a decode step reads %.0f MB\n", params / 1e6, fl_image_tokens (), fl_prompt (), tower, encoder,
          step_bytes / 1e6);
  printf ("\n%s, %s (%d runs after %d warm-up; median [min .. max]):\n", m.backend, m.dtype, n_runs, n_warmup);
  g_autofree char *tw = g_strdup_printf ("  %.0f GFLOP/s", tower_gflops);
  g_autofree char *en = g_strdup_printf ("  %.0f GFLOP/s", enc_gflops);
  g_autofree char *dc = g_strdup_printf ("  %d tokens: %.1f ms/step, %.1f GB/s", m.n_tokens, step_ms, gbps);
  print_stats ("vision (DaViT+proj)", m.vision, tw);
  print_stats ("prefill (encoder)", m.prefill, en);
  print_stats ("decode", m.decode, dc);
  print_stats ("total", m.total, "");
  if (!skip_limits && peak > 0)
    printf ("  tower %.0f%%, encoder %.0f%% of %s %.0f GFLOP/s; decode %.0f%% of GEMV %.1f GB/s\n",
            100 * tower_gflops / peak, 100 * enc_gflops / peak, peak_name, peak, gemv > 0 ? 100 * gbps / gemv : 0,
            gemv);
  print_load (&m);
  if (!skip_limits)
    print_limits (&limits);
  if (json_path) {
    g_autoptr (JsonBuilder) b = json_begin (FL_PRESET, 1, load_before);
    json_builder_set_member_name (b, "work");
    json_builder_begin_object (b);
    json_int (b, "prompt_tokens", fl_prompt ());
    json_num (b, "vision_tower_gflop", tower);
    json_num (b, "encode_gflop", encoder);
    json_num (b, "decode_step_mb", step_bytes / 1e6);
    json_builder_end_object (b);
    if (!skip_limits)
      json_limits (b, &limits);
    json_model_begin (b, &m);
    json_stats (b, "total_ms", m.total);
    json_num (b, "tower_gflops", tower_gflops);
    json_num (b, "encoder_gflops", enc_gflops);
    json_num (b, "ms_per_step", step_ms);
    json_num (b, "decode_gbps", gbps);
    json_builder_set_member_name (b, "ratios");
    json_builder_begin_object (b);
    json_num (b, "tower_vs_matmul_peak", peak > 0 ? tower_gflops / peak : 0);
    json_num (b, "encoder_vs_matmul_peak", peak > 0 ? enc_gflops / peak : 0);
    json_num (b, "decode_vs_gemv", gemv > 0 ? gbps / gemv : 0);
    if (!json_model_finish (b, json_path, &error))
      return fail ("cannot write --json", error);
  }
  return preset_done (&m, &limits);
}
