/* synth.c — synthetic checkpoints (synth.h). */
#include "synth.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* splitmix64: a fixed seed gives the same checkpoint on every machine. */
static guint64 rng_state = 0x5eed5eedULL;

float
synth_uniform (void)   /* [-1, 1) */
{
  guint64 z = (rng_state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return (float) ((z >> 40) * (1.0 / 8388608.0) - 1.0);
}

const char *
synth_name (SynthCheckpoint *c, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *s = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  return g_string_chunk_insert (c->names, s);
}

SynthTensor *
synth_tensor (SynthCheckpoint *c, const char *name, SynthInit init, int ndim, int64_t d0, int64_t d1, int64_t d2,
            int64_t d3)
{
  SynthTensor t = {name, ndim, {d0, d1, d2, d3}, init, -1, 0};
  g_array_append_val (c->specs, t);
  return &g_array_index (c->specs, SynthTensor, c->specs->len - 1);
}

void
synth_linear (SynthCheckpoint *c, const char *prefix, int n, int k)
{
  synth_tensor (c, synth_name (c, "%s.weight", prefix), SYNTH_WEIGHT, 2, n, k, 0, 0);
  synth_tensor (c, synth_name (c, "%s.bias", prefix), SYNTH_WEIGHT, 1, n, 0, 0, 0);
}

void
synth_layer_norm (SynthCheckpoint *c, const char *prefix, int d)
{
  synth_tensor (c, synth_name (c, "%s.weight", prefix), SYNTH_NORM_GAIN, 1, d, 0, 0, 0);
  synth_tensor (c, synth_name (c, "%s.bias", prefix), SYNTH_WEIGHT, 1, d, 0, 0, 0);
}

/* Every tensor GitForCausalLM's state dict holds, under the Hub's names. */
void
synth_git_tensors (SynthCheckpoint *c, const SynthGit *p, int pin_id)
{
  const char *vm = "git.image_encoder.vision_model";
  int Dv = p->vision_hidden, D = p->hidden, P = p->patch_size;
  synth_tensor (c, synth_name (c, "%s.embeddings.class_embedding", vm), SYNTH_WEIGHT, 1, Dv, 0, 0, 0);
  synth_tensor (c, synth_name (c, "%s.embeddings.patch_embedding.weight", vm), SYNTH_WEIGHT, 4, Dv, 3, P, P);
  synth_tensor (c, synth_name (c, "%s.embeddings.position_embedding.weight", vm), SYNTH_WEIGHT, 2, (p->image_size / p->patch_size) * (p->image_size / p->patch_size) + 1, Dv, 0, 0);
  synth_layer_norm (c, synth_name (c, "%s.pre_layrnorm", vm), Dv);
  for (int i = 0; i < p->vision_layers; i++) {
    const char *l = synth_name (c, "%s.encoder.layers.%d", vm, i);
    synth_linear (c, synth_name (c, "%s.self_attn.q_proj", l), Dv, Dv);
    synth_linear (c, synth_name (c, "%s.self_attn.k_proj", l), Dv, Dv);
    synth_linear (c, synth_name (c, "%s.self_attn.v_proj", l), Dv, Dv);
    synth_linear (c, synth_name (c, "%s.self_attn.out_proj", l), Dv, Dv);
    synth_layer_norm (c, synth_name (c, "%s.layer_norm1", l), Dv);
    synth_linear (c, synth_name (c, "%s.mlp.fc1", l), p->vision_intermediate, Dv);
    synth_linear (c, synth_name (c, "%s.mlp.fc2", l), Dv, p->vision_intermediate);
    synth_layer_norm (c, synth_name (c, "%s.layer_norm2", l), Dv);
  }
  synth_layer_norm (c, synth_name (c, "%s.post_layernorm", vm), Dv);
  for (int i = 0; i < p->frames; i++)   /* sic: the Hub's spelling */
    synth_tensor (c, synth_name (c, "git.img_temperal_embedding.%d", i), SYNTH_WEIGHT, 3, 1, 1, Dv, 0);
  synth_linear (c, "git.visual_projection.visual_projection.0", D, Dv);
  synth_layer_norm (c, "git.visual_projection.visual_projection.1", D);
  synth_tensor (c, "git.embeddings.word_embeddings.weight", SYNTH_WEIGHT, 2, p->vocab, D, 0, 0);
  synth_tensor (c, "git.embeddings.position_embeddings.weight", SYNTH_WEIGHT, 2, p->max_positions, D, 0, 0);
  synth_layer_norm (c, "git.embeddings.LayerNorm", D);
  for (int i = 0; i < p->layers; i++) {
    const char *l = synth_name (c, "git.encoder.layer.%d", i);
    synth_linear (c, synth_name (c, "%s.attention.self.query", l), D, D);
    synth_linear (c, synth_name (c, "%s.attention.self.key", l), D, D);
    synth_linear (c, synth_name (c, "%s.attention.self.value", l), D, D);
    synth_linear (c, synth_name (c, "%s.attention.output.dense", l), D, D);
    synth_layer_norm (c, synth_name (c, "%s.attention.output.LayerNorm", l), D);
    synth_linear (c, synth_name (c, "%s.intermediate.dense", l), p->intermediate, D);
    synth_linear (c, synth_name (c, "%s.output.dense", l), D, p->intermediate);
    synth_layer_norm (c, synth_name (c, "%s.output.LayerNorm", l), D);
  }
  synth_linear (c, "output", p->vocab, D);
  /* Random weights would pick [SEP] early now and then and end the caption;
   * a large negative bias on pin_id makes every caption max_new_tokens
   * long, so runs are comparable (a decode step costs the same whatever the
   * token). */
  if (pin_id >= 0) {
    SynthTensor *bias = &g_array_index (c->specs, SynthTensor, c->specs->len - 1);
    bias->pinned = pin_id;
    bias->pinned_value = -100.0f;
  }
}

/* A depthwise Conv2d [C, 1, 3, 3] + bias. */
static void
dwconv (SynthCheckpoint *c, const char *prefix, int C)
{
  synth_tensor (c, synth_name (c, "%s.weight", prefix), SYNTH_WEIGHT, 4, C, 1, 3, 3);
  synth_tensor (c, synth_name (c, "%s.bias", prefix), SYNTH_WEIGHT, 1, C, 0, 0, 0);
}

/* A BART encoder or decoder layer: self_attn (+ encoder_attn), fc1, fc2, norms. */
static void
bart_layer (SynthCheckpoint *c, const char *l, int D, int ffn, gboolean cross)
{
  static const char *const proj[] = {"q_proj", "k_proj", "v_proj", "out_proj"};
  for (int a = 0; a < 1 + cross; a++) {
    const char *attn = a ? "encoder_attn" : "self_attn";
    for (int j = 0; j < 4; j++)
      synth_linear (c, synth_name (c, "%s.%s.%s", l, attn, proj[j]), D, D);
    synth_layer_norm (c, synth_name (c, "%s.%s_layer_norm", l, attn), D);
  }
  synth_linear (c, synth_name (c, "%s.fc1", l), ffn, D);
  synth_linear (c, synth_name (c, "%s.fc2", l), D, ffn);
  synth_layer_norm (c, synth_name (c, "%s.final_layer_norm", l), D);
}

void
synth_florence2_tensors (SynthCheckpoint *c, const SynthFlorence2 *p)
{
  const char *vt = "model.vision_tower", *mp = "model.multi_modal_projector", *lm = "model.language_model";
  for (int s = 0; s < p->n_stages; s++) {
    int C = p->embed_dim[s], in = s ? p->embed_dim[s - 1] : 3, k = p->patch[s];
    synth_tensor (c, synth_name (c, "%s.convs.%d.conv.weight", vt, s), SYNTH_WEIGHT, 4, C, in, k, k);
    synth_tensor (c, synth_name (c, "%s.convs.%d.conv.bias", vt, s), SYNTH_WEIGHT, 1, C, 0, 0, 0);
    synth_layer_norm (c, synth_name (c, "%s.convs.%d.norm", vt, s), s ? in : C);   /* pre-norm after stage 0 */
    for (int b = 0; b < p->depths[s]; b++)
      for (int h = 0; h < 2; h++) {
        const char *blk = synth_name (c, "%s.blocks.%d.%d.%s_block", vt, s, b, h ? "channel" : "spatial");
        const char *attn = h ? "channel_attn" : "window_attn";
        dwconv (c, synth_name (c, "%s.conv1", blk), C);
        dwconv (c, synth_name (c, "%s.conv2", blk), C);
        synth_layer_norm (c, synth_name (c, "%s.norm1", blk), C);
        synth_layer_norm (c, synth_name (c, "%s.norm2", blk), C);
        synth_linear (c, synth_name (c, "%s.%s.qkv", blk, attn), 3 * C, C);
        synth_linear (c, synth_name (c, "%s.%s.proj", blk, attn), C, C);
        synth_linear (c, synth_name (c, "%s.ffn.fc1", blk), 4 * C, C);
        synth_linear (c, synth_name (c, "%s.ffn.fc2", blk), C, 4 * C);
      }
  }
  int Dv = p->embed_dim[p->n_stages - 1], D = p->d_model;
  synth_tensor (c, synth_name (c, "%s.image_projection.weight", mp), SYNTH_WEIGHT, 2, D, Dv, 0, 0);
  synth_layer_norm (c, synth_name (c, "%s.image_proj_norm", mp), D);
  synth_tensor (c, synth_name (c, "%s.image_position_embed.row_embeddings.weight", mp), SYNTH_WEIGHT, 2,
                p->max_image_positions, Dv / 2, 0, 0);
  synth_tensor (c, synth_name (c, "%s.image_position_embed.column_embeddings.weight", mp), SYNTH_WEIGHT, 2,
                p->max_image_positions, Dv - Dv / 2, 0, 0);
  synth_tensor (c, synth_name (c, "%s.shared.weight", lm), SYNTH_WEIGHT, 2, p->vocab, D, 0, 0);
  synth_tensor (c, "lm_head.weight", SYNTH_WEIGHT, 2, p->vocab, D, 0, 0);
  for (int side = 0; side < 2; side++) {
    const char *name = side ? "decoder" : "encoder";
    synth_tensor (c, synth_name (c, "%s.%s.embed_positions.weight", lm, name), SYNTH_WEIGHT, 2, p->max_positions + 2,
                  D, 0, 0);
    synth_layer_norm (c, synth_name (c, "%s.%s.layernorm_embedding", lm, name), D);
    for (int i = 0; i < (side ? p->decoder_layers : p->encoder_layers); i++)
      bart_layer (c, synth_name (c, "%s.%s.layers.%d", lm, name, i), D, p->ffn, side);
  }
}

/* GPT-2's bytes_to_unicode: printable bytes stand for themselves, the
 * others for 256, 257, ... in byte order. */
static gunichar
byte_symbol (int b)
{
  int n = 0;
  for (int ch = 0; ch < b; ch++)
    n += !((ch >= 33 && ch <= 126) || (ch >= 161 && ch <= 172) || ch >= 174);
  gboolean printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
  return printable ? (gunichar) b : (gunichar) (256 + n);
}

char *
synth_bytelevel_tokenizer (int vocab, const int *special_ids, const char *const *special_tokens, int n_special,
                           int first_byte)
{
  GString *j = g_string_new ("{\"version\": \"1.0\", \"truncation\": null, \"padding\": null, \"added_tokens\": [");
  for (int i = 0; i < n_special; i++)
    g_string_append_printf (j, "%s{\"id\": %d, \"content\": \"%s\", \"single_word\": false, \"lstrip\": false, "
                            "\"rstrip\": false, \"normalized\": false, \"special\": true}", i ? ", " : "",
                            special_ids[i], special_tokens[i]);
  g_string_append (j, "], \"normalizer\": null, \"post_processor\": null,"
                      " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true,"
                      " \"use_regex\": true}, \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true,"
                      " \"trim_offsets\": true, \"use_regex\": true}, \"model\": {\"type\": \"BPE\", \"dropout\": null,"
                      " \"unk_token\": null, \"continuing_subword_prefix\": null, \"end_of_word_suffix\": null,"
                      " \"fuse_unk\": false, \"byte_fallback\": false, \"vocab\": {");
  for (int id = 0; id < vocab; id++) {
    const char *special = NULL;
    for (int i = 0; i < n_special; i++)
      special = special_ids[i] == id ? special_tokens[i] : special;
    if (id) g_string_append (j, ", ");
    if (special) {
      g_string_append_printf (j, "\"%s\": %d", special, id);
    } else if (id >= first_byte && id < first_byte + 256) {
      gunichar u = byte_symbol (id - first_byte);
      g_string_append_c (j, '"');
      if (u == '"' || u == '\\')
        g_string_append_c (j, '\\');
      g_string_append_unichar (j, u);
      g_string_append_printf (j, "\": %d", id);
    } else {
      g_string_append_printf (j, "\"w%d\": %d", id, id);
    }
  }
  g_string_append (j, "}, \"merges\": []}}\n");
  return g_string_free (j, FALSE);
}

int64_t
synth_numel (const SynthTensor *t)
{
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++)
    n *= t->shape[i];
  return n;
}

