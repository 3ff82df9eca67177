/* blip.c — BLIP image captioning: ViT tower → BERT text decoder whose every
 * layer cross-attends to the image embeddings (the parts: imgcap.h).
 * ref: transformers models/blip/modeling_blip.py (BlipVisionModel,
 *      BlipForConditionalGeneration), models/blip/modeling_blip_text.py
 *      (BlipTextLMHeadModel)
 *
 * Prompt: HF's generate() replaces the tokenized prompt's [CLS] with
 * text_config.bos_token_id, drops its trailing [SEP], and the caption
 * continues the text ("a picture of" → "a picture of a dog ..."); it stops
 * on sep_token_id, not on eos_token_id. */
#include "imgcap.h"

/* ---------------------------------------------------------------- config */

/* text_config, with BlipTextConfig's defaults for what a file leaves out. */
static gboolean
read_text_config (VlmTextDecoder *t, JsonObject *tc, const char *file, int *memory_dim, GError **error)
{
  VlmPostNormConfig *c = &t->cfg;
  if (!tc) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: \"text_config\" is missing", file);
    return FALSE;
  }
  if (!vlm_json_positive_int (tc, "hidden_size", 768, file, &c->hidden_size, error) ||
      !vlm_json_positive_int (tc, "intermediate_size", 3072, file, &c->intermediate_size, error) ||
      !vlm_json_positive_int (tc, "num_attention_heads", 8, file, &c->num_heads, error) ||
      !vlm_json_positive_int (tc, "num_hidden_layers", 12, file, &t->n_layers, error) ||
      !vlm_json_positive_int (tc, "vocab_size", 30524, file, &t->vocab_size, error) ||
      !vlm_json_positive_int (tc, "max_position_embeddings", 512, file, &t->max_positions, error) ||
      !vlm_json_positive_int (tc, "encoder_hidden_size", 768, file, memory_dim, error))
    return FALSE;
  c->eps = (float) vlm_json_double (tc, "layer_norm_eps", 1e-12);
  t->embed_scale = 1.0f;
  return vlm_text_decoder_check (t, vlm_json_string (tc, "hidden_act", "gelu"), file, "text_config", error);
}

/* ---------------------------------------------------------------- load */

#define TD "text_decoder."

static gboolean
load_text (VlmTextDecoder *t, VlmWeights *w, int memory_dim, GError **error)
{
  int D = t->cfg.hidden_size, V = t->vocab_size;
  int64_t d[] = {D}, emb[] = {V, D}, pos[] = {t->max_positions, D}, v[] = {V};
  return vlm_weights_check_count (w, t->n_layers, "text_config.num_hidden_layers", error) &&
         (t->word_embeddings = vlm_weights_tensor (w, error, 2, emb, TD "bert.embeddings.word_embeddings.weight")) &&
         (t->position_embeddings =
              vlm_weights_f32 (w, error, 2, pos, TD "bert.embeddings.position_embeddings.weight")) &&
         (t->emb_ln_w = vlm_weights_f32 (w, error, 1, d, TD "bert.embeddings.LayerNorm.weight")) &&
         (t->emb_ln_b = vlm_weights_f32 (w, error, 1, d, TD "bert.embeddings.LayerNorm.bias")) &&
         (t->layers = vlm_postnorm_layers_load (&t->cfg, &vlm_postnorm_blip, memory_dim, w, TD "bert.encoder.layer",
                                                t->n_layers, error)) &&
         (t->has_transform = vlm_weights_linear (w, &t->transform, TRUE, D, D, error,
                                                 TD "cls.predictions.transform.dense")) &&
         (t->transform_ln_w = vlm_weights_f32 (w, error, 1, d, TD "cls.predictions.transform.LayerNorm.weight")) &&
         (t->transform_ln_b = vlm_weights_f32 (w, error, 1, d, TD "cls.predictions.transform.LayerNorm.bias")) &&
         /* the decoder is tied to the word embeddings; transformers 5 leaves it out */
         vlm_text_decoder_load_head (t, w, TD "cls.predictions.decoder", TD "bert.embeddings.word_embeddings",
                                     error) &&
         (t->head_bias = vlm_weights_f32 (w, error, 1, v, TD "cls.predictions.bias"));
}

static void *
blip_load (const void *variant, VlmWeights *w, JsonObject *cfg, const char *file, VlmArchInfo *info, GError **error)
{
  VlmImageCaptioner *ic = g_new0 (VlmImageCaptioner, 1);
  JsonObject *tc = vlm_json_object (cfg, "text_config");
  VlmVitConfig *vc = &ic->vision.cfg;
  int memory_dim = 0;
  if (!vlm_vit_config_read (vc, vlm_json_object (cfg, "vision_config"), file, TRUE, error) ||
      !read_text_config (&ic->text, tc, file, &memory_dim, error))
    goto fail;
  vc->pre_norm = FALSE;    /* BlipVisionEmbeddings: CLS + patches (conv with bias) + positions, no pre-norm */
  vc->patch_bias = TRUE;
  if (memory_dim != vc->hidden_size) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG,
                 "%s: text_config.encoder_hidden_size %d differs from vision_config.hidden_size %d", file, memory_dim,
                 vc->hidden_size);
    goto fail;
  }
  if (!vlm_vit_load (&ic->vision, &vlm_vit_blip_names, w, "vision_model.", error) ||
      !load_text (&ic->text, w, memory_dim, error))
    goto fail;
  ic->bos_id = vlm_json_int (tc, "bos_token_id", 30522);
  vlm_imgcap_info (ic, info);
  info->eos_id = vlm_json_int (tc, "sep_token_id", 102);
  info->has_eos = TRUE;
  return ic;
fail:
  vlm_imgcap_free (ic);
  return NULL;
}

const VlmArch vlm_arch_blip = VLM_IMGCAP_ARCH ("BlipForConditionalGeneration", blip_load);
