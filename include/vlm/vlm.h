/* vlm.h — the vlmcaption inference engine's public API.
 *
 * The engine loads a HuggingFace checkpoint folder as it is (config.json,
 * model.safetensors, tokenizer.json, processor_config.json, ...) and turns a
 * clip of raw video frames plus a text prompt into a caption. It knows nothing
 * of GStreamer; it uses GLib for errors and containers.
 *
 * Two opaque handles, as whisper.cpp has context and state:
 *   VlmModel   — read-only weights, config, tokenizer. Reference counted and
 *                safe to share between threads, sessions and elements.
 *   VlmSession — per-stream run state: activations, KV cache, primitive cache.
 *                Allocated once; a session is used by one thread at a time.
 *
 * Every call that can fail takes `GError **error` last and returns NULL/FALSE
 * with the error set in domain VLM_ERROR. Free functions accept NULL.
 */
#ifndef VLM_VLM_H
#define VLM_VLM_H

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

/* ---------------------------------------------------------------- errors */

#define VLM_ERROR (vlm_error_quark ())
GQuark vlm_error_quark (void);

typedef enum {
  VLM_ERROR_NOT_FOUND,                /* a file or tensor is missing */
  VLM_ERROR_IO,                       /* a file could not be read or mapped */
  VLM_ERROR_BAD_HEADER,               /* a malformed or lying file header */
  VLM_ERROR_BAD_SHAPE,                /* a tensor has the wrong shape or dtype */
  VLM_ERROR_BAD_CONFIG,               /* config/processor json invalid or missing keys */
  VLM_ERROR_UNSUPPORTED_ARCHITECTURE, /* config.json names an architecture we lack */
  VLM_ERROR_UNSUPPORTED_TOKENIZER,    /* tokenizer.json of an unknown model type */
  VLM_ERROR_BAD_FRAME,                /* zero-sized, inconsistent or unknown-format frame */
  VLM_ERROR_BAD_ARGUMENT,             /* an API argument out of range */
  VLM_ERROR_INFERENCE,                /* a compute backend failed at run time */
  VLM_ERROR_CANCELLED,                /* vlm_session_cancel() stopped the call */
} VlmErrorCode;

/* ---------------------------------------------------------------- logging */

typedef enum {
  VLM_LOG_ERROR, VLM_LOG_WARNING, VLM_LOG_INFO, VLM_LOG_DEBUG,
} VlmLogLevel;

/* Called from whichever thread logs; must be thread-safe. */
typedef void (*VlmLogFunc) (VlmLogLevel level, const char *message, void *user_data);

/* Routes all engine logging to `func` (NULL: GLib's g_log under domain "vlm").
 * Global; call before loading models. */
void vlm_set_log_func (VlmLogFunc func, void *user_data);

/* ---------------------------------------------------------------- CPU tier */

/* The instruction-set tier the engine runs on, detected once per process:
 * the lowest of what the CPU has, what oneDNN will use (it honours
 * DNNL_MAX_CPU_ISA) and the engine's own cap, VLM_MAX_CPU_ISA (same values
 * as oneDNN's: SSE41, AVX2, AVX512_CORE, AVX512_CORE_BF16, AVX512_CORE_AMX;
 * it caps oneDNN too). Every kernel, oneDNN's and the engine's, is chosen
 * for this tier, so a capped run is exactly what that CPU class runs. */
typedef enum {
  VLM_CPU_GENERIC,       /* x86-64 without AVX2 + FMA */
  VLM_CPU_AVX2,          /* AVX2 + FMA (Zen 2/3, Intel client cores) */
  VLM_CPU_AVX512,        /* AVX-512 F/BW/VL/DQ, no bf16 instructions */
  VLM_CPU_AVX512_BF16,   /* + VNNI + BF16 (Zen 4, Cooper Lake) */
  VLM_CPU_AMX,           /* + AMX tiles (Sapphire Rapids and later) */
} VlmCpuTier;

