/* torchbin.c — torch.save's format: a zip holding `ARCHIVE/data.pkl` (the
 * state dict, pickled) and `ARCHIVE/data/KEY` (each storage's raw bytes).
 *
 * The pickle is interpreted by a small stack machine that knows only what a
 * state dict needs: dicts, tuples, strings, ints, the allowed globals and
 * persistent ids naming storages. It calls nothing: a "call" of an allowed
 * global is a tensor or dict built here. Every read is bounds-checked.
 * ref: pytorch torch/serialization.py (_save, _load), torch/_utils.py
 *      (_rebuild_tensor_v2, _rebuild_parameter), CPython Lib/pickletools.py
 *      (opcodes), PKWARE APPNOTE.TXT (zip, zip64). */
#include "torchbin.h"
#include "file.h"

#define BAD(...) (g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_HEADER, __VA_ARGS__), FALSE)
#define FAIL(...) (g_set_error (error, VLM_ERROR, VLM_ERROR_BAD_HEADER, __VA_ARGS__), NULL)

typedef unsigned long long ull;   /* for printing */

static uint64_t
le (const uint8_t *p, int n)
{
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

/* ---------------------------------------------------------------- zip */

typedef struct {
  const uint8_t *data;
  uint64_t size;
} Span;

typedef struct {
  const char *file;
  const uint8_t *base;
  uint64_t size;
  GHashTable *entries;   /* name -> Span*, stored entries only */
} Zip;

/* Whether [off, off + len) lies in the file. */
static gboolean
in_file (const Zip *z, uint64_t off, uint64_t len)
{
  return off <= z->size && len <= z->size - off;
}

/* The end of central directory record (zip64's when the classic one is
 * saturated): entry count, directory offset and size. */
static gboolean
find_directory (const Zip *z, uint64_t *count, uint64_t *offset, uint64_t *size, GError **error)
{
  if (z->size < 22)
    return BAD ("%s: %llu bytes is too short for a zip", z->file, (ull) z->size);
  const uint8_t *e = NULL;
  for (uint64_t back = 0; back <= 0xffff && back <= z->size - 22 && !e; back++)   /* ≤ 64 KiB comment */
    if (le (z->base + z->size - 22 - back, 4) == 0x06054b50)
      e = z->base + z->size - 22 - back;
  if (!e)
    return BAD ("%s: no zip end of central directory (truncated?)", z->file);
  *count = le (e + 10, 2);
  *size = le (e + 12, 4);
  *offset = le (e + 16, 4);
  if (*count == 0xffff || *size == 0xffffffff || *offset == 0xffffffff) {
    uint64_t r;
    if (e - z->base < 20 || le (e - 20, 4) != 0x07064b50 || !in_file (z, r = le (e - 12, 8), 56) ||
        le (z->base + r, 4) != 0x06064b50)
      return BAD ("%s: zip64 end of central directory missing or malformed", z->file);
    *count = le (z->base + r + 32, 8);
    *size = le (z->base + r + 40, 8);
    *offset = le (z->base + r + 48, 8);
  }
  if (!in_file (z, *offset, *size))
    return BAD ("%s: zip central directory [%llu, +%llu) outside the %llu-byte file (truncated?)", z->file,
                (ull) *offset, (ull) *size, (ull) z->size);
  return TRUE;
}

/* zip64 extended information (extra field 0x0001): the 64-bit values of
 * the saturated fields (uncompressed size, compressed size, local header
 * offset; NULL = not saturated), in that order. */
static gboolean
zip64_extra (const uint8_t *x, uint64_t n, uint64_t *fields[3])
{
  for (uint64_t p = 0; p + 4 <= n;) {
    uint64_t id = le (x + p, 2), len = le (x + p + 2, 2), q = p + 4;
    if (len > n - q)
      return FALSE;
    if (id == 1) {
      for (int i = 0; i < 3; i++)
        if (fields[i]) {
          if (q + 8 > p + 4 + len)
            return FALSE;
          *fields[i] = le (x + q, 8);
          q += 8;
        }
      return TRUE;
    }
    p = q + len;
  }
  return FALSE;
}

/* Indexes the central directory; every entry must be stored (torch.save
 * never compresses) and lie inside the file. */
static gboolean
read_zip (Zip *z, GError **error)
{
  uint64_t count, offset, size;
  if (!find_directory (z, &count, &offset, &size, error))
    return FALSE;
  const uint8_t *d = z->base + offset, *end = d + size;
  for (uint64_t i = 0; i < count; i++) {
    if (end - d < 46 || le (d, 4) != 0x02014b50)
      return BAD ("%s: zip directory entry %llu is malformed", z->file, (ull) i);
    uint64_t method = le (d + 10, 2), csize = le (d + 20, 4), usize = le (d + 24, 4);
    uint64_t nlen = le (d + 28, 2), xlen = le (d + 30, 2), clen = le (d + 32, 2), local = le (d + 42, 4);
    if ((uint64_t) (end - d) < 46 + nlen + xlen + clen)
      return BAD ("%s: zip directory entry %llu runs past the directory", z->file, (ull) i);
    g_autofree char *name = g_strndup ((const char *) d + 46, nlen);
    uint64_t *wide[3] = {usize == 0xffffffff ? &usize : NULL, csize == 0xffffffff ? &csize : NULL,
                         local == 0xffffffff ? &local : NULL};
    if ((wide[0] || wide[1] || wide[2]) && !zip64_extra (d + 46 + nlen, xlen, wide))
      return BAD ("%s: zip entry '%s': bad zip64 extra field", z->file, name);
    if (method != 0 || csize != usize)
      return BAD ("%s: zip entry '%s' is compressed (method %llu); only stored entries are read", z->file,
                  name, (ull) method);
    if (!in_file (z, local, 30) || le (z->base + local, 4) != 0x04034b50)
      return BAD ("%s: zip entry '%s': no local header at %llu (truncated?)", z->file, name, (ull) local);
    uint64_t data = local + 30 + le (z->base + local + 26, 2) + le (z->base + local + 28, 2);
    if (!in_file (z, data, usize))
      return BAD ("%s: zip entry '%s' [%llu, +%llu) runs past the %llu-byte file (truncated?)", z->file, name,
                  (ull) data, (ull) usize, (ull) z->size);
    Span *s = g_new (Span, 1);
    *s = (Span) {z->base + data, usize};
    g_hash_table_replace (z->entries, g_steal_pointer (&name), s);
    d += 46 + nlen + xlen + clen;
  }
  return TRUE;
}

/* ---------------------------------------------------------------- pickle */

typedef enum { G_ORDERED_DICT, G_REBUILD_TENSOR, G_REBUILD_PARAMETER, G_STORAGE } GlobalKind;

/* The globals a state dict uses; the pickle may name nothing else. */
static const struct {
  const char *module, *name;
  GlobalKind kind;
  VlmDType dtype;   /* G_STORAGE */
} allowed[] = {
  {"collections", "OrderedDict", G_ORDERED_DICT, 0},
  {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR, 0},
  {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAMETER, 0},
  {"torch", "FloatStorage", G_STORAGE, VLM_DTYPE_F32},
  {"torch", "BFloat16Storage", G_STORAGE, VLM_DTYPE_BF16},
  {"torch", "HalfStorage", G_STORAGE, VLM_DTYPE_F16},
  {"torch", "LongStorage", G_STORAGE, VLM_DTYPE_I64},
  {"torch", "IntStorage", G_STORAGE, VLM_DTYPE_I32},
  {"torch", "ByteStorage", G_STORAGE, VLM_DTYPE_U8},
  {"torch", "CharStorage", G_STORAGE, VLM_DTYPE_I8},
  {"torch", "BoolStorage", G_STORAGE, VLM_DTYPE_BOOL},
};

typedef enum { V_MARK, V_NONE, V_BOOL, V_INT, V_STR, V_TUPLE, V_DICT, V_GLOBAL, V_STORAGE, V_TENSOR } Kind;

typedef struct {
  Kind kind;
  int64_t i;         /* BOOL, INT; GLOBAL: index in allowed[] */
  char *s;           /* STR */
  GPtrArray *items;  /* TUPLE: values; DICT: key, value, key, value, ... */
  VlmTensor t;       /* TENSOR; STORAGE: dtype, data and shape[0] = element count */
} Value;

typedef struct {
  const char *file;
  const Zip *zip;
  const char *prefix;        /* "ARCHIVE/" */
  const uint8_t *start, *p, *end;   /* the pickle */
  GPtrArray *stack;          /* Value* */
  GHashTable *memo;          /* memo id -> Value* */
  GPtrArray *all;            /* owns every Value */
} Pickle;

static void
value_free (Value *v)
{
  g_free (v->s);
  if (v->items)
    g_ptr_array_free (v->items, TRUE);
  g_free (v);
}

static Value *
new_value (Pickle *P, Kind kind)
{
  Value *v = g_new0 (Value, 1);
  v->kind = kind;
  if (kind == V_TUPLE || kind == V_DICT)
    v->items = g_ptr_array_new ();
  g_ptr_array_add (P->all, v);
  return v;
}

static gboolean
take (Pickle *P, uint64_t n, const uint8_t **out, GError **error)
{
  if ((uint64_t) (P->end - P->p) < n)
    return BAD ("%s: data.pkl is truncated", P->file);
  *out = P->p;
  P->p += n;
  return TRUE;
}

static Value *
pop (Pickle *P, GError **error)
{
  Value *v = P->stack->len ? g_ptr_array_steal_index (P->stack, P->stack->len - 1) : NULL;
  if (!v || v->kind == V_MARK) {
    return FAIL ("%s: data.pkl pops past its stack or a mark", P->file);
  }
  return v;
}

static Value *
top (Pickle *P, Kind kind, GError **error)
{
  Value *v = P->stack->len ? P->stack->pdata[P->stack->len - 1] : NULL;
  if (!v || v->kind != kind) {
    return FAIL ("%s: data.pkl has an unexpected object on its stack", P->file);
  }
  return v;
}

/* The values above the topmost mark, as a new tuple; the mark is dropped. */
static Value *
pop_mark (Pickle *P, GError **error)
{
  int m = (int) P->stack->len - 1;
  while (m >= 0 && ((Value *) P->stack->pdata[m])->kind != V_MARK)
    m--;
  if (m < 0) {
    return FAIL ("%s: data.pkl has no mark to pop to", P->file);
  }
  Value *t = new_value (P, V_TUPLE);
  for (guint i = m + 1; i < P->stack->len; i++)
    g_ptr_array_add (t->items, P->stack->pdata[i]);
  g_ptr_array_set_size (P->stack, m);
  return t;
}

static Value *
item (const Value *tuple, guint i, Kind kind)
{
  Value *v = tuple->kind == V_TUPLE && i < tuple->items->len ? tuple->items->pdata[i] : NULL;
  return v && v->kind == kind ? v : NULL;
}

/* GLOBAL "module\nname\n": only the allowed table. */
static Value *
global (Pickle *P, GError **error)
{
  const uint8_t *nl1 = memchr (P->p, '\n', P->end - P->p);
  const uint8_t *nl2 = nl1 ? memchr (nl1 + 1, '\n', P->end - nl1 - 1) : NULL;
  if (!nl2) {
    return FAIL ("%s: data.pkl is truncated in a GLOBAL", P->file);
  }
  g_autofree char *module = g_strndup ((const char *) P->p, nl1 - P->p);
  g_autofree char *name = g_strndup ((const char *) nl1 + 1, nl2 - nl1 - 1);
  P->p = nl2 + 1;
  for (guint i = 0; i < G_N_ELEMENTS (allowed); i++)
    if (strcmp (module, allowed[i].module) == 0 && strcmp (name, allowed[i].name) == 0) {
      Value *v = new_value (P, V_GLOBAL);
      v->i = i;
      return v;
    }
  return FAIL ("%s: data.pkl names the global '%s.%s', which a state dict does not use: refused", P->file, module, name);
}

/* BINPERSID ('storage', StorageType, key, location, numel): the bytes of
 * ARCHIVE/data/KEY, which must hold numel elements. */
static Value *
storage (Pickle *P, Value *pid, GError **error)
{
  Value *tag = item (pid, 0, V_STR), *type = item (pid, 1, V_GLOBAL), *key = item (pid, 2, V_STR);
  Value *numel = item (pid, 4, V_INT);
  if (!tag || strcmp (tag->s, "storage") != 0 || !type || allowed[type->i].kind != G_STORAGE || !key || !numel) {
    return FAIL ("%s: data.pkl has a persistent id that is not a storage", P->file);
  }
  g_autofree char *entry = g_strconcat (P->prefix, "data/", key->s, NULL);
  const Span *s = g_hash_table_lookup (P->zip->entries, entry);
  VlmDType dtype = allowed[type->i].dtype;
  if (!s || numel->i < 0 || (uint64_t) numel->i > s->size / vlm_dtype_size (dtype)) {
    return FAIL ("%s: storage '%s' is missing or smaller than its %lld elements", P->file, entry, (long long) numel->i);
  }
  Value *v = new_value (P, V_STORAGE);
  v->t = (VlmTensor) {.data = s->data, .dtype = dtype, .ndim = 1, .shape = {numel->i}};
  return v;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[,
 * metadata]): a dense row-major view inside the storage. */
static Value *
rebuild_tensor (Pickle *P, Value *args, GError **error)
{
  Value *st = item (args, 0, V_STORAGE), *off = item (args, 1, V_INT), *size = item (args, 2, V_TUPLE);
  Value *stride = item (args, 3, V_TUPLE);
  if (!st || !off || !size || !stride || size->items->len != stride->items->len ||
      size->items->len > VLM_MAX_DIMS) {
    return FAIL ("%s: data.pkl rebuilds a tensor from unexpected arguments", P->file);
  }
  Value *v = new_value (P, V_TENSOR);
  int ndim = (int) size->items->len;
  int64_t numel = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    Value *n = item (size, d, V_INT), *s = item (stride, d, V_INT);
    if (!n || !s || n->i < 0 || (n->i && numel > INT64_MAX / n->i) || (n->i != 1 && s->i != numel)) {
      return FAIL ("%s: data.pkl has a tensor that is not dense and row-major (dimension %d)", P->file, d);
    }
    v->t.shape[d] = n->i;
    numel *= n->i;
  }
  if (off->i < 0 || off->i > st->t.shape[0] || numel > st->t.shape[0] - off->i) {
    return FAIL ("%s: data.pkl has a tensor of %lld elements at %lld, outside its storage of %lld", P->file,
         (long long) numel, (long long) off->i, (long long) st->t.shape[0]);
  }
  v->t.dtype = st->t.dtype;
  v->t.ndim = ndim;
  v->t.data = (const uint8_t *) st->t.data + off->i * vlm_dtype_size (st->t.dtype);
  return v;
}

