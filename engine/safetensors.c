/* safetensors.c — mmap + validate safetensors files (single or sharded).
 *
 * Format: u64 little-endian header length N, N bytes of JSON
 * {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}},
 * then the data block. Offsets are relative to the data block. We trust
 * nothing: every number is range-checked before a tensor is exposed. */
#include "safetensors.h"
#include "file.h"
#include "json.h"
#include "torchbin.h"

#include <json-glib/json-glib.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_HEADER_BYTES (256u << 20)

typedef struct {
  VlmTensor tensor;
  uint64_t begin, end;    /* byte range in the data block, for the overlap check */
} Entry;

struct VlmSafetensors {
  char *path;             /* what was opened, for messages */
  GPtrArray *maps;        /* GMappedFile*, one per shard */
  GPtrArray *copies;      /* aligned copies of misaligned tensors */
  GHashTable *entries;    /* name -> Entry* */
  char **names;           /* sorted, NULL-terminated (keys of entries) */
  int n_names;
};

/* ---------------------------------------------------------------- header */

static gboolean
parse_dtype (const char *s, VlmDType *out)
{
  static const VlmDType all[] = {VLM_DTYPE_F32, VLM_DTYPE_BF16, VLM_DTYPE_F16, VLM_DTYPE_I64,
                                 VLM_DTYPE_I32, VLM_DTYPE_U8,   VLM_DTYPE_I8,  VLM_DTYPE_BOOL};
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    if (g_strcmp0 (s, vlm_dtype_name (all[i])) == 0) {
      *out = all[i];
      return TRUE;
    }
  return FALSE;
}

/* Reads a JSON integer member >= 0 that fits in int64 (json-glib keeps ints as gint64). */
static gboolean
json_uint (JsonNode *n, uint64_t *out)
{
  if (!n || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64)
    return FALSE;
  gint64 v = json_node_get_int (n);
  if (v < 0)
    return FALSE;
  *out = (uint64_t) v;
  return TRUE;
}

#define BAD(...) (g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_HEADER, __VA_ARGS__), FALSE)

/* Validates one header entry and fills `e` (data pointer relative to `data`). */
static gboolean
parse_entry (const char *file, const char *name, JsonNode *node, const uint8_t *data,
             uint64_t data_size, Entry *e, GError **error)
{
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return BAD ("%s: tensor '%s': header entry is not an object", file, name);
  JsonObject *o = json_node_get_object (node);
  JsonNode *dt = json_object_get_member (o, "dtype"), *sh = json_object_get_member (o, "shape"),
           *off = json_object_get_member (o, "data_offsets");
  if (!dt || json_node_get_value_type (dt) != G_TYPE_STRING ||
      !parse_dtype (json_node_get_string (dt), &e->tensor.dtype))
    return BAD ("%s: tensor '%s': missing or unsupported dtype '%s'", file, name,
                dt && json_node_get_value_type (dt) == G_TYPE_STRING ? json_node_get_string (dt) : "?");
  if (!sh || !JSON_NODE_HOLDS_ARRAY (sh) || json_array_get_length (json_node_get_array (sh)) > VLM_MAX_DIMS)
    return BAD ("%s: tensor '%s': missing shape or more than %d dimensions", file, name, VLM_MAX_DIMS);
  JsonArray *sa = json_node_get_array (sh);
  e->tensor.ndim = (int) json_array_get_length (sa);
  uint64_t bytes = vlm_dtype_size (e->tensor.dtype);
  for (int i = 0; i < e->tensor.ndim; i++) {
    uint64_t d;
    if (!json_uint (json_array_get_element (sa, (guint) i), &d) || d > (1ull << 40))
      return BAD ("%s: tensor '%s': bad dimension %d in shape", file, name, i);
    e->tensor.shape[i] = (int64_t) d;
    if (d && bytes > UINT64_MAX / d)
      return BAD ("%s: tensor '%s': shape overflows", file, name);
    bytes *= d;
  }
  if (!off || !JSON_NODE_HOLDS_ARRAY (off) || json_array_get_length (json_node_get_array (off)) != 2 ||
      !json_uint (json_array_get_element (json_node_get_array (off), 0), &e->begin) ||
      !json_uint (json_array_get_element (json_node_get_array (off), 1), &e->end))
    return BAD ("%s: tensor '%s': data_offsets must be [begin, end]", file, name);
  if (e->begin > e->end || e->end > data_size)
    return BAD ("%s: tensor '%s': data_offsets [%llu, %llu] outside the %llu-byte data block",
                file, name, (unsigned long long) e->begin, (unsigned long long) e->end,
                (unsigned long long) data_size);
  if (e->end - e->begin != bytes)
    return BAD ("%s: tensor '%s': %llu bytes in data_offsets but its shape and dtype need %llu",
                file, name, (unsigned long long) (e->end - e->begin), (unsigned long long) bytes);
  e->tensor.data = data + e->begin;
  return TRUE;
}