VlmCpuTier vlm_cpu_tier (void);
const char *vlm_cpu_tier_name (VlmCpuTier tier);   /* "avx2", "avx512-bf16", ... */
/* What the detection saw, for logs: "avx2 (CPU amx, oneDNN cpu_isa_avx2,
 * DNNL_MAX_CPU_ISA=AVX2)". Static storage. */
const char *vlm_cpu_describe (void);

/* ---------------------------------------------------------------- frames */

typedef enum {
  VLM_PIXEL_RGB,   /* packed R,G,B bytes */
  VLM_PIXEL_RGBX,  /* packed R,G,B,pad */
  VLM_PIXEL_BGRX,
  VLM_PIXEL_RGBA,
  VLM_PIXEL_BGRA,
  VLM_PIXEL_I420,  /* planar Y, U, V (U,V subsampled 2x2) */
  VLM_PIXEL_NV12,  /* planar Y, interleaved UV (subsampled 2x2) */
} VlmPixelFormat;

/* One raw video frame, borrowed. planes/strides as GstVideoFrame gives them:
 * packed formats use plane 0 only; I420 uses 3 planes; NV12 uses 2.
 * Strides are in bytes and may exceed the row width. YUV is BT.601
 * limited range unless `yuv_matrix` says otherwise. */
typedef enum { VLM_YUV_BT601, VLM_YUV_BT709 } VlmYuvMatrix;

#define VLM_MAX_FRAME_SIDE 16384   /* pixels; larger frames are BAD_FRAME */

typedef struct {
  VlmPixelFormat format;
  int width, height;
  const uint8_t *planes[3];
  int strides[3];
  VlmYuvMatrix yuv_matrix;
  gboolean yuv_full_range;
} VlmFrame;

/* ---------------------------------------------------------------- model */

typedef enum {
  VLM_BACKEND_ONEDNN,   /* default: oneDNN primitives */
  VLM_BACKEND_BLAS,     /* reference: OpenBLAS sgemm + plain loops */
} VlmBackend;

typedef enum {
  VLM_PRECISION_AUTO,   /* the fastest that keeps outputs unchanged */
  VLM_PRECISION_F32,
  VLM_PRECISION_BF16,
  VLM_PRECISION_INT8,
} VlmPrecision;

typedef struct {
  VlmBackend backend;
  VlmPrecision precision;
  int n_threads;          /* 0: all cores; honoured by oneDNN and OpenBLAS */
} VlmModelParams;

VlmModelParams vlm_model_default_params (void);

typedef struct VlmModel VlmModel;

/* Loads the HF checkpoint folder `dir`. The architecture comes from
 * config.json "architectures". Returns NULL and sets `error` (naming the
 * file or tensor) on any problem. Thread-safe. */
VlmModel *vlm_model_load (const char *dir, const VlmModelParams *params, GError **error);
VlmModel *vlm_model_ref (VlmModel *model);
void vlm_model_unref (VlmModel *model);

/* Read-only facts; never fail on a loaded model. */
const char *vlm_model_get_architecture (const VlmModel *model); /* "GitForCausalLM" */
const char *vlm_model_get_name (const VlmModel *model);         /* folder basename */
int vlm_model_get_frames_per_clip (const VlmModel *model);      /* frames the model wants */
/* What the big matmuls run in, once AUTO is resolved: F32, BF16 or INT8. */
VlmPrecision vlm_model_get_precision (const VlmModel *model);
/* The CPU tier and the kernels the model's linears and attention run on
 * there, for logs. g_free. */
char *vlm_model_describe_kernels (const VlmModel *model);
/* TRUE when the model generates text (vlm_session_caption); FALSE for
 * tag-only models. */
gboolean vlm_model_can_generate (const VlmModel *model);
/* TRUE when the model scores clips against text labels (vlm_session_tag:
 * it has a text tower), whether or not it also generates. */
gboolean vlm_model_can_tag (const VlmModel *model);

/* ---------------------------------------------------------------- generation */

#define VLM_MAX_STOP_STRINGS 4
#define VLM_STOP_STRING_MAX 64   /* bytes per stop string, NUL included */