/* REDUCE: the "call" of an allowed global, built here. */
static Value *
reduce (Pickle *P, Value *callable, Value *args, GError **error)
{
  if (callable->kind == V_GLOBAL && args->kind == V_TUPLE)
    switch (allowed[callable->i].kind) {
      case G_ORDERED_DICT:
        return new_value (P, V_DICT);
      case G_REBUILD_TENSOR:
        return rebuild_tensor (P, args, error);
      case G_REBUILD_PARAMETER:
        if (item (args, 0, V_TENSOR))
          return item (args, 0, V_TENSOR);
        break;
      case G_STORAGE:
        break;
    }
  return FAIL ("%s: data.pkl makes a call a state dict does not make", P->file);
}

static gboolean
push (Pickle *P, Value *v)
{
  if (v)
    g_ptr_array_add (P->stack, v);
  return v != NULL;
}

/* Adds key/value pairs from `pairs` (a tuple) to the dict below them. */
static gboolean
set_items (Pickle *P, Value *pairs, GError **error)
{
  Value *dict = pairs ? top (P, V_DICT, error) : NULL;
  if (!dict || pairs->items->len % 2)
    return dict ? BAD ("%s: data.pkl sets an odd number of dict items", P->file) : FALSE;
  for (guint i = 0; i < pairs->items->len; i++)
    g_ptr_array_add (dict->items, pairs->items->pdata[i]);
  return TRUE;
}

