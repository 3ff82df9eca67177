/* testutil.h — shared helpers for the engine tests (GLib gtest, TAP). */
#ifndef VLM_TESTUTIL_H
#define VLM_TESTUTIL_H

#include "ops.h"
#include "safetensors.h"
#include "tensor.h"

/* Absolute path of `rel` under ../shared (relative to the project root,
 * taken from $VLM_PROJECT_ROOT or the working directory). g_free. */
char *vt_shared_path (const char *rel);
/* Absolute path of `rel` under the project root (e.g. "models/testcard-git"). g_free. */
char *vt_project_path (const char *rel);

/* Opens a golden file (e.g. "fixtures/git-video-tiny/golden.safetensors");
 * aborts the test with a message if it cannot. */
VlmSafetensors *vt_open_golden (const char *rel);

/* Tensor `name` of `st` as a newly allocated f32 array (g_free), numel in *n
 * (n may be NULL). Fails the test if absent. Accepts f32/bf16/f16/i64/u8. */
float *vt_tensor_f32 (const VlmSafetensors *st, const char *name, int64_t *n);
/* Tensor `name` as int array (from I64/I32). g_free. */
int *vt_tensor_int (const VlmSafetensors *st, const char *name, int64_t *n);

/* max |a-b| / (max(b)-min(b)) over n values — the fixtures' tolerance rule. */
double vt_max_rel_range_diff (const float *a, const float *b, int64_t n);
/* Asserts vt_max_rel_range_diff(a, b, n) <= tol, printing the figure with
 * `what` via g_test_message either way so the log records parity. */
void vt_assert_close (const char *what, const float *a, const float *b, int64_t n, double tol);

/* The ways a model can compute, for tests that run on each: the two
 * backends in f32, where the fixtures' 1e-4 of range holds, and oneDNN in
 * bf16. bf16 keeps 8 significant bits, so each rounding of an input or a
 * weight moves a product by up to 2^-9 ≈ 2e-3 relative; through the tiny
 * models' few layers the drift stays under 2e-2 of the logits' range. */
typedef struct {
  VlmBackend backend;
  VlmPrecision precision;
  const char *name;
  double tol;          /* max |diff| / range against the goldens */
} VtBackend;
extern const VtBackend vt_backends[3];
/* oneDNN in int8 (weights per channel, symmetric, output heads too; inputs
 * per call, u8 with a zero point): the stages stay within 5e-2 of range
 * (0.4-0.8 % measured on the tiny models, 3.7 % on LanguageBind's 3 tag
 * logits), 1e-1 below VNNI, where weights have 7 bits (0.6-1.2 % on the
 * tiny models, 5.2 % on those logits), but greedy
 * ids are not expected to survive it, so only stage tests and the test
 * card's agreement use it. */
extern VtBackend vt_int8;

/* Loads the model folder `dir` as `be` computes; fails the test if it cannot. */
VlmModel *vt_load_model (const char *dir, const VtBackend *be);
/* An ops context as a session on `be` makes one (attention dtype included). */
VlmOps *vt_ops_new (const VtBackend *be);

/* A golden's frames_u8 (F, H, W, 3) as F packed-RGB VlmFrames over the
 * golden's memory (g_free the array); F in *n. */
VlmFrame *vt_golden_frames (const VlmSafetensors *gold, int *n);

/* A SmolVLM2 checkpoint folder as the Hub ships one, made in a new temp
 * folder around fixtures/smolvlm-tiny (config.json and model.safetensors
 * are symlinks to it): a flat preprocessor_config.json in SmolVLM2's shape
 * (SmolVLMImageProcessor, LANCZOS, a longest-edge `size`, max_image_size,
 * video_sampling) scaled to the 32-pixel tower, processor_config.json, and
 * a byte-level BPE tokenizer.json over the model's 400 ids: the specials
 * SmolVLM's prompt uses, `<image>` at image_token_id 399, GPT-2's 256 byte
 * symbols and filler words. Returns the folder (g_free); remove it with
 * vt_remove_folder. */
#define VT_SMOLVLM2_SIZE 40         /* size.longest_edge: the first resize */
#define VT_SMOLVLM2_VIDEO_SIZE 32   /* video_sampling.video_size: `size` overrides it */
#define VT_SMOLVLM2_MAX_IMAGE 32    /* max_image_size.longest_edge: the square */
#define VT_SMOLVLM2_FPS 2
#define VT_SMOLVLM2_MAX_FRAMES 4
char *vt_smolvlm2_folder (void);

/* A captioning folder made in a new temp folder around the model-level
 * fixture `fixture` (blip-tiny, vit-gpt2-tiny: its config.json,
 * generation_config.json, model.safetensors and preprocessor_config.json
 * linked) plus a WordPiece tokenizer.json over its vocab_size ids
 * (synth_wordpiece_json without unused slots: ids 5 and 6 are "%" and
 * "&", so the prompt "%&" is BLIP's golden [bos, 5, 6]). Returns the
 * folder (g_free); remove it with vt_remove_folder. */
#define VT_CAPTIONER_PROMPT_5_6 "%&"
char *vt_captioner_folder (const char *fixture, int vocab_size);

/* Removes the files directly in `dir`, then `dir`. */
void vt_remove_folder (const char *dir);

#endif