/* The safetensors header: {"name": {"dtype", "shape", "data_offsets"}, ...},
 * padded with spaces so the data starts 8-byte aligned. */
static GString *
safetensors_header (const SynthCheckpoint *c, guint64 *data_bytes)
{
  GString *h = g_string_new ("{\"__metadata__\":{\"format\":\"pt\"}");
  guint64 off = 0;
  for (guint i = 0; i < c->specs->len; i++) {
    const SynthTensor *t = &g_array_index (c->specs, SynthTensor, i);
    guint64 bytes = (guint64) synth_numel (t) * (c->bf16 ? 2 : 4);
    g_string_append_printf (h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name, c->bf16 ? "BF16" : "F32");
    for (int d = 0; d < t->ndim; d++)
      g_string_append_printf (h, "%s%" G_GINT64_FORMAT, d ? "," : "", t->shape[d]);
    g_string_append_printf (h, "],\"data_offsets\":[%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT "]}", off, off + bytes);
    off += bytes;
  }
  g_string_append_c (h, '}');
  while ((8 + h->len) % 8)
    g_string_append_c (h, ' ');
  *data_bytes = off;
  return h;
}

/* Streams one tensor's values in chunks, so writing 700 MB needs 4 MB. */
static gboolean
write_tensor (FILE *f, const SynthTensor *t, gboolean bf16, float *buf, size_t cap)
{
  const float amp = 0.02f * sqrtf (3.0f);   /* uniform(-a, a) has std a/√3 */
  int64_t n = synth_numel (t);
  for (int64_t done = 0; done < n;) {
    size_t k = (size_t) MIN ((int64_t) cap, n - done);
    for (size_t i = 0; i < k; i++)
      buf[i] = (t->init == SYNTH_NORM_GAIN ? 1.0f : 0.0f) + amp * synth_uniform ();
    if (t->pinned >= done && t->pinned < done + (int64_t) k)
      buf[t->pinned - done] = t->pinned_value;
    if (bf16) {   /* in place, forwards: halfword i lies within floats 0..i, already read */
      guint16 *h = (guint16 *) buf;
      for (size_t i = 0; i < k; i++) {
        guint32 u;
        memcpy (&u, &buf[i], 4);
        h[i] = (guint16) ((u + 0x7fff + ((u >> 16) & 1)) >> 16);
      }
    }
    if (fwrite (buf, bf16 ? 2 : sizeof (float), k, f) != k)
      return FALSE;
    done += k;
  }
  return TRUE;
}