static int
cmp_entry_begin (gconstpointer a, gconstpointer b)
{
  const Entry *x = *(Entry *const *) a, *y = *(Entry *const *) b;
  return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* No two tensors may share bytes: a header that aliases data lies. */
static gboolean
check_overlap (const char *file, GPtrArray *list, GHashTable *names, GError **error)
{
  g_ptr_array_sort (list, cmp_entry_begin);
  for (guint i = 1; i < list->len; i++) {
    Entry *p = list->pdata[i - 1], *c = list->pdata[i];
    if (c->begin < p->end && c->end > c->begin && p->end > p->begin)
      return BAD ("%s: tensors '%s' and '%s' overlap in the data block", file,
                  (const char *) g_hash_table_lookup (names, p), (const char *) g_hash_table_lookup (names, c));
  }
  return TRUE;
}

/* Maps `file` read-only for as long as `st` lives. */
static GMappedFile *
map_file (VlmSafetensors *st, const char *file, GError **error)
{
  GMappedFile *map = vlm_file_map (file, error);
  if (map)
    g_ptr_array_add (st->maps, map);
  return map;
}

/* Maps one .safetensors file and adds its tensors to st->entries. */
static gboolean
load_file (VlmSafetensors *st, const char *file, GError **error)
{
  GError *ferr = NULL;
  GMappedFile *map = map_file (st, file, error);
  if (!map)
    return FALSE;
  const uint8_t *base = (const uint8_t *) g_mapped_file_get_contents (map);
  uint64_t size = g_mapped_file_get_length (map), hlen = 0;
  if (size < 8)
    return BAD ("%s: file is %llu bytes, too short for a safetensors header", file, (unsigned long long) size);
  for (int i = 7; i >= 0; i--)
    hlen = (hlen << 8) | base[i];
  if (hlen < 2 || hlen > MAX_HEADER_BYTES || hlen > size - 8)
    return BAD ("%s: header length %llu does not fit the %llu-byte file", file,
                (unsigned long long) hlen, (unsigned long long) size);

  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, (const char *) base + 8, (gssize) hlen, &ferr)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_HEADER, "%s: header is not valid JSON: %s", file, ferr->message);
    g_error_free (ferr);
    return FALSE;
  }
  JsonNode *root = json_parser_get_root (parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root))
    return BAD ("%s: header is not a JSON object", file);

  const uint8_t *data = base + 8 + hlen;
  uint64_t data_size = size - 8 - hlen;
  g_autoptr (GPtrArray) list = g_ptr_array_new ();
  g_autoptr (GHashTable) rev = g_hash_table_new (NULL, NULL);   /* Entry* -> name, for messages */
  JsonObjectIter it;
  const char *name;
  JsonNode *node;
  json_object_iter_init (&it, json_node_get_object (root));
  while (json_object_iter_next (&it, &name, &node)) {
    if (strcmp (name, "__metadata__") == 0)
      continue;
    if (g_hash_table_contains (st->entries, name))
      return BAD ("%s: tensor '%s' appears twice", file, name);
    Entry *e = g_new0 (Entry, 1);
    char *key = g_strdup (name);
    g_hash_table_insert (st->entries, key, e);
    if (!parse_entry (file, name, node, data, data_size, e, error))
      return FALSE;
    g_ptr_array_add (list, e);
    g_hash_table_insert (rev, e, key);
  }
  return check_overlap (file, list, rev, error);
}

