/* florence2.c — Florence-2: a DaViT tower, its projection into the text
 * width, and BART over [image tokens; task prompt].
 * ref: transformers models/florence2/modeling_florence2.py
 *      (Florence2ForConditionalGeneration, Florence2MultiModalProjector),
 *      models/florence2/processing_florence2.py (the task prompts),
 *      models/bart/modeling_bart.py (BartEncoder, BartDecoder,
 *      BartLearnedPositionalEmbedding)
 *
 * encode(): one frame through DaViT (davit.c), then the projector:
 *   x = features + 2-D position embedding (column ‖ row) + the cosine
 *   temporal embedding of frame 0;  tokens = [mean over x; x]
 *   image tokens = LN(image_projection(tokens))
 * prefill(): the prompt's image_token_id rows take the image tokens (HF's
 * masked_scatter), the encoder (post-norm BART layers, no mask) runs once,
 * its output becomes every decoder layer's cross-attention keys and values,
 * and the decoder starts from decoder_start_token_id. step(): one token per
 * beam through the decoder (self-attention cache + cross-attention). BART
 * positions are learned with an offset of 2. */
#include "arch.h"
#include "davit.h"
#include "error.h"
#include "kvcache.h"
#include "postnorm.h"
#include "textdec.h"

#include <math.h>

/* The image side Florence-2's processor makes (processor_config.json's
 * size); a model-level folder without one is read at this size unless a
 * caller sets model->info.image_size (the tests: their golden's side). */
#define FLORENCE2_IMAGE_SIZE 768
#define BART_POSITION_OFFSET 2   /* BartLearnedPositionalEmbedding.offset */

/* The task tokens of Florence2Processor.task_prompts_without_inputs that caption. */
static const struct {
  const char *task, *text;
} task_prompts[] = {
  {"<CAPTION>", "What does the image describe?"},
  {"<DETAILED_CAPTION>", "Describe in detail what is shown in the image."},
  {"<MORE_DETAILED_CAPTION>", "Describe with a paragraph what is shown in the image."},
  {"<OCR>", "What is the text in the image?"},
};

/* BartEncoder or BartDecoder: embed_positions, layernorm_embedding, layers */
typedef struct {
  VlmPostNormConfig cfg;
  int n_layers;
  const float *embed_positions;          /* embed_positions.weight [max_positions + 2, D] */
  const float *ln_w, *ln_b;              /* layernorm_embedding [D] */
  VlmPostNormLayer *layers;
} Bart;

typedef struct {
  VlmDavit vision;                       /* model.vision_tower.* */
  int Dv, P;                             /* embed_dim[-1], projection_dim */
  VlmLinearW image_projection;           /* multi_modal_projector.image_projection [P, Dv], no bias */
  const float *proj_norm_w, *proj_norm_b;   /* multi_modal_projector.image_proj_norm [P] */
  const float *row_embeddings;           /* image_position_embed.row_embeddings [max_pos, Dv / 2] */
  const float *column_embeddings;        /* image_position_embed.column_embeddings [max_pos, Dv - Dv / 2] */
  int max_image_positions;               /* vision_config.max_position_embeddings */
  float *temporal0;                      /* visual_temporal_embed.pos_idx_to_embed[0] [Dv] (owned) */
  int D, vocab_size, max_positions;      /* text_config d_model, vocab_size, max_position_embeddings */
  float embed_scale;                     /* sqrt(d_model) with scale_embedding, else 1 */
  const float *shared;                   /* model.language_model.shared.weight [V, D] */
  Bart encoder;                          /* model.language_model.encoder.* */
  VlmTextDecoder decoder;                /* model.language_model.decoder.*, lm_head */
  gboolean tied;                         /* tie_word_embeddings (HF's default): the head is shared's */
  int image_token_id, bos_id, eos_id, decoder_start_id;
} Florence2;

typedef struct {
  VlmModel *model;
  const Florence2 *f;
  VlmOps *ops;
  VlmArena arena;
  int size, side, n_image, max_rows, max_beams;
  float *features;                       /* [side², Dv] the tower's output */
  float *image_tokens;                   /* [n_image, P] */
  float *encoder_out;                    /* [max_rows, D] the encoder's last state */
  VlmTextRun text;                       /* the decoder: caches, cross K/V, logits */
  const float *prompt_logits;            /* the decoder's first row [V] after prefill */
  int decoder_ids[1];                    /* what HF's generate() sees as input_ids */
} Florence2Run;

