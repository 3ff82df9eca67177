/* imgcap.c — the VlmArch hooks BLIP and ViT-GPT2 share (imgcap.h).
 * ref: transformers models/blip/modeling_blip.py
 *      (BlipForConditionalGeneration.forward/generate),
 *      models/vision_encoder_decoder/modeling_vision_encoder_decoder.py */
#include "imgcap.h"

typedef struct {
  VlmModel *model;
  const VlmImageCaptioner *ic;
  VlmOps *ops;
  VlmArena arena;
  float *image_embeds;     /* [T, Dv] the tower's last_hidden_state */
  float *memory;           /* [T, D] what cross-attention reads (image_embeds or their projection) */
  const float *prompt_logits;
  VlmTextRun text;
} ImgCapRun;

void
vlm_imgcap_info (const VlmImageCaptioner *ic, VlmArchInfo *info)
{
  *info = (VlmArchInfo) {
    .frames_per_clip = 1,
    .processor_section = "image_processor",
    .image_size = ic->vision.cfg.image_size,
    .vocab_size = ic->text.vocab_size,
    .max_positions = ic->text.max_positions,
  };
}

void
vlm_imgcap_free (void *impl)
{
  VlmImageCaptioner *ic = impl;
  if (!ic)
    return;
  vlm_vit_clear (&ic->vision);
  vlm_linear_clear (&ic->enc_to_dec_proj);
  vlm_text_decoder_clear (&ic->text);
  g_free (ic);
}

void *
vlm_imgcap_run_new (VlmModel *model, VlmOps *ops, int max_beams, int max_tokens, GError **error)
{
  const VlmImageCaptioner *ic = model->impl;
  int T = ic->vision.cfg.n_tokens, Dv = ic->vision.cfg.hidden_size, D = ic->text.cfg.hidden_size;
  ImgCapRun *r = g_new0 (ImgCapRun, 1);
  r->model = model;
  r->ic = ic;
  r->ops = ops;
  size_t bytes = ((size_t) T * (Dv + D)) * sizeof (float) + 4 * 64 + vlm_vit_arena_size (&ic->vision, 1) +
                 vlm_text_run_bytes (&ic->text, max_beams, max_tokens, T, vlm_ops_kv_bf16 (ops));
  if (!vlm_arena_init (&r->arena, bytes)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_INFERENCE, "cannot allocate %zu MiB of run state", bytes >> 20);
    g_free (r);
    return NULL;
  }
  r->image_embeds = vlm_arena_new (&r->arena, float, (size_t) T * Dv);
  r->memory = ic->has_proj ? vlm_arena_new (&r->arena, float, (size_t) T * D) : r->image_embeds;
  vlm_text_run_init (&r->text, &ic->text, ops, &r->arena, max_beams, max_tokens, T);
  return r;
}

void
vlm_imgcap_run_free (void *run)
{
  ImgCapRun *r = run;
  if (!r)
    return;
  vlm_arena_clear (&r->arena);
  g_free (r);
}

/* After the tower (image_embeds): [enc_to_dec_proj], then every layer's
 * cross-attention keys and values. */
static void
encode_memory (ImgCapRun *r)
{
  const VlmImageCaptioner *ic = r->ic;
  int T = ic->vision.cfg.n_tokens;
  if (ic->has_proj)
    vlm_linear (r->ops, &ic->enc_to_dec_proj, r->image_embeds, T, r->memory, VLM_ACT_NONE, NULL);
  vlm_text_run_set_memory (&r->text, r->memory, T);
}

/* image_embeds = vision_model(pixel_values)[0] (post-norm on every token), then encode_memory. */
gboolean
vlm_imgcap_encode (void *run, const float *pixels, int n_frames, GError **error)
{
  ImgCapRun *r = run;
  const VlmImageCaptioner *ic = r->ic;
  g_assert (n_frames == 1);
  vlm_vit_forward (&ic->vision, r->ops, &r->arena, pixels, 1, ic->vision.cfg.num_layers, TRUE, r->image_embeds);
  encode_memory (r);
  return TRUE;
}

/* The batcher's: every clip's image through the tower in one call. */
gboolean
vlm_imgcap_encode_batch (void *const *runs, const float *const *pixels, int n, VlmArena *arena, GError **error)
{
  const ImgCapRun *r0 = runs[0];
  size_t mark = vlm_arena_mark (arena);
  float **outs = vlm_arena_new (arena, float *, n);
  for (int i = 0; i < n; i++)
    outs[i] = ((ImgCapRun *) runs[i])->image_embeds;
  vlm_vit_forward_clips (&r0->ic->vision, r0->ops, arena, pixels, n, 1, r0->ic->vision.cfg.num_layers, TRUE, outs);
  vlm_arena_rewind (arena, mark);
  for (int i = 0; i < n; i++)
    encode_memory (runs[i]);
  return TRUE;
}

size_t
vlm_imgcap_encode_batch_bytes (VlmModel *model, int n)
{
  const VlmImageCaptioner *ic = model->impl;
  return vlm_vit_clips_bytes (&ic->vision, 1, n) + (size_t) n * sizeof (float *) + 64;
}

const float *
vlm_imgcap_prefill (void *run, const int *ids, int n, int *pos, GError **error)
{
  ImgCapRun *r = run;
  if (!(r->prompt_logits = vlm_text_run_prefill (&r->text, ids, n, error)))
    return NULL;
  *pos = n;
  return r->prompt_logits + (size_t) (n - 1) * r->ic->text.vocab_size;
}

const VlmDecoder *
vlm_imgcap_decoder (void *run)
{
  return &((ImgCapRun *) run)->text.decoder;
}

const float *
vlm_imgcap_stage (void *run, const char *name)
{
  const ImgCapRun *r = run;
  const VlmStage stages[] = {{"image_embeds", r->image_embeds}, {"memory", r->memory},
                             {"prompt_logits", r->prompt_logits}};
  return vlm_stage_find (stages, G_N_ELEMENTS (stages), name);
}

int *
vlm_imgcap_prompt_ids (VlmModel *model, const char *prompt, int *n, GError **error)
{
  const VlmImageCaptioner *ic = model->impl;
  int first = ic->bos_id >= 0 ? ic->bos_id : model->decoder_start_id >= 0 ? model->decoder_start_id : model->bos_id;
  return vlm_tokenizer_encode_after (model->tokenizer, first, prompt, n, error);
}