/* ---------------------------------------------------------------- sharded index */

static gboolean
load_index (VlmSafetensors *st, const char *index, GError **error)
{
  g_autoptr (JsonParser) parser = NULL;
  JsonObject *root = vlm_json_load (index, &parser, error);
  if (!root)
    return FALSE;
  /* vlm_json_object, as json_object_get_object_member is a critical on a missing or non-object member */
  JsonObject *wm = vlm_json_object (root, "weight_map");
  if (!wm)
    return BAD ("%s: no \"weight_map\" object", index);
  g_autofree char *dir = g_path_get_dirname (index);
  g_autoptr (GHashTable) done = g_hash_table_new (g_str_hash, g_str_equal);
  JsonObjectIter it;
  const char *name;
  JsonNode *node;
  json_object_iter_init (&it, wm);
  while (json_object_iter_next (&it, &name, &node)) {
    const char *shard = JSON_NODE_HOLDS_VALUE (node) ? json_node_get_string (node) : NULL;
    if (!shard || strchr (shard, '/') || strcmp (shard, "..") == 0)
      return BAD ("%s: weight_map entry for '%s' is not a file name", index, name);
    if (!g_hash_table_contains (done, shard)) {
      g_hash_table_add (done, (gpointer) shard);
      g_autofree char *path = g_build_filename (dir, shard, NULL);
      if (!load_file (st, path, error))
        return FALSE;
    }
  }
  /* Every tensor the index promises must be in the shard it names. */
  json_object_iter_init (&it, wm);
  while (json_object_iter_next (&it, &name, &node))
    if (!g_hash_table_contains (st->entries, name))
      return BAD ("%s: tensor '%s' is listed in weight_map but missing from %s", index, name,
                  json_node_get_string (node));
  return TRUE;
}

/* ---------------------------------------------------------------- alignment */

/* Data that do not start at a multiple of their element size would be read
 * through misaligned pointers, which C leaves undefined (UBSan: "load of
 * misaligned address"). One rule for every dtype and container: such a
 * tensor's bytes are copied into a buffer of ours (malloc's alignment) and
 * the view points there, so every reader may take data as typed. The
 * safetensors library since 0.3 and torch.save align all tensors; only
 * other writers pay for the copy. */
static gboolean
align_tensors (VlmSafetensors *st, GError **error)
{
  GHashTableIter it;
  gpointer name, value;
  g_hash_table_iter_init (&it, st->entries);
  while (g_hash_table_iter_next (&it, &name, &value)) {
    VlmTensor *t = &((Entry *) value)->tensor;
    size_t bytes = (size_t) vlm_tensor_numel (t) * vlm_dtype_size (t->dtype);
    if ((uintptr_t) t->data % vlm_dtype_size (t->dtype) == 0 || bytes == 0)
      continue;
    void *copy = g_try_malloc (bytes);
    if (!copy) {
      g_set_error (error, VLM_ERROR, VLM_ERROR_IO, "%s: tensor '%s' is misaligned and %zu MiB are not free to align it",
                   st->path, (const char *) name, bytes >> 20);
      return FALSE;
    }
    memcpy (copy, t->data, bytes);
    g_ptr_array_add (st->copies, copy);
    t->data = copy;
  }
  return TRUE;
}

/* ---------------------------------------------------------------- pytorch_model.bin */

/* vlm_torchbin_load's sink: the .bin is the file opened, st->path. */
static gboolean
add_tensor (void *data, const char *name, const VlmTensor *tensor, GError **error)
{
  VlmSafetensors *st = data;
  if (g_hash_table_contains (st->entries, name))
    return BAD ("%s: tensor '%s' appears twice", st->path, name);
  Entry *e = g_new0 (Entry, 1);
  e->tensor = *tensor;
  g_hash_table_insert (st->entries, g_strdup (name), e);
  return TRUE;
}