/* ---------------------------------------------------------------- load */

/* BART's text_config: one side's (encoder_ / decoder_) layers, heads, FFN. */
static gboolean
read_bart_config (Bart *b, JsonObject *tc, const char *side, int D, const char *file, GError **error)
{
  g_autofree char *layers = g_strconcat (side, "_layers", NULL), *heads = g_strconcat (side, "_attention_heads", NULL);
  g_autofree char *ffn = g_strconcat (side, "_ffn_dim", NULL);
  b->cfg = (VlmPostNormConfig) {.hidden_size = D, .eps = 1e-5f};
  if (!vlm_json_positive_int (tc, layers, 12, file, &b->n_layers, error) ||
      !vlm_json_positive_int (tc, heads, 16, file, &b->cfg.num_heads, error) ||
      !vlm_json_positive_int (tc, ffn, 4096, file, &b->cfg.intermediate_size, error))
    return FALSE;
  const char *act = vlm_json_string (tc, "activation_function", "gelu");
  if (!vlm_act_from_name (act, &b->cfg.act) || D % b->cfg.num_heads) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG,
                 "%s: text_config activation_function \"%s\" or d_model %d / %s %d not supported", file, act, D,
                 heads, b->cfg.num_heads);
    return FALSE;
  }
  return TRUE;
}

static gboolean
read_config (Florence2 *f, JsonObject *cfg, const char *file, GError **error)
{
  JsonObject *tc = vlm_json_object (cfg, "text_config"), *vc = vlm_json_object (cfg, "vision_config");
  Bart decoder = {0};
  if (!tc || !vc) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG, "%s: no %s object", file, tc ? "vision_config" : "text_config");
    return FALSE;
  }
  if (!vlm_davit_config_read (&f->vision.cfg, vc, file, error) ||
      !vlm_json_require_int (tc, "d_model", file, &f->D, error) ||
      !vlm_json_require_int (tc, "vocab_size", file, &f->vocab_size, error) ||
      !vlm_json_positive_int (tc, "max_position_embeddings", 1024, file, &f->max_positions, error) ||
      !vlm_json_require_int (cfg, "image_token_id", file, &f->image_token_id, error) ||
      !vlm_json_require_int (vc, "projection_dim", file, &f->P, error) ||
      !vlm_json_positive_int (vc, "max_position_embeddings", 50, file, &f->max_image_positions, error) ||
      !read_bart_config (&f->encoder, tc, "encoder", f->D, file, error) ||
      !read_bart_config (&decoder, tc, "decoder", f->D, file, error))
    return FALSE;
  if (f->D < 1 || f->P != f->D || f->vocab_size < 1 || f->image_token_id < 0 || f->image_token_id >= f->vocab_size) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG,
                 "%s: d_model %d, projection_dim %d (must equal it), vocab_size %d, image_token_id %d do not fit", file,
                 f->D, f->P, f->vocab_size, f->image_token_id);
    return FALSE;
  }
  f->Dv = f->vision.cfg.embed_dim[f->vision.cfg.n_stages - 1];
  f->embed_scale = vlm_json_bool (tc, "scale_embedding", FALSE) ? sqrtf ((float) f->D) : 1.0f;
  /* BartDecoder: a text decoder with BART's learned positions */
  f->decoder = (VlmTextDecoder) {.cfg = decoder.cfg, .n_layers = decoder.n_layers, .vocab_size = f->vocab_size,
                                 .max_positions = f->max_positions, .pos_offset = BART_POSITION_OFFSET,
                                 .embed_scale = f->embed_scale};
  f->tied = vlm_json_bool (cfg, "tie_word_embeddings", vlm_json_bool (tc, "tie_word_embeddings", TRUE));
  f->bos_id = vlm_json_int (tc, "bos_token_id", 0);
  f->eos_id = vlm_json_int (tc, "eos_token_id", 2);
  f->decoder_start_id = vlm_json_int (tc, "decoder_start_token_id", 2);
  if (f->decoder_start_id < 0 || f->decoder_start_id >= f->vocab_size || f->bos_id < 0 || f->bos_id >= f->vocab_size ||
      f->eos_id < 0 || f->eos_id >= f->vocab_size) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG,
                 "%s: text_config bos_token_id %d, eos_token_id %d, decoder_start_token_id %d outside the vocabulary "
                 "of %d", file, f->bos_id, f->eos_id, f->decoder_start_id, f->vocab_size);
    return FALSE;
  }
  return TRUE;
}

