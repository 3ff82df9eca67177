/* test_safetensors.c — the weight reader: real fixtures, shards, and every
 * way a header can lie. */
#include "testutil.h"

#include <glib/gstdio.h>

/* Writes a safetensors file whose header text is given verbatim, followed by
 * `data_len` bytes of zeros: the tool to make lying files. */
static char *
write_raw (const char *dir, const char *name, const char *header, gsize data_len)
{
  char *path = g_build_filename (dir, name, NULL);
  gsize hlen = strlen (header);
  GByteArray *buf = g_byte_array_new ();
  guint64 le = GUINT64_TO_LE ((guint64) hlen);
  g_byte_array_append (buf, (guint8 *) &le, 8);
  g_byte_array_append (buf, (const guint8 *) header, (guint) hlen);
  for (gsize i = 0; i < data_len; i++)
    g_byte_array_append (buf, (const guint8 *) "\0", 1);
  g_assert_true (g_file_set_contents (path, (char *) buf->data, buf->len, NULL));
  g_byte_array_free (buf, TRUE);
  return path;
}

static char *
make_tmpdir (void)
{
  char *dir = g_dir_make_tmp ("vlm-st-XXXXXX", NULL);
  g_assert_nonnull (dir);
  return dir;
}

static void
rm_tree (const char *dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  const char *n;
  while (d && (n = g_dir_read_name (d))) {
    g_autofree char *p = g_build_filename (dir, n, NULL);
    g_unlink (p);
  }
  if (d)
    g_dir_close (d);
  g_rmdir (dir);
}

/* Opens `path`, expects failure with `code` and a message containing `needle`. */
static void
expect_error (const char *path, int code, const char *needle)
{
  GError *error = NULL;
  VlmSafetensors *st = vlm_safetensors_open (path, &error);
  g_assert_null (st);
  g_assert_error (error, VLM_ERROR, code);
  g_test_message ("error: %s", error->message);
  g_assert_nonnull (strstr (error->message, needle));
  g_error_free (error);
}

static void
test_fixture_folder (void)
{
  g_autofree char *dir = vt_shared_path ("fixtures/git-video-tiny");
  GError *error = NULL;
  VlmSafetensors *st = vlm_safetensors_open (dir, &error);
  g_assert_no_error (error);
  g_assert_cmpint (vlm_safetensors_count (st), >, 10);
  int64_t shape[] = {76, 32};   /* vocab_size × hidden_size from the fixture's config.json */
  const VlmTensor *t = vlm_safetensors_get (st, "git.embeddings.word_embeddings.weight", 2, shape, &error);
  g_assert_no_error (error);
  g_assert_cmpint (t->dtype, ==, VLM_DTYPE_F32);
  /* names come sorted */
  for (int i = 1; i < vlm_safetensors_count (st); i++)
    g_assert_cmpint (strcmp (vlm_safetensors_name (st, i - 1), vlm_safetensors_name (st, i)), <, 0);
  vlm_safetensors_free (st);
}

static void
test_bf16_fixture (void)
{
  g_autofree char *dir = vt_shared_path ("fixtures/video-llava-tiny");
  GError *error = NULL;
  VlmSafetensors *st = vlm_safetensors_open (dir, &error);
  g_assert_no_error (error);
  int n_bf16 = 0;
  for (int i = 0; i < vlm_safetensors_count (st); i++)
    n_bf16 += vlm_safetensors_find (st, vlm_safetensors_name (st, i))->dtype == VLM_DTYPE_BF16;
  g_test_message ("%d of %d tensors are bf16", n_bf16, vlm_safetensors_count (st));
  g_assert_cmpint (n_bf16, >, 0);
  vlm_safetensors_free (st);
}