gboolean
synth_write (const char *path, const SynthCheckpoint *c, GError **error)
{
  guint64 data_bytes;
  g_autoptr (GString) header = safetensors_header (c, &data_bytes);
  FILE *f = fopen (path, "wb");
  if (!f) {
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno), "%s: %s", path, g_strerror (errno));
    return FALSE;
  }
  guint8 len[8];
  for (int i = 0; i < 8; i++)   /* little-endian u64 */
    len[i] = (guint8) ((guint64) header->len >> (8 * i));
  size_t cap = 1 << 20;
  float *buf = g_new (float, cap);
  gboolean ok = fwrite (len, 1, 8, f) == 8 && fwrite (header->str, 1, header->len, f) == header->len;
  for (guint i = 0; ok && i < c->specs->len; i++)
    ok = write_tensor (f, &g_array_index (c->specs, SynthTensor, i), c->bf16, buf, cap);
  g_free (buf);
  if (fclose (f) != 0)
    ok = FALSE;
  if (!ok)
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_IO, "%s: write failed (%" G_GUINT64_FORMAT " MiB needed)",
                 path, data_bytes >> 20);
  return ok;
}

void
synth_init (SynthCheckpoint *c, gboolean bf16)
{
  c->specs = g_array_new (FALSE, FALSE, sizeof (SynthTensor));
  c->names = g_string_chunk_new (4096);
  c->bf16 = bf16;
}