static gboolean
load_bart (Bart *b, VlmWeights *w, const VlmPostNormNames *names, int max_positions, const char *side, int D,
           GError **error)
{
  int64_t pos[] = {max_positions + BART_POSITION_OFFSET, D}, d[] = {D};
  g_autofree char *layers = g_strdup_printf ("model.language_model.%s.layers", side);
  return vlm_weights_check_count (w, b->n_layers, side, error) &&
         (b->embed_positions = vlm_weights_f32 (w, error, 2, pos, "model.language_model.%s.embed_positions.weight",
                                                side)) &&
         (b->ln_w = vlm_weights_f32 (w, error, 1, d, "model.language_model.%s.layernorm_embedding.weight", side)) &&
         (b->ln_b = vlm_weights_f32 (w, error, 1, d, "model.language_model.%s.layernorm_embedding.bias", side)) &&
         (b->layers = vlm_postnorm_layers_load (&b->cfg, names, D, w, layers, b->n_layers, error));
}

/* The BART decoder as a VlmTextDecoder: shared embeddings, learned
 * positions, layernorm_embedding, post-norm layers with cross-attention,
 * and the head (shared's with tie_word_embeddings, else lm_head). */
static gboolean
load_decoder (Florence2 *f, VlmWeights *w, GError **error)
{
  VlmTextDecoder *t = &f->decoder;
  int D = f->D;
  int64_t pos[] = {f->max_positions + BART_POSITION_OFFSET, D}, d[] = {D}, emb[] = {f->vocab_size, D};
  const char *head = f->tied ? "model.language_model.shared" : "lm_head";
  return vlm_weights_check_count (w, t->n_layers, "decoder", error) &&
         (t->word_embeddings = vlm_weights_tensor (w, error, 2, emb, "model.language_model.shared.weight")) &&
         (t->position_embeddings =
              vlm_weights_f32 (w, error, 2, pos, "model.language_model.decoder.embed_positions.weight")) &&
         (t->emb_ln_w = vlm_weights_f32 (w, error, 1, d, "model.language_model.decoder.layernorm_embedding.weight")) &&
         (t->emb_ln_b = vlm_weights_f32 (w, error, 1, d, "model.language_model.decoder.layernorm_embedding.bias")) &&
         (t->layers = vlm_postnorm_layers_load (&t->cfg, &vlm_postnorm_bart_decoder, D, w,
                                                "model.language_model.decoder.layers", t->n_layers, error)) &&
         vlm_text_decoder_load_head (t, w, head, head, error);   /* no fallback: the config says which */
}

/* Florence2VisionPositionalEmbeddingCosine1D's row 0 (one frame): a
 * persistent buffer, so the checkpoint's; computed as HF does if absent
 * (sin at even, cos at odd dims: row 0 is 0, 1, 0, 1, ...). */
static gboolean
load_temporal (Florence2 *f, VlmWeights *w, GError **error)
{
  f->temporal0 = g_new0 (float, f->Dv);
  if (!vlm_weights_has (w, "model.multi_modal_projector.visual_temporal_embed.pos_idx_to_embed")) {
    for (int j = 1; j < f->Dv; j += 2) f->temporal0[j] = 1.0f;
    return TRUE;
  }
  int64_t shape[] = {-1, f->Dv};
  const float *t = vlm_weights_f32 (w, error, 2, shape, "model.multi_modal_projector.visual_temporal_embed.pos_idx_to_embed");
  if (t)
    memcpy (f->temporal0, t, f->Dv * sizeof (float));
  return t != NULL;
}

static void florence2_free (void *impl);