static void
test_wrong_shape_named (void)
{
  g_autofree char *dir = vt_shared_path ("fixtures/git-video-tiny");
  GError *error = NULL;
  VlmSafetensors *st = vlm_safetensors_open (dir, &error);
  g_assert_no_error (error);
  int64_t shape[] = {77, 32};
  g_assert_null (vlm_safetensors_get (st, "git.embeddings.word_embeddings.weight", 2, shape, &error));
  g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_SHAPE);
  g_assert_nonnull (strstr (error->message, "word_embeddings"));
  g_assert_nonnull (strstr (error->message, "[76, 32]"));
  g_clear_error (&error);
  g_assert_null (vlm_safetensors_get (st, "no.such.tensor", 2, shape, &error));
  g_assert_error (error, VLM_ERROR, VLM_ERROR_NOT_FOUND);
  g_error_free (error);
  vlm_safetensors_free (st);
}

static void
test_sharded_index (void)
{
  g_autofree char *dir = make_tmpdir ();
  g_free (write_raw (dir, "model-00001-of-00002.safetensors",
                     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16));
  g_free (write_raw (dir, "model-00002-of-00002.safetensors",
                     "{\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]},"
                     "\"__metadata__\":{\"format\":\"pt\"}}", 6));
  g_autofree char *index = g_build_filename (dir, "model.safetensors.index.json", NULL);
  g_assert_true (g_file_set_contents (index,
      "{\"metadata\":{},\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
      "\"b\":\"model-00002-of-00002.safetensors\"}}", -1, NULL));
  GError *error = NULL;
  VlmSafetensors *st = vlm_safetensors_open (dir, &error);
  g_assert_no_error (error);
  g_assert_cmpint (vlm_safetensors_count (st), ==, 2);
  g_assert_cmpint (vlm_safetensors_find (st, "b")->dtype, ==, VLM_DTYPE_BF16);
  vlm_safetensors_free (st);

  /* an index that promises a tensor its shard does not hold */
  g_assert_true (g_file_set_contents (index,
      "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
      "\"c\":\"model-00001-of-00002.safetensors\"}}", -1, NULL));
  expect_error (dir, VLM_ERROR_BAD_HEADER, "'c'");
  /* a shard name that escapes the folder */
  g_assert_true (g_file_set_contents (index, "{\"weight_map\":{\"a\":\"../x.safetensors\"}}", -1, NULL));
  expect_error (dir, VLM_ERROR_BAD_HEADER, "not a file name");
  /* no weight_map object: an error, not a Json-CRITICAL (fatal here) */
  static const char *const no_map[] = {"{}", "{\"weight_map\":5}", "{\"weight_map\":[]}"};
  for (guint i = 0; i < G_N_ELEMENTS (no_map); i++) {
    g_assert_true (g_file_set_contents (index, no_map[i], -1, NULL));
    expect_error (dir, VLM_ERROR_BAD_HEADER, "no \"weight_map\" object");
  }
  g_assert_true (g_file_set_contents (index, "[]", -1, NULL));
  expect_error (dir, VLM_ERROR_BAD_CONFIG, "not a JSON object");
  g_assert_true (g_file_set_contents (index, "{\"weight_map\":{\"a\":5}}", -1, NULL));
  expect_error (dir, VLM_ERROR_BAD_HEADER, "not a file name");
  rm_tree (dir);
}

static void
test_missing_file (void)
{
  g_autofree char *dir = make_tmpdir ();
  expect_error (dir, VLM_ERROR_NOT_FOUND, "model.safetensors");
  rm_tree (dir);
}

/* Each case: a header that lies in one way, and the phrase naming the lie. */
static void
test_lying_headers (void)
{
  static const struct { const char *header; gsize data; const char *needle; } cases[] = {
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "outside"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,12]}}", 16, "shape and dtype need"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,4]}}", 16, "outside"},
    {"{\"w\":{\"dtype\":\"Q4\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16, "dtype"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", 16, "dimension"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4]}}", 16, "data_offsets"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"v\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 16, "overlap"},
    {"{\"w\":[1,2]}", 16, "not an object"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}", 16, "JSON"},
    {"[1,2,3]", 0, "not a JSON object"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],\"data_offsets\":[0,16]}}", 16, "overflows"},
  };
  g_autofree char *dir = make_tmpdir ();
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *path = write_raw (dir, "lie.safetensors", cases[i].header, cases[i].data);
    expect_error (path, VLM_ERROR_BAD_HEADER, cases[i].needle);
  }
  rm_tree (dir);
}

