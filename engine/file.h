/* file.h — opening the files of a model folder. Only regular files are
 * read, and opening never blocks: a FIFO or a device named config.json
 * would otherwise hang the loader in open() or read(). Errors name the
 * path: NOT_FOUND when it does not exist, IO when it is not a regular file
 * ("not a regular file") or cannot be read. */
#ifndef VLM_FILE_H
#define VLM_FILE_H

#include "vlm/vlm.h"

/* The most a text file (JSON, vocab, merges) may hold: it is read whole. */
#define VLM_FILE_MAX_TEXT ((gsize) 1 << 30)

/* A read-only descriptor of the regular file `path` (close it), or -1. */
int vlm_file_open (const char *path, GError **error);
/* The whole file, NUL-terminated (g_free), its length in *len (may be NULL);
 * IO if it holds more than VLM_FILE_MAX_TEXT bytes. */
gboolean vlm_file_get_contents (const char *path, char **text, gsize *len, GError **error);
/* The file mapped read-only. */
GMappedFile *vlm_file_map (const char *path, GError **error);

#endif