static void *
florence2_load (const void *variant, VlmWeights *w, JsonObject *cfg, const char *file, VlmArchInfo *info,
                GError **error)
{
  Florence2 *f = g_new0 (Florence2, 1);
  if (!read_config (f, cfg, file, error) || !vlm_davit_load (&f->vision, w, "model.vision_tower.", error))
    goto fail;
  int D = f->D, Dv = f->Dv, V = f->vocab_size;
  int64_t p[] = {f->P}, rows[] = {f->max_image_positions, Dv / 2}, cols[] = {f->max_image_positions, Dv - Dv / 2};
  int64_t emb[] = {V, D};
  if (!vlm_weights_linear (w, &f->image_projection, FALSE, f->P, Dv, error,
                           "model.multi_modal_projector.image_projection") ||
      !(f->proj_norm_w = vlm_weights_f32 (w, error, 1, p, "model.multi_modal_projector.image_proj_norm.weight")) ||
      !(f->proj_norm_b = vlm_weights_f32 (w, error, 1, p, "model.multi_modal_projector.image_proj_norm.bias")) ||
      !(f->row_embeddings = vlm_weights_f32 (
            w, error, 2, rows, "model.multi_modal_projector.image_position_embed.row_embeddings.weight")) ||
      !(f->column_embeddings = vlm_weights_f32 (
            w, error, 2, cols, "model.multi_modal_projector.image_position_embed.column_embeddings.weight")) ||
      !load_temporal (f, w, error) ||
      !(f->shared = vlm_weights_f32 (w, error, 2, emb, "model.language_model.shared.weight")) ||
      !load_bart (&f->encoder, w, &vlm_postnorm_bart_encoder, f->max_positions, "encoder", D, error) ||
      !load_decoder (f, w, error))
    goto fail;
  *info = (VlmArchInfo) {
    .frames_per_clip = 1,
    .processor_section = "image_processor",
    .image_size = FLORENCE2_IMAGE_SIZE,
    .vocab_size = V,
    .max_positions = f->max_positions,
  };
  return f;
fail:
  florence2_free (f);
  return NULL;
}

static void
florence2_free (void *impl)
{
  Florence2 *f = impl;
  if (!f)
    return;
  vlm_davit_clear (&f->vision);
  vlm_postnorm_layers_free (f->encoder.layers, f->encoder.n_layers);
  vlm_text_decoder_clear (&f->decoder);
  vlm_linear_clear (&f->image_projection);
  g_free (f->temporal0);
  g_free (f);
}

/* ---------------------------------------------------------------- run */

static void florence2_run_free (void *run);

static void *
florence2_run_new (VlmModel *model, VlmOps *ops, int max_beams, int max_tokens, GError **error)
{
  const Florence2 *f = model->impl;
  Florence2Run *r = g_new0 (Florence2Run, 1);
  int D = f->D;
  r->model = model;
  r->f = f;
  r->ops = ops;
  r->size = model->info.image_size;
  r->side = vlm_davit_out_side (&f->vision, r->size);
  r->n_image = 1 + r->side * r->side;
  r->max_beams = max_beams;
  r->max_rows = MIN (MAX (max_tokens, r->n_image + 2), f->max_positions);
  if (r->side < 1 || r->side > f->max_image_positions) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_CONFIG,
                 "%s: %d² frames make a %d² grid; the image position embeddings hold %d a side", model->dir, r->size,
                 r->side, f->max_image_positions);
    florence2_run_free (r);
    return NULL;
  }
  size_t rows = r->max_rows;
  size_t floats = (size_t) r->side * r->side * f->Dv * 2 + (size_t) r->n_image * MAX (f->P, f->Dv) * 2 + rows * D * 2;
  size_t bytes = floats * sizeof (float) + 32 * 64 + vlm_davit_arena_size (&f->vision, r->size) +
                 vlm_postnorm_layer_bytes (&f->encoder.cfg, (int) rows) +
                 vlm_text_run_bytes (&f->decoder, max_beams, (int) rows, (int) rows, vlm_ops_kv_bf16 (ops));
  if (!vlm_arena_init (&r->arena, bytes)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_INFERENCE, "cannot allocate %zu MiB of run state", bytes >> 20);
    florence2_run_free (r);
    return NULL;
  }
  vlm_text_run_init (&r->text, &f->decoder, ops, &r->arena, max_beams, (int) rows, (int) rows);
  r->features = vlm_arena_new (&r->arena, float, (size_t) r->side * r->side * f->Dv);
  r->image_tokens = vlm_arena_new (&r->arena, float, (size_t) r->n_image * f->P);
  r->encoder_out = vlm_arena_new (&r->arena, float, rows * D);
  r->decoder_ids[0] = model->decoder_start_id >= 0 ? model->decoder_start_id : f->decoder_start_id;
  return r;
}