typedef struct {
  int max_new_tokens;      /* default: generation_config.json or 20 */
  int num_beams;           /* 1: greedy */
  float length_penalty;    /* beam score = sum logprob / len^penalty */
  gboolean early_stopping;
  gboolean do_sample;
  float temperature, top_p, repetition_penalty;
  int top_k;
  guint64 seed;
  /* HF stop_strings: a sequence stops once the decoded text of its
   * generated tokens contains one; the token that completed it is kept, so
   * the caption ends with (or runs past) the stop string. Under beam search
   * such a continuation is a finished hypothesis, as one ending in EOS.
   * The struct owns the text (copied in, no pointers); the first "" ends
   * the list. Each at most VLM_STOP_STRING_MAX - 1 bytes. */
  char stop_strings[VLM_MAX_STOP_STRINGS][VLM_STOP_STRING_MAX];
  /* HF NoRepeatNGramLogitsProcessor: > 0 bans any token that would repeat
   * an n-gram of this size already in prompt + output; 0: off. */
  int no_repeat_ngram_size;
  /* HF ForcedBOS/ForcedEOSTokenLogitsProcessor (-1: off): the token forced
   * when the sequence (prompt included) holds one token, e.g. after an
   * encoder–decoder's decoder start; the token forced last, when the
   * max_new_tokens-th token is chosen. */
  int forced_bos_token_id, forced_eos_token_id;
} VlmGenParams;

/* Defaults from the model's generation_config.json (HF semantics). */
VlmGenParams vlm_gen_default_params (const VlmModel *model);

/* Applies "key=value,key=value" (HF generation_config keys: max_new_tokens,
 * num_beams, length_penalty, early_stopping, do_sample, temperature, top_k,
 * top_p, repetition_penalty, seed, stop_strings, no_repeat_ngram_size,
 * forced_bos_token_id, forced_eos_token_id) onto `params`. Unknown keys
 * and bad values are an error naming them. stop_strings takes up to
 * VLM_MAX_STOP_STRINGS non-empty UTF-8 strings separated by '|', e.g.
 * "stop_strings=.|the end" (so a stop string cannot hold ',' or '|', nor
 * begin or end with white space, which is stripped); "stop_strings=" clears
 * them. The text is copied into `params`: `text` need not outlive the call. */
gboolean vlm_gen_params_parse (VlmGenParams *params, const char *text, GError **error);

/* Whether every field of `params` holds a value vlm_gen_params_parse could
 * have stored (e.g. temperature and top_p > 0, no NaN, num_beams in
 * [1, 64], stop strings NUL-terminated UTF-8): BAD_ARGUMENT naming the
 * first field that does not. vlm_session_caption checks its params so. */
gboolean vlm_gen_params_check (const VlmGenParams *params, GError **error);

/* Called for each token as it is generated (greedy/sampling only) with the
 * text it adds to the caption (may be "" for a partial UTF-8 sequence or a
 * special token); return FALSE to stop early. */
typedef gboolean (*VlmTokenFunc) (int token_id, const char *piece, void *user_data);

typedef struct {
  char *text;              /* decoded, special tokens skipped; UTF-8 */
  int *tokens;             /* generated ids (without the prompt) */
  int n_tokens;
  double preprocess_ms, vision_ms, prefill_ms, decode_ms, total_ms;
} VlmCaption;

void vlm_caption_clear (VlmCaption *caption);

/* ---------------------------------------------------------------- session */

typedef struct VlmSession VlmSession;

/* Allocates all run state for `model` (activations for a full clip, KV cache
 * for the longest generation). Holds a ref on the model. A model folder
 * loaded without tokenizer.json or processor config (model-level
 * checkpoints load for tests) gives VLM_ERROR_NOT_FOUND naming the file. */
VlmSession *vlm_session_new (VlmModel *model, GError **error);
void vlm_session_free (VlmSession *session);

/* Captions one clip: `n_frames` frames (any count ≥ 1; resampled to the
 * model's frames per clip if different) with `prompt` (NULL or "": the
 * model's plain captioning prompt). Fills `out` (clear it with
 * vlm_caption_clear). BAD_ARGUMENT for a model that does not generate
 * (see vlm_session_tag) or `params` that vlm_gen_params_check refuses.
 * Not thread-safe for one session. */
