/* vitgpt2.c — ViT-GPT2 (VisionEncoderDecoderModel with a ViT encoder and a
 * GPT-2 decoder with add_cross_attention): ViT → [enc_to_dec_proj] → GPT-2
 * blocks in pre-norm order, each cross-attending to the image (the parts:
 * imgcap.h). GPT-2's Conv1D weights are stored [in, out]; postnorm.c's
 * GPT-2 name map reads them so.
 * ref: transformers models/vision_encoder_decoder/modeling_vision_encoder_decoder.py,
 *      models/vit/modeling_vit.py (ViTModel), models/gpt2/modeling_gpt2.py
 *      (GPT2LMHeadModel)
 *
 * Generation starts from decoder_start_token_id (a prompt's tokens follow
 * it as decoder input ids). */
#include "imgcap.h"

/* ---------------------------------------------------------------- config */

/* Which encoder and decoder this file runs: config.json's
 * encoder.model_type and decoder.model_type. */
static gboolean
check_types (JsonObject *enc, JsonObject *dec, const char *file, GError **error)
{
  const char *et = enc ? vlm_json_string (enc, "model_type", "") : "(missing)";
  const char *dt = dec ? vlm_json_string (dec, "model_type", "") : "(missing)";
  if (strcmp (et, "vit") == 0 && strcmp (dt, "gpt2") == 0)
    return TRUE;
  g_set_error (error, VLM_ERROR, VLM_ERROR_UNSUPPORTED_ARCHITECTURE,
               "%s: VisionEncoderDecoderModel with encoder \"%s\" and decoder \"%s\" is not supported "
               "(supported: encoder vit with decoder gpt2)", file, et, dt);
  return FALSE;
}

/* decoder (GPT2Config), with its defaults for what a file leaves out. */
static gboolean
read_gpt2_config (VlmTextDecoder *t, JsonObject *dc, const char *file, GError **error)
{
  VlmPostNormConfig *c = &t->cfg;
  if (!vlm_json_positive_int (dc, "n_embd", 768, file, &c->hidden_size, error) ||
      !vlm_json_positive_int (dc, "n_head", 12, file, &c->num_heads, error) ||
      !vlm_json_positive_int (dc, "n_layer", 12, file, &t->n_layers, error) ||
      !vlm_json_positive_int (dc, "vocab_size", 50257, file, &t->vocab_size, error) ||
      !vlm_json_positive_int (dc, "n_positions", 1024, file, &t->max_positions, error) ||
      !vlm_json_positive_int (dc, "n_inner", 4 * c->hidden_size, file, &c->intermediate_size, error))
    return FALSE;
  if (!vlm_json_bool (dc, "add_cross_attention", FALSE) || !vlm_json_bool (dc, "scale_attn_weights", TRUE) ||
      vlm_json_bool (dc, "scale_attn_by_inverse_layer_idx", FALSE)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG,
                 "%s: decoder needs add_cross_attention true, scale_attn_weights true and "
                 "scale_attn_by_inverse_layer_idx false", file);
    return FALSE;
  }
  c->eps = (float) vlm_json_double (dc, "layer_norm_epsilon", 1e-5);
  c->pre_norm = TRUE;
  t->embed_scale = 1.0f;
  return vlm_text_decoder_check (t, vlm_json_string (dc, "activation_function", "gelu_new"), file, "decoder", error);
}

/* ---------------------------------------------------------------- load */

#define TR "decoder.transformer."

static gboolean
load_gpt2 (VlmTextDecoder *t, VlmWeights *w, GError **error)
{
  int D = t->cfg.hidden_size;
  int64_t d[] = {D}, emb[] = {t->vocab_size, D}, pos[] = {t->max_positions, D};
  return vlm_weights_check_count (w, t->n_layers, "decoder.n_layer", error) &&
         (t->word_embeddings = vlm_weights_tensor (w, error, 2, emb, TR "wte.weight")) &&
         (t->position_embeddings = vlm_weights_f32 (w, error, 2, pos, TR "wpe.weight")) &&
         (t->layers = vlm_postnorm_layers_load (&t->cfg, &vlm_postnorm_gpt2, D, w, TR "h", t->n_layers, error)) &&
         (t->final_ln_w = vlm_weights_f32 (w, error, 1, d, TR "ln_f.weight")) &&
         (t->final_ln_b = vlm_weights_f32 (w, error, 1, d, TR "ln_f.bias")) &&
         vlm_text_decoder_load_head (t, w, "decoder.lm_head", TR "wte", error);   /* tied: no lm_head */
}

static void *
vitgpt2_load (const void *variant, VlmWeights *w, JsonObject *cfg, const char *file, VlmArchInfo *info,
              GError **error)
{
  VlmImageCaptioner *ic = g_new0 (VlmImageCaptioner, 1);
  JsonObject *enc = vlm_json_object (cfg, "encoder"), *dec = vlm_json_object (cfg, "decoder");
  VlmVitConfig *vc = &ic->vision.cfg;
  if (!check_types (enc, dec, file, error) || !vlm_vit_config_read (vc, enc, file, TRUE, error) ||
      !read_gpt2_config (&ic->text, dec, file, error))
    goto fail;
  vc->pre_norm = FALSE;   /* ViTEmbeddings: CLS + patches (conv with bias) + positions */
  vc->patch_bias = TRUE;
  int Dv = vc->hidden_size, D = ic->text.cfg.hidden_size;
  /* VisionEncoderDecoderModel projects the encoder's output when the widths differ */
  ic->has_proj = Dv != D;
  if (!vlm_vit_load (&ic->vision, &vlm_vit_hf_names, w, "encoder.", error) ||
      (ic->has_proj && !vlm_weights_linear (w, &ic->enc_to_dec_proj, TRUE, D, Dv, error, "enc_to_dec_proj")) ||
      !load_gpt2 (&ic->text, w, error))
    goto fail;
  ic->bos_id = -1;   /* decoder_start_token_id */
  vlm_imgcap_info (ic, info);
  return ic;
fail:
  vlm_imgcap_free (ic);
  return NULL;
}

const VlmArch vlm_arch_vit_gpt2 = VLM_IMGCAP_ARCH ("VisionEncoderDecoderModel", vitgpt2_load);