static void
florence2_run_free (void *run)
{
  Florence2Run *r = run;
  if (!r)
    return;
  vlm_arena_clear (&r->arena);
  g_free (r);
}

/* ---------------------------------------------------------------- vision */

/* Florence2MultiModalProjector on the tower's [side², Dv] features. */
static void
project (Florence2Run *r)
{
  const Florence2 *f = r->f;
  int Dv = f->Dv, half = Dv - Dv / 2, n = r->side * r->side;
  size_t mark = vlm_arena_mark (&r->arena);
  float *x = vlm_arena_new (&r->arena, float, (size_t) r->n_image * Dv);
  float *mean = x;   /* row 0: the spatial mean; rows 1..n the positioned features */
  memset (mean, 0, Dv * sizeof (float));
  for (int i = 0; i < n; i++) {
    const float *col = f->column_embeddings + (size_t) (i % r->side) * half;
    const float *row = f->row_embeddings + (size_t) (i / r->side) * (Dv / 2);
    const float *src = r->features + (size_t) i * Dv;
    float *dst = x + (size_t) (1 + i) * Dv;
    for (int j = 0; j < Dv; j++) {
      dst[j] = src[j] + (j < half ? col[j] : row[j - half]) + f->temporal0[j];
      mean[j] += dst[j];
    }
  }
  for (int j = 0; j < Dv; j++) mean[j] /= n;
  vlm_linear (r->ops, &f->image_projection, x, r->n_image, r->image_tokens, VLM_ACT_NONE, NULL);
  vlm_layer_norm (r->ops, r->image_tokens, r->n_image, f->P, f->proj_norm_w, f->proj_norm_b, 1e-5f, r->image_tokens);
  vlm_arena_rewind (&r->arena, mark);
}

static gboolean
florence2_encode (void *run, const float *pixels, int n_frames, GError **error)
{
  Florence2Run *r = run;
  g_assert (n_frames == 1);
  vlm_davit_forward (&r->f->vision, r->ops, &r->arena, pixels, r->size, r->features);
  project (r);
  return TRUE;
}

/* ---------------------------------------------------------------- text */

/* The encoder's input: x[i] = LN(embed_scale · shared[ids[i]] (or the
 * next image token where ids[i] is the placeholder) + embed_positions[i +
 * 2]). */
static void
embed (const Florence2Run *r, const int *ids, int n, float *x)
{
  const Florence2 *f = r->f;
  const Bart *b = &f->encoder;
  int D = f->D, next = 0;
  for (int i = 0; i < n; i++) {
    const float *pe = b->embed_positions + (size_t) (i + BART_POSITION_OFFSET) * D;
    float *xi = x + (size_t) i * D;
    if (ids[i] == f->image_token_id) {
      const float *t = r->image_tokens + (size_t) next++ * D;
      for (int j = 0; j < D; j++) xi[j] = t[j] + pe[j];
    } else {
      const float *we = f->shared + (size_t) ids[i] * D;
      for (int j = 0; j < D; j++) xi[j] = we[j] * f->embed_scale + pe[j];
    }
  }
  vlm_layer_norm (r->ops, x, n, D, b->ln_w, b->ln_b, b->cfg.eps, x);
}

static gboolean
check_ids (const Florence2Run *r, const int *ids, int n, GError **error)
{
  if (n > r->max_rows) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT,
                 "a prompt of %d tokens exceeds the %d positions this run holds (model: %d)", n, r->max_rows,
                 r->f->max_positions);
    return FALSE;
  }
  for (int i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= r->f->vocab_size) {
      g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT, "token id %d outside the vocabulary of %d", ids[i],
                   r->f->vocab_size);
      return FALSE;
    }
  return TRUE;
}