static void
test_truncated_file (void)
{
  g_autofree char *dir = make_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "t.safetensors", NULL);
  g_assert_true (g_file_set_contents (path, "\x10\0\0", 3, NULL));
  expect_error (path, VLM_ERROR_BAD_HEADER, "too short");
  /* header length larger than the file */
  g_assert_true (g_file_set_contents (path, "\xff\xff\0\0\0\0\0\0{}", 10, NULL));
  expect_error (path, VLM_ERROR_BAD_HEADER, "does not fit");
  rm_tree (dir);
}

/* Valid files whose data start off their element size (the header padded
 * with 1-7 spaces): each tensor is handed out aligned, holding its values. */
static void
test_misaligned_data (void)
{
  static const char header[] =
    "{\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
    "\"h\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[8,10]},"
    "\"l\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[10,18]}}";
  const float f[2] = {1.5f, -2.0f};
  const guint16 h = 0x3fc0;   /* bf16 1.5 */
  const gint64 l = -7;
  g_autofree char *dir = make_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "odd.safetensors", NULL);
  for (int pad = 1; pad < 8; pad++) {
    g_autofree char *text = g_strdup_printf ("%s%*s", header, pad, "");
    guint64 le = GUINT64_TO_LE ((guint64) strlen (text));
    GByteArray *buf = g_byte_array_new ();
    g_byte_array_append (buf, (guint8 *) &le, 8);
    g_byte_array_append (buf, (guint8 *) text, (guint) strlen (text));
    g_byte_array_append (buf, (guint8 *) f, 8);
    g_byte_array_append (buf, (guint8 *) &h, 2);
    g_byte_array_append (buf, (guint8 *) &l, 8);
    g_assert_true (g_file_set_contents (path, (char *) buf->data, buf->len, NULL));
    g_byte_array_free (buf, TRUE);

    GError *error = NULL;
    VlmSafetensors *st = vlm_safetensors_open (path, &error);
    g_assert_no_error (error);
    const VlmTensor *tf = vlm_safetensors_find (st, "f"), *th = vlm_safetensors_find (st, "h"),
                    *tl = vlm_safetensors_find (st, "l");
    g_assert_cmpuint ((guintptr) tf->data % 4, ==, 0);
    g_assert_cmpuint ((guintptr) th->data % 2, ==, 0);
    g_assert_cmpuint ((guintptr) tl->data % 8, ==, 0);
    g_assert_cmpfloat (((const float *) tf->data)[0], ==, 1.5f);
    g_assert_cmpfloat (((const float *) tf->data)[1], ==, -2.0f);
    g_assert_cmpfloat (vlm_bf16_to_f32 (*(const guint16 *) th->data), ==, 1.5f);
    g_assert_cmpint (*(const gint64 *) tl->data, ==, -7);
    vlm_safetensors_free (st);
  }
  rm_tree (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/safetensors/fixture-folder", test_fixture_folder);
  g_test_add_func ("/safetensors/bf16-fixture", test_bf16_fixture);
  g_test_add_func ("/safetensors/wrong-shape-named", test_wrong_shape_named);
  g_test_add_func ("/safetensors/sharded-index", test_sharded_index);
  g_test_add_func ("/safetensors/missing-file", test_missing_file);
  g_test_add_func ("/safetensors/lying-headers", test_lying_headers);
  g_test_add_func ("/safetensors/truncated-file", test_truncated_file);
  g_test_add_func ("/safetensors/misaligned-data", test_misaligned_data);
  return g_test_run ();
}