gboolean vlm_session_caption (VlmSession *session, const VlmFrame *frames, int n_frames,
                              const char *prompt, const VlmGenParams *params,
                              VlmTokenFunc on_token, void *user_data,
                              VlmCaption *out, GError **error);

/* Zero-shot tags, for models that score a clip against text instead of
 * generating (vlm_model_can_generate() FALSE, e.g. LanguageBindVideo):
 * scores[i] = logit_scale.exp() · cos(clip, labels[i]) (HF logits_per_video)
 * and, if `probs` is not NULL, probs = softmax(scores) across the labels;
 * both arrays hold `n_labels` values. The labels' text embeddings are
 * computed when the label set differs from the previous call's, and reused
 * while it does not. `frames` as for vlm_session_caption. Errors:
 * BAD_ARGUMENT for a model that cannot tag or no frames/labels, NOT_FOUND
 * for a folder without tokenizer.json. Not thread-safe for one session. */
gboolean vlm_session_tag (VlmSession *session, const VlmFrame *frames, int n_frames,
                          const char *const *labels, int n_labels, float *scores, float *probs,
                          GError **error);

/* Makes a running vlm_session_caption() return VLM_ERROR_CANCELLED soon.
 * Thread-safe; the flag clears when the next call starts. */
void vlm_session_cancel (VlmSession *session);

/* ---------------------------------------------------------------- batching */

/* A scheduler for one model shared by several sessions (streams): the
 * sessions made with vlm_session_new_batched hand their forward passes to
 * the batcher's one inference thread instead of running them on their own,
 * so N streams do not contend for the cores with N thread pools, and the
 * decode steps of every caption in flight run as ONE batched step
 * (continuous batching: a caption joins at its first step after prefill
 * and leaves when its generation ends; each keeps its own prompt, beams,
 * sampling and stop settings, which the shared generation loop applies in
 * the caller's thread). Decoding reads each weight once per step for all
 * streams: memory-bound decode costs about the same for 1 or 4 rows.
 * Clips waiting to be encoded go through the vision tower together where
 * the architecture can (one tower call over every waiting clip's frames).
 * The calls on a batched session are the same as on a private one and
 * block their caller until its caption is done; vlm_session_cancel works
 * as before (the caption leaves at the next step). Reference counted;
 * thread-safe. */
typedef struct VlmBatcher VlmBatcher;

/* The batcher's thread and run state for `model` (its backend, precision
 * and thread count). NULL + error when the model cannot generate or the
 * state cannot be allocated. */
VlmBatcher *vlm_batcher_new (VlmModel *model, GError **error);
VlmBatcher *vlm_batcher_ref (VlmBatcher *batcher);
/* The last unref joins the thread; sessions hold a reference, so it comes
 * after the last of them is freed. Accepts NULL. */
void vlm_batcher_unref (VlmBatcher *batcher);

/* A session of the batcher's model whose encode, prefill and decode steps
 * run on the batcher (vlm_session_caption; vlm_session_tag runs there too,
 * unbatched). Holds a reference on the batcher. */
VlmSession *vlm_session_new_batched (VlmBatcher *batcher, GError **error);

/* What the batcher has run since it was made (for logs, benchmarks, tests). */
typedef struct {
  guint64 steps;           /* batched decode steps */
  guint64 step_captions;   /* captions summed over those steps (mean batch: / steps) */
  guint64 step_rows;       /* rows (beams) summed over those steps */
  int max_step_captions;   /* the most captions one step held */
  guint64 encodes;         /* clips encoded */
  guint64 encode_batches;  /* tower calls they took (< encodes when clips were batched) */
  guint64 prefills;         /* captions started (a prefill each) */
  /* the inference thread's busy time: decode steps, tower calls, other stages (prefill, tags) */
  double step_ms, encode_ms, call_ms;
  /* and how long it waited, with steps in hand, for the other captions' */
  double straggler_ms;
} VlmBatcherStats;

void vlm_batcher_get_stats (VlmBatcher *batcher, VlmBatcherStats *stats);

G_END_DECLS

#endif /* VLM_VLM_H */