static gboolean
load_torchbin (VlmSafetensors *st, const char *file, GError **error)
{
  GMappedFile *map = vlm_torchbin_load (file, add_tensor, st, error);
  if (map)
    g_ptr_array_add (st->maps, map);
  return map != NULL;
}

/* ---------------------------------------------------------------- public */

static int
cmp_str (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

VlmSafetensors *
vlm_safetensors_open (const char *path, GError **error)
{
  g_autofree char *file = NULL;
  if (g_file_test (path, G_FILE_TEST_IS_DIR)) {
    file = g_build_filename (path, "model.safetensors.index.json", NULL);
    const char *fallbacks[] = {"model.safetensors", "pytorch_model.bin"};
    for (guint i = 0; i < G_N_ELEMENTS (fallbacks) && !g_file_test (file, G_FILE_TEST_EXISTS); i++) {
      g_free (file);
      file = g_build_filename (path, fallbacks[i], NULL);
    }
  } else
    file = g_strdup (path);
  if (!g_file_test (file, G_FILE_TEST_EXISTS)) {
    if (g_file_test (path, G_FILE_TEST_IS_DIR))
      g_set_error (error, VLM_ERROR, VLM_ERROR_NOT_FOUND, "%s: no model.safetensors or pytorch_model.bin", path);
    else
      g_set_error (error, VLM_ERROR, VLM_ERROR_NOT_FOUND, "%s: no such file", file);
    return NULL;
  }

  VlmSafetensors *st = g_new0 (VlmSafetensors, 1);
  st->path = g_strdup (file);
  st->maps = g_ptr_array_new_with_free_func ((GDestroyNotify) g_mapped_file_unref);
  st->copies = g_ptr_array_new_with_free_func (g_free);
  st->entries = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  gboolean ok = g_str_has_suffix (file, ".json")  ? load_index (st, file, error)
                : g_str_has_suffix (file, ".bin") ? load_torchbin (st, file, error)
                                                  : load_file (st, file, error);
  if (!ok || !align_tensors (st, error)) {
    vlm_safetensors_free (st);
    return NULL;
  }
  guint n;
  st->names = (char **) g_hash_table_get_keys_as_array (st->entries, &n);
  st->n_names = (int) n;
  qsort (st->names, n, sizeof (char *), cmp_str);
  return st;
}

void
vlm_safetensors_free (VlmSafetensors *st)
{
  if (!st)
    return;
  g_free (st->names);   /* the strings belong to the hash table */
  g_hash_table_destroy (st->entries);
  g_ptr_array_free (st->copies, TRUE);
  g_ptr_array_free (st->maps, TRUE);
  g_free (st->path);
  g_free (st);
}

const VlmTensor *
vlm_safetensors_find (const VlmSafetensors *st, const char *name)
{
  Entry *e = g_hash_table_lookup (st->entries, name);
  return e ? &e->tensor : NULL;
}

const VlmTensor *
vlm_safetensors_get (const VlmSafetensors *st, const char *name, int ndim, const int64_t *shape,
                     GError **error)
{
  const VlmTensor *t = vlm_safetensors_find (st, name);
  if (!t) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_NOT_FOUND, "%s: tensor '%s' not found", st->path, name);
    return NULL;
  }
  gboolean ok = t->ndim == ndim;
  for (int i = 0; ok && i < ndim; i++)
    ok = shape[i] < 0 || shape[i] == t->shape[i];
  if (!ok) {
    char got[128], want[128];
    g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_SHAPE, "%s: tensor '%s' has shape %s, expected %s",
                 st->path, name, vlm_shape_str (t->shape, t->ndim, got, sizeof got),
                 vlm_shape_str (shape, ndim, want, sizeof want));
    return NULL;
  }
  return t;
}

int
vlm_safetensors_count (const VlmSafetensors *st)
{
  return st->n_names;
}

const char *
vlm_safetensors_name (const VlmSafetensors *st, int i)
{
  return i >= 0 && i < st->n_names ? st->names[i] : NULL;
}

const char *
vlm_safetensors_path (const VlmSafetensors *st)
{
  return st->path;
}

