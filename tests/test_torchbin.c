/* test_torchbin.c — pytorch_model.bin (torch.save's zip + pickle): the
 * fixture's .bin gives exactly the tensors of its model.safetensors; a
 * pickle naming any other global, an unknown opcode, a compressed entry and
 * every truncation are refused with an error, never a crash. */
#include "testutil.h"

#include <glib/gstdio.h>

#define FIXTURE "fixtures/languagebind-video-tiny"

static void
put (GByteArray *b, uint64_t v, int n)
{
  for (int i = 0; i < n; i++) {
    uint8_t c = (uint8_t) (v >> (8 * i));
    g_byte_array_append (b, &c, 1);
  }
}

/* A zip of stored entries (CRCs left 0: the reader does not check them);
 * `method` is written into every header. */
static GBytes *
make_zip (const char *const *names, GBytes *const *data, int n, int method)
{
  GByteArray *z = g_byte_array_new (), *dir = g_byte_array_new ();
  for (int i = 0; i < n; i++) {
    size_t len = g_bytes_get_size (data[i]), nlen = strlen (names[i]);
    uint64_t local = z->len;
    put (z, 0x04034b50, 4), put (z, 20, 2), put (z, 0, 2), put (z, method, 2), put (z, 0, 4), put (z, 0, 4);
    put (z, len, 4), put (z, len, 4), put (z, nlen, 2), put (z, 0, 2);
    g_byte_array_append (z, (const guint8 *) names[i], nlen);
    g_byte_array_append (z, g_bytes_get_data (data[i], NULL), len);
    put (dir, 0x02014b50, 4), put (dir, 20, 2), put (dir, 20, 2), put (dir, 0, 2), put (dir, method, 2);
    put (dir, 0, 4), put (dir, 0, 4), put (dir, len, 4), put (dir, len, 4), put (dir, nlen, 2);
    put (dir, 0, 2), put (dir, 0, 2), put (dir, 0, 2), put (dir, 0, 2), put (dir, 0, 4), put (dir, local, 4);
    g_byte_array_append (dir, (const guint8 *) names[i], nlen);
  }
  uint64_t at = z->len;
  g_byte_array_append (z, dir->data, dir->len);
  put (z, 0x06054b50, 4), put (z, 0, 2), put (z, 0, 2), put (z, n, 2), put (z, n, 2);
  put (z, dir->len, 4), put (z, at, 4), put (z, 0, 2);
  g_byte_array_free (dir, TRUE);
  return g_byte_array_free_to_bytes (z);
}

/* Opens `bytes` written to a temporary .bin and expects an error holding `needle`. */
static void
expect_refused (const void *bytes, size_t len, const char *needle)
{
  GError *error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("torchbin-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *path = g_build_filename (dir, "pytorch_model.bin", NULL);
  g_assert_true (g_file_set_contents (path, bytes, (gssize) len, &error));
  VlmSafetensors *st = vlm_safetensors_open (dir, &error);
  g_assert_null (st);
  g_assert_error (error, VLM_ERROR, VLM_ERROR_BAD_HEADER);
  if (needle) {
    g_test_message ("refused: %s", error->message);
    g_assert_nonnull (strstr (error->message, needle));
  }
  g_clear_error (&error);
  g_unlink (path);
  g_rmdir (dir);
}

/* A one-entry torch archive whose data.pkl is `pickle`. */
static void
expect_pickle_refused (const char *pickle, size_t len, const char *needle, int method)
{
  const char *names[] = {"archive/data.pkl"};
  GBytes *data[] = {g_bytes_new_static (pickle, len)};
  g_autoptr (GBytes) zip = make_zip (names, data, 1, method);
  expect_refused (g_bytes_get_data (zip, NULL), g_bytes_get_size (zip), needle);
  g_bytes_unref (data[0]);
}

static void
test_same_as_safetensors (void)
{
  g_autofree char *bin = vt_shared_path (FIXTURE "/pytorch_model.bin");
  g_autofree char *sft = vt_shared_path (FIXTURE "/model.safetensors");
  GError *error = NULL;
  VlmSafetensors *a = vlm_safetensors_open (bin, &error);
  g_assert_no_error (error);
  VlmSafetensors *b = vlm_safetensors_open (sft, &error);
  g_assert_no_error (error);
  g_assert_cmpint (vlm_safetensors_count (a), ==, vlm_safetensors_count (b));
  for (int i = 0; i < vlm_safetensors_count (b); i++) {
    const char *name = vlm_safetensors_name (b, i);
    const VlmTensor *x = vlm_safetensors_find (a, name), *y = vlm_safetensors_find (b, name);
    g_assert_nonnull (x);
    g_assert_cmpint (x->dtype, ==, y->dtype);
    g_assert_cmpmem (x->shape, x->ndim * sizeof (int64_t), y->shape, y->ndim * sizeof (int64_t));
    g_assert_cmpmem (x->data, vlm_tensor_numel (x) * vlm_dtype_size (x->dtype), y->data,
                     vlm_tensor_numel (y) * vlm_dtype_size (y->dtype));
  }
  g_test_message ("%d tensors identical", vlm_safetensors_count (a));
  vlm_safetensors_free (a);
  vlm_safetensors_free (b);
}

/* What pickle's `__reduce__` exploits look like: GLOBAL os.system, REDUCE. */
static void
test_foreign_global (void)
{
  static const char p[] = "\x80\x02" "cos\nsystem\n" "q\x00X\x02\x00\x00\x00ls" "\x85R.";
  expect_pickle_refused (p, sizeof p - 1, "'os.system'", 0);
  static const char q[] = "\x80\x02" "cbuiltins\neval\n" "X\x01\x00\x00\x001" "\x85R.";
  expect_pickle_refused (q, sizeof q - 1, "'builtins.eval'", 0);
}

static void
test_foreign_opcode (void)
{
  static const char p[] = "\x80\x02" "(ios\nsystem\n" ".";   /* INST */
  expect_pickle_refused (p, sizeof p - 1, "opcode 0x69", 0);
}

static void
test_compressed (void)
{
  static const char p[] = "\x80\x02}.";
  expect_pickle_refused (p, sizeof p - 1, "compressed", 8);
}

/* Every prefix of a real archive (each cut of the zip's end, a sample of
 * the rest) is refused. */
static void
test_truncated (void)
{
  g_autofree char *bin = vt_shared_path (FIXTURE "/pytorch_model.bin");
  g_autofree char *bytes = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (bin, &bytes, &len, NULL));
  expect_refused (bytes, len / 2, "truncated");
  for (gsize cut = 1; cut < len; cut += cut < 128 ? 1 : 4099)
    expect_refused (bytes, len - cut, NULL);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/torchbin/same-as-safetensors", test_same_as_safetensors);
  g_test_add_func ("/torchbin/refuses/foreign-global", test_foreign_global);
  g_test_add_func ("/torchbin/refuses/foreign-opcode", test_foreign_opcode);
  g_test_add_func ("/torchbin/refuses/compressed", test_compressed);
  g_test_add_func ("/torchbin/refuses/truncated", test_truncated);
  return g_test_run ();
}