void
synth_clear (SynthCheckpoint *c)
{
  g_array_free (c->specs, TRUE);
  g_string_chunk_free (c->names);
  memset (c, 0, sizeof *c);
}

/* ---------------------------------------------------------------- a WordPiece tokenizer */

/* Token `id` of the vocabulary synth_wordpiece_json describes. */
static char *
vocab_token (int id, gboolean unused_slots)
{
  static const char cons[] = "bcdfghjklmnprstvwxyz", vowels[] = "aeiou";
  const int n_chars = '~' - '!' + 1 - 26;   /* printable, no upper case: the normalizer lowercases */
  if (id == SYNTH_PAD_ID) return g_strdup ("[PAD]");
  if (id == SYNTH_UNK_ID) return g_strdup ("[UNK]");
  if (id == SYNTH_CLS_ID) return g_strdup ("[CLS]");
  if (id == SYNTH_SEP_ID) return g_strdup ("[SEP]");
  if (id == SYNTH_MASK_ID) return g_strdup ("[MASK]");
  if (id < SYNTH_UNK_ID && unused_slots) return g_strdup_printf ("[unused%d]", id - 1);
  int k = id < SYNTH_UNK_ID ? id - 1 : id - SYNTH_MASK_ID - 1 + (unused_slots ? 0 : SYNTH_UNK_ID - 1);
  if (k < 2 * n_chars) {
    int c = '!' + k % n_chars;
    c += c >= 'A' ? 26 : 0;
    return g_strdup_printf ("%s%c", k >= n_chars ? "##" : "", c);
  }
  k -= 2 * n_chars;
  GString *w = g_string_new (k % 8 == 7 ? "##" : "");
  for (int n = k + 1; n > 0; n = (n - 1) / 100) {
    int s = (n - 1) % 100;
    g_string_append_c (w, cons[s / 5]);
    g_string_append_c (w, vowels[s % 5]);
  }
  return g_string_free (w, FALSE);
}