/* The encoder over the prompt (its placeholders holding the image), its
 * output projected into every decoder layer's cross-attention, then the
 * decoder's first step from decoder_start_token_id. */
static const float *
florence2_prefill (void *run, const int *ids, int n, int *pos, GError **error)
{
  Florence2Run *r = run;
  const Florence2 *f = r->f;
  const Bart *e = &f->encoder;
  int n_placeholders = 0;
  if (n < 1 || !check_ids (r, ids, n, error))
    return NULL;
  for (int i = 0; i < n; i++)
    n_placeholders += ids[i] == f->image_token_id;
  if (n_placeholders != r->n_image) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT,
                 "the prompt holds %d image tokens (id %d); the image makes %d", n_placeholders, f->image_token_id,
                 r->n_image);
    return NULL;
  }
  embed (r, ids, n, r->encoder_out);
  for (int li = 0; li < e->n_layers; li++)
    vlm_postnorm_layer_forward (&e->cfg, &e->layers[li], r->ops, &r->arena, li, r->encoder_out, NULL, 1, n, NULL,
                                FALSE);
  vlm_text_run_set_memory (&r->text, r->encoder_out, n);
  if (!(r->prompt_logits = vlm_text_run_prefill (&r->text, r->decoder_ids, 1, error)))
    return NULL;
  *pos = 1;
  return r->prompt_logits;
}

static const VlmDecoder *
florence2_decoder (void *run)
{
  return &((Florence2Run *) run)->text.decoder;
}

static const int *
florence2_decoder_prompt (void *run, int *n)
{
  *n = 1;
  return ((Florence2Run *) run)->decoder_ids;
}

/* Florence2Processor: a task token alone becomes its question ("" is
 * <CAPTION>), other text stays; then image_token × n_image + <s> + text
 * + </s>, tokenized without special tokens. */
static int *
florence2_prompt_ids (VlmModel *model, const char *prompt, int *n, GError **error)
{
  const Florence2 *f = model->impl;
  const char *text = prompt && *prompt ? prompt : task_prompts[0].task;
  for (guint i = 0; i < G_N_ELEMENTS (task_prompts); i++)
    if (strstr (text, task_prompts[i].task)) {
      if (strcmp (text, task_prompts[i].task) != 0) {
        g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_ARGUMENT,
                     "Florence-2: the task token %s must be the whole prompt (got \"%s\")", task_prompts[i].task,
                     text);
        return NULL;
      }
      text = task_prompts[i].text;
      break;
    }
  int n_text = 0, side = vlm_davit_out_side (&f->vision, model->info.image_size), n_image = 1 + side * side;
  g_autofree int *t = vlm_tokenizer_encode (model->tokenizer, text, FALSE, &n_text, error);
  if (!t)
    return NULL;
  int *ids = g_new (int, n_image + n_text + 2);
  for (int i = 0; i < n_image; i++) ids[i] = f->image_token_id;
  ids[n_image] = f->bos_id;
  memcpy (ids + n_image + 1, t, n_text * sizeof (int));
  ids[n_image + 1 + n_text] = f->eos_id;
  *n = n_image + n_text + 2;
  return ids;
}

/* vision_out: the tower's [side², Dv]; image_tokens: the projector's
 * [n_image, D]; after prefill, encoder_out [n, D] and prompt_logits: the
 * decoder's first row [V]. */
static const float *
florence2_stage (void *run, const char *name)
{
  const Florence2Run *r = run;
  const VlmStage stages[] = {{"vision_out", r->features}, {"image_tokens", r->image_tokens},
                             {"encoder_out", r->encoder_out}, {"prompt_logits", r->prompt_logits}};
  return vlm_stage_find (stages, G_N_ELEMENTS (stages), name);
}

const VlmArch vlm_arch_florence2 = {
  .name = "Florence2ForConditionalGeneration",
  .load = florence2_load,
  .free = florence2_free,
  .run_new = florence2_run_new,
  .run_free = florence2_run_free,
  .encode = florence2_encode,
  .prompt_ids = florence2_prompt_ids,
  .prefill = florence2_prefill,
  .decoder = florence2_decoder,
  .decoder_prompt = florence2_decoder_prompt,
  .stage = florence2_stage,
};