/* Runs data.pkl to STOP; returns the state dict. */
static Value *
run (Pickle *P, GError **error)
{
  const uint8_t *a;
  Value *v, *w;
  while (P->p < P->end) {
    size_t at = P->p - P->start;
    uint8_t op = *P->p++;
    gboolean ok;
    switch (op) {
      case 0x80: ok = take (P, 1, &a, error); break;                         /* PROTO */
      case '}': ok = push (P, new_value (P, V_DICT)); break;                 /* EMPTY_DICT */
      case ')': ok = push (P, new_value (P, V_TUPLE)); break;                /* EMPTY_TUPLE */
      case '(': ok = push (P, new_value (P, V_MARK)); break;                 /* MARK */
      case 't': ok = push (P, pop_mark (P, error)); break;                   /* TUPLE */
      case 0x85: case 0x86: case 0x87:                                       /* TUPLE1..3 */
        v = new_value (P, V_TUPLE);
        g_ptr_array_set_size (v->items, op - 0x84);
        ok = TRUE;
        for (int i = op - 0x85; i >= 0 && ok; i--)
          ok = (v->items->pdata[i] = pop (P, error)) != NULL;
        ok = ok && push (P, v);
        break;
      case 'X': case 0x8c: {                                                 /* BINUNICODE, SHORT_BINUNICODE */
        int n = op == 'X' ? 4 : 1;
        ok = take (P, n, &a, error) && take (P, le (a, n), &a, error);
        if (ok && !g_utf8_validate ((const char *) a, P->p - a, NULL))
          ok = BAD ("%s: data.pkl holds a string that is not UTF-8", P->file);
        if (ok) {
          v = new_value (P, V_STR);
          v->s = g_strndup ((const char *) a, P->p - a);
          push (P, v);
        }
        break;
      }
      case 'K': case 'M': case 'J': {                                        /* BININT1, BININT2, BININT */
        int n = op == 'K' ? 1 : op == 'M' ? 2 : 4;
        if ((ok = take (P, n, &a, error))) {
          v = new_value (P, V_INT);
          v->i = n == 4 ? (int32_t) le (a, 4) : (int64_t) le (a, n);
          push (P, v);
        }
        break;
      }
      case 0x8a:                                                             /* LONG1 (≤ 8 bytes) */
        ok = take (P, 1, &a, error) && take (P, a[0], &a, error);
        if (ok && P->p - a > 8)
          ok = BAD ("%s: data.pkl holds an integer wider than 64 bits", P->file);
        if (ok) {
          int n = (int) (P->p - a);
          v = new_value (P, V_INT);
          v->i = n ? (int64_t) (le (a, n) << (64 - 8 * n)) >> (64 - 8 * n) : 0;
          push (P, v);
        }
        break;
      case 'N': ok = push (P, new_value (P, V_NONE)); break;                 /* NONE */
      case 0x88: case 0x89:                                                  /* NEWTRUE, NEWFALSE */
        v = new_value (P, V_BOOL);
        v->i = op == 0x88;
        ok = push (P, v);
        break;
      case 'c': ok = push (P, global (P, error)); break;                     /* GLOBAL */
      case 'q': case 'r':                                                    /* BINPUT, LONG_BINPUT */
        ok = take (P, op == 'q' ? 1 : 4, &a, error);
        if (ok && !P->stack->len)
          ok = BAD ("%s: data.pkl memoizes an empty stack", P->file);
        if (ok)
          g_hash_table_insert (P->memo, GSIZE_TO_POINTER (le (a, op == 'q' ? 1 : 4)),
                               P->stack->pdata[P->stack->len - 1]);
        break;
      case 'h': case 'j':                                                    /* BINGET, LONG_BINGET */
        ok = take (P, op == 'h' ? 1 : 4, &a, error);
        if (ok && !push (P, g_hash_table_lookup (P->memo, GSIZE_TO_POINTER (le (a, op == 'h' ? 1 : 4)))))
          ok = BAD ("%s: data.pkl gets a memo entry it never put", P->file);
        break;
      case 'Q': ok = (v = pop (P, error)) && push (P, storage (P, v, error)); break;   /* BINPERSID */
      case 'R': ok = (v = pop (P, error)) && (w = pop (P, error)) && push (P, reduce (P, w, v, error)); break;
      case 'u': ok = set_items (P, pop_mark (P, error), error); break;       /* SETITEMS */
      case 's':                                                              /* SETITEM */
        v = new_value (P, V_TUPLE);
        g_ptr_array_set_size (v->items, 2);
        ok = (v->items->pdata[1] = pop (P, error)) && (v->items->pdata[0] = pop (P, error)) &&
             set_items (P, v, error);
        break;
      case 'b': ok = pop (P, error) && top (P, V_DICT, error); break;        /* BUILD: a dict's attributes (_metadata) */
      case '.': return pop (P, error);                                       /* STOP */
      default:
        return FAIL ("%s: data.pkl uses opcode 0x%02x at byte %zu, which a state dict does not use: refused", P->file,
             op, at);
    }
    if (!ok)
      return NULL;
  }
  return FAIL ("%s: data.pkl is truncated (no STOP)", P->file);
}

