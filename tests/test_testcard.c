/* test_testcard.c — the embedded test-card model end to end (on each of
 * vt_backends: oneDNN and BLAS in f32, oneDNN in bf16), from raw
 * videotestsrc frames to caption strings, against the captions transformers
 * produced (../shared/models/testcard-git/reference_captions.json).
 * Frames are rendered exactly as ../shared/models/README.md says: 320x240
 * RGB at 30 fps, frames 0, 8, 16 and 24 of the stream. */
#include "testutil.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#define W 320
#define H 240
#define N_RENDER 32
static const int picked[] = {0, 8, 16, 24};

typedef struct {
  char *props, *greedy, *beam3;
} Clip;

static GPtrArray *clips;
static VlmModel *models[G_N_ELEMENTS (vt_backends)];   /* [vt_backends] */

/* Renders N_RENDER frames of videotestsrc with `props` into a new buffer. */
static guint8 *
render (const char *props)
{
  g_autofree char *dir = g_dir_make_tmp ("vlm-card-XXXXXX", NULL);
  g_autofree char *file = g_build_filename (dir, "frames.rgb", NULL);
  g_autofree char *cmd = g_strdup_printf (
      "gst-launch-1.0 -q videotestsrc num-buffers=%d %s ! video/x-raw,width=%d,height=%d,framerate=30/1 "
      "! videoconvert ! video/x-raw,format=RGB ! filesink location=%s", N_RENDER, props, W, H, file);
  g_auto (GStrv) argv = NULL;
  GError *error = NULL;
  int status = 0;
  g_assert_true (g_shell_parse_argv (cmd, NULL, &argv, &error));
  g_assert_true (g_spawn_sync (NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, &status, &error));
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, &error));
  gsize len = 0;
  char *data = NULL;
  g_assert_true (g_file_get_contents (file, &data, &len, &error));
  g_assert_cmpuint (len, ==, (gsize) N_RENDER * W * H * 3);
  g_unlink (file);
  g_rmdir (dir);
  return (guint8 *) data;
}

static char *
caption (VlmModel *m, const guint8 *video, int num_beams)
{
  VlmFrame frames[G_N_ELEMENTS (picked)];
  for (guint i = 0; i < G_N_ELEMENTS (picked); i++)
    frames[i] = (VlmFrame) {.format = VLM_PIXEL_RGB, .width = W, .height = H,
                            .planes = {video + (size_t) picked[i] * W * H * 3}, .strides = {W * 3}};
  GError *error = NULL;
  VlmSession *s = vlm_session_new (m, &error);
  g_assert_no_error (error);
  VlmGenParams gp = vlm_gen_default_params (m);
  gp.num_beams = num_beams;
  gp.max_new_tokens = 16;   /* as the reference captions were made */
  VlmCaption cap;
  g_assert_true (vlm_session_caption (s, frames, G_N_ELEMENTS (picked), NULL, &gp, NULL, NULL, &cap, &error));
  g_assert_no_error (error);
  char *text = g_steal_pointer (&cap.text);
  vlm_caption_clear (&cap);
  vlm_session_free (s);
  return text;
}

static void
test_clip (gconstpointer data)
{
  const Clip *c = data;
  g_autofree guint8 *video = render (c->props);
  for (guint b = 0; b < G_N_ELEMENTS (vt_backends); b++) {
    g_autofree char *greedy = caption (models[b], video, 1);
    g_autofree char *beam3 = caption (models[b], video, 3);
    g_test_message ("%s [%s]: greedy \"%s\", beam-3 \"%s\"", c->props, vt_backends[b].name, greedy, beam3);
    g_assert_cmpstr (greedy, ==, c->greedy);
    g_assert_cmpstr (beam3, ==, c->beam3);
  }
}

/* int8 is not expected to reproduce every caption: the share that it does,
 * and how many words it keeps, is its measured accuracy cost. The floor
 * asserted is what the measurement showed with a margin, so a broken int8
 * path (noise captions) fails. */
static void
test_int8_agreement (void)
{
  g_autofree char *dir = vt_project_path ("models/testcard-git");
  VlmModel *m = vt_load_model (dir, &vt_int8);
  int n = 0, same = 0, words = 0, words_same = 0;
  for (guint i = 0; i < clips->len; i++) {
    Clip *c = clips->pdata[i];
    if (strstr (c->props, "pattern=snow"))
      continue;
    g_autofree guint8 *video = render (c->props);
    g_autofree char *greedy = caption (m, video, 1);
    g_auto (GStrv) got = g_strsplit (greedy, " ", -1), want = g_strsplit (c->greedy, " ", -1);
    for (int w = 0; want[w]; w++) {
      words++;
      words_same += w < (int) g_strv_length (got) && strcmp (got[w], want[w]) == 0;
    }
    n++;
    same += strcmp (greedy, c->greedy) == 0;
    g_test_message ("%s [int8]: \"%s\" (reference \"%s\")", c->props, greedy, c->greedy);
  }
  g_test_message ("int8: %d of %d greedy captions identical, %d of %d words in place", same, n, words_same, words);
  g_assert_cmpint (n, ==, 27);
  g_assert_cmpint (same * 4, >=, n * 3);   /* measured: see docs/performance.md */
  vlm_model_unref (m);
}

static void
load_references (void)
{
  g_autofree char *path = vt_shared_path ("models/testcard-git/reference_captions.json");
  g_autoptr (JsonParser) parser = json_parser_new ();
  GError *error = NULL;
  if (!json_parser_load_from_file (parser, path, &error))
    g_error ("%s: %s", path, error->message);
  JsonArray *list = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)), "clips");
  clips = g_ptr_array_new ();
  for (guint i = 0; i < json_array_get_length (list); i++) {
    JsonObject *o = json_array_get_object_element (list, i);
    Clip *c = g_new0 (Clip, 1);
    c->props = g_strdup (json_object_get_string_member (o, "props"));
    c->greedy = g_strdup (json_object_get_string_member (o, "greedy"));
    c->beam3 = g_strdup (json_object_get_string_member (o, "beam3"));
    g_ptr_array_add (clips, c);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  load_references ();
  g_autofree char *dir = vt_project_path ("models/testcard-git");
  for (guint b = 0; b < G_N_ELEMENTS (vt_backends); b++)
    models[b] = vt_load_model (dir, &vt_backends[b]);
  for (guint i = 0; i < clips->len; i++) {
    Clip *c = clips->pdata[i];
    /* snow is random noise: its pixels differ on every render, so the
     * reference frames cannot be reproduced (models/README.md). */
    if (strstr (c->props, "pattern=snow"))
      continue;
    g_autofree char *name = g_strdup_printf ("/testcard/%s", c->props);
    g_strdelimit (name, " =", '_');
    g_test_add_data_func (name, c, test_clip);
  }
  g_test_add_func ("/testcard/int8-agreement", test_int8_agreement);
  int rc = g_test_run ();
  for (guint b = 0; b < G_N_ELEMENTS (vt_backends); b++)
    vlm_model_unref (models[b]);
  return rc;
}
