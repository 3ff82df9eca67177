/* imgcap.h — image captioners whose text decoder cross-attends to a ViT's
 * output: BLIP (BlipForConditionalGeneration) and ViT-GPT2
 * (VisionEncoderDecoderModel). The parts: a ViT tower (vit.h), an optional
 * projection of its output to the decoder's width (VisionEncoderDecoder's
 * enc_to_dec_proj), a text decoder (textdec.h). This file holds the VlmArch
 * hooks they share — run state, encode (tower → memory → cross-attention
 * keys and values, once per clip), prefill, the decoder, the stages; each
 * architecture's file (blip.c, vitgpt2.c) only reads its config, names its
 * tensors and builds its prompt.
 *
 * These models see one image: a clip becomes its middle frame (session.c
 * picks it for frames_per_clip 1). */
#ifndef VLM_IMGCAP_H
#define VLM_IMGCAP_H

#include "arch.h"
#include "textdec.h"
#include "vit.h"

typedef struct {
  VlmVit vision;                 /* vision_model.* (BLIP) / encoder.* (ViT) */
  gboolean has_proj;
  VlmLinearW enc_to_dec_proj;    /* [D, Dv] when the widths differ (VisionEncoderDecoder) */
  VlmTextDecoder text;           /* text_decoder.* (BLIP) / decoder.* (GPT-2) */
  int bos_id;                    /* the decoder prompt's first id: BLIP's text_config.bos_token_id;
                                  * -1: the model's decoder_start_id (or bos_id) */
} VlmImageCaptioner;

/* Fills *info for `ic` (one frame per clip, image_processor). */
void vlm_imgcap_info (const VlmImageCaptioner *ic, VlmArchInfo *info);

/* The shared VlmArch hooks (impl is a VlmImageCaptioner). Stages:
 * "image_embeds" the tower's output [T, Dv] (post-norm), "memory" what
 * cross-attention reads [T, D], and after prefill "prompt_logits" [n, V]. */
void vlm_imgcap_free (void *impl);
void *vlm_imgcap_run_new (VlmModel *model, VlmOps *ops, int max_beams, int max_tokens, GError **error);
void vlm_imgcap_run_free (void *run);
gboolean vlm_imgcap_encode (void *run, const float *pixels, int n_frames, GError **error);
gboolean vlm_imgcap_encode_batch (void *const *runs, const float *const *pixels, int n, VlmArena *arena,
                                  GError **error);
size_t vlm_imgcap_encode_batch_bytes (VlmModel *model, int n);
const float *vlm_imgcap_prefill (void *run, const int *ids, int n, int *pos, GError **error);
const VlmDecoder *vlm_imgcap_decoder (void *run);
const float *vlm_imgcap_stage (void *run, const char *name);
/* The VlmArch row of an image captioner: its name and load, the rest shared. */
#define VLM_IMGCAP_ARCH(arch_name, arch_load)                                                 \
  {                                                                                           \
    .name = (arch_name), .load = (arch_load), .free = vlm_imgcap_free, .run_new = vlm_imgcap_run_new, \
    .run_free = vlm_imgcap_run_free, .encode = vlm_imgcap_encode, .prompt_ids = vlm_imgcap_prompt_ids, \
    .encode_batch = vlm_imgcap_encode_batch, .encode_batch_bytes = vlm_imgcap_encode_batch_bytes,     \
    .prefill = vlm_imgcap_prefill, .decoder = vlm_imgcap_decoder, .stage = vlm_imgcap_stage,          \
  }

/* prompt_ids: [bos_id or the model's decoder_start_id] + tokens(prompt)
 * without special tokens: the caption continues the prompt. */
int *vlm_imgcap_prompt_ids (VlmModel *model, const char *prompt, int *n, GError **error);

#endif