char *
synth_wordpiece_json (int vocab_size, gboolean unused_slots)
{
  GString *vocab = g_string_new (NULL);
  for (int id = 0; id < vocab_size; id++) {
    g_autofree char *tok = vocab_token (id, unused_slots);
    g_autofree char *esc = g_strescape (tok, NULL);   /* printable ASCII: C and JSON escapes agree */
    g_string_append_printf (vocab, "%s\n      \"%s\": %d", id ? "," : "", esc, id);
  }
  g_autofree char *added = g_strdup_printf (
    "    {\"id\": %d, \"content\": \"[PAD]\", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true},\n"
    "    {\"id\": %d, \"content\": \"[UNK]\", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true},\n"
    "    {\"id\": %d, \"content\": \"[CLS]\", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true},\n"
    "    {\"id\": %d, \"content\": \"[SEP]\", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true},\n"
    "    {\"id\": %d, \"content\": \"[MASK]\", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true}\n",
    SYNTH_PAD_ID, SYNTH_UNK_ID, SYNTH_CLS_ID, SYNTH_SEP_ID, SYNTH_MASK_ID);
  char *json = g_strdup_printf (
    "{\n"
    "  \"version\": \"1.0\",\n"
    "  \"truncation\": null,\n"
    "  \"padding\": null,\n"
    "  \"added_tokens\": [\n%s  ],\n"
    "  \"normalizer\": {\"type\": \"BertNormalizer\", \"clean_text\": true, \"handle_chinese_chars\": true,\n"
    "                 \"strip_accents\": null, \"lowercase\": true},\n"
    "  \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"},\n"
    "  \"post_processor\": {\n"
    "    \"type\": \"TemplateProcessing\",\n"
    "    \"single\": [{\"SpecialToken\": {\"id\": \"[CLS]\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}},\n"
    "               {\"SpecialToken\": {\"id\": \"[SEP]\", \"type_id\": 0}}],\n"
    "    \"pair\": [{\"SpecialToken\": {\"id\": \"[CLS]\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}},\n"
    "             {\"SpecialToken\": {\"id\": \"[SEP]\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"B\", \"type_id\": 1}},\n"
    "             {\"SpecialToken\": {\"id\": \"[SEP]\", \"type_id\": 1}}],\n"
    "    \"special_tokens\": {\n"
    "      \"[CLS]\": {\"id\": \"[CLS]\", \"ids\": [%d], \"tokens\": [\"[CLS]\"]},\n"
    "      \"[SEP]\": {\"id\": \"[SEP]\", \"ids\": [%d], \"tokens\": [\"[SEP]\"]}\n"
    "    }\n"
    "  },\n"
    "  \"decoder\": {\"type\": \"WordPiece\", \"prefix\": \"##\", \"cleanup\": true},\n"
    "  \"model\": {\n"
    "    \"type\": \"WordPiece\",\n"
    "    \"unk_token\": \"[UNK]\",\n"
    "    \"continuing_subword_prefix\": \"##\",\n"
    "    \"max_input_chars_per_word\": 100,\n"
    "    \"vocab\": {%s\n    }\n"
    "  }\n"
    "}\n",
    added, SYNTH_CLS_ID, SYNTH_SEP_ID, vocab->str);
  g_string_free (vocab, TRUE);
  return json;
}