/* ---------------------------------------------------------------- public */

/* The archive's folder: the one ARCHIVE/data.pkl of the zip. */
static char *
find_prefix (const Zip *z, GError **error)
{
  GHashTableIter it;
  gpointer key;
  char *prefix = NULL;
  g_hash_table_iter_init (&it, z->entries);
  while (g_hash_table_iter_next (&it, &key, NULL)) {
    const char *slash = strchr (key, '/');
    if (slash && strcmp (slash, "/data.pkl") == 0) {
      if (prefix) {
        g_free (prefix);
        return FAIL ("%s: the zip holds more than one data.pkl", z->file);
      }
      prefix = g_strndup (key, slash + 1 - (const char *) key);
    }
  }
  return prefix ? prefix : FAIL ("%s: no ARCHIVE/data.pkl in the zip: not a torch.save checkpoint", z->file);
}

static gboolean
load_state_dict (Zip *z, VlmTorchbinAddFunc add, void *user_data, GError **error)
{
  g_autofree char *prefix = find_prefix (z, error);
  if (!prefix)
    return FALSE;
  g_autofree char *order = g_strconcat (prefix, "byteorder", NULL);
  const Span *bo = g_hash_table_lookup (z->entries, order);
  if (bo && !(bo->size == 6 && memcmp (bo->data, "little", 6) == 0))
    return BAD ("%s: storages are not little-endian", z->file);
  g_autofree char *pkl = g_strconcat (prefix, "data.pkl", NULL);
  const Span *s = g_hash_table_lookup (z->entries, pkl);
  Pickle P = {z->file, z, prefix, s->data, s->data, s->data + s->size, g_ptr_array_new (),
              g_hash_table_new (NULL, NULL), g_ptr_array_new_with_free_func ((GDestroyNotify) value_free)};
  Value *dict = run (&P, error);
  gboolean ok = dict && (dict->kind == V_DICT || BAD ("%s: data.pkl is not a state dict", z->file));
  for (guint i = 0; ok && i < dict->items->len; i += 2) {
    Value *k = dict->items->pdata[i], *v = dict->items->pdata[i + 1];
    ok = k->kind == V_STR && v->kind == V_TENSOR
             ? add (user_data, k->s, &v->t, error)
             : BAD ("%s: state dict entry %u is not a named tensor", z->file, i / 2);
  }
  g_ptr_array_free (P.stack, TRUE);
  g_hash_table_destroy (P.memo);
  g_ptr_array_free (P.all, TRUE);
  return ok;
}

GMappedFile *
vlm_torchbin_load (const char *file, VlmTorchbinAddFunc add, void *user_data, GError **error)
{
  GMappedFile *map = vlm_file_map (file, error);
  if (!map)
    return NULL;
  Zip z = {file, (const uint8_t *) g_mapped_file_get_contents (map), g_mapped_file_get_length (map),
           g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free)};
  gboolean ok = read_zip (&z, error) && load_state_dict (&z, add, user_data, error);
  g_hash_table_destroy (z.entries);
  if (!ok)
    g_clear_pointer (&map, g_mapped_file_unref);
  return map;
}
