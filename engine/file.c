/* file.c — regular files only, opened without blocking. */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int
vlm_file_open (const char *path, GError **error)
{
  /* O_NONBLOCK: open() of a FIFO without a writer returns at once, so the
   * fstat below can refuse it */
  int fd = open (path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  struct stat st;
  if (fd < 0) {
    int e = errno;
    g_set_error (error, VLM_ERROR, e == ENOENT ? VLM_ERROR_NOT_FOUND : VLM_ERROR_IO, "%s: %s", path,
                 e == ENOENT ? "no such file" : g_strerror (e));
    return -1;
  }
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode)) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_IO, "%s: not a regular file", path);
    close (fd);
    return -1;
  }
  return fd;
}

gboolean
vlm_file_get_contents (const char *path, char **text, gsize *len, GError **error)
{
  int fd = vlm_file_open (path, error);
  struct stat st;
  if (fd < 0)
    return FALSE;
  if (fstat (fd, &st) != 0 || (guint64) st.st_size > VLM_FILE_MAX_TEXT) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_IO, "%s: larger than the %" G_GSIZE_FORMAT " MiB a text file may hold",
                 path, VLM_FILE_MAX_TEXT >> 20);
    close (fd);
    return FALSE;
  }
  /* the size read now bounds the buffer; a file that shrinks meanwhile reads short */
  gsize size = (gsize) st.st_size, got = 0;
  char *buf = g_malloc (size + 1);
  while (got < size) {
    ssize_t n = read (fd, buf + got, size - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      g_set_error (error, VLM_ERROR, VLM_ERROR_IO, "%s: %s", path, g_strerror (errno));
      g_free (buf);
      close (fd);
      return FALSE;
    }
    if (n == 0)
      break;
    got += (gsize) n;
  }
  close (fd);
  buf[got] = '\0';
  *text = buf;
  if (len)
    *len = got;
  return TRUE;
}

GMappedFile *
vlm_file_map (const char *path, GError **error)
{
  GError *ferr = NULL;
  int fd = vlm_file_open (path, error);
  if (fd < 0)
    return NULL;
  GMappedFile *map = g_mapped_file_new_from_fd (fd, FALSE, &ferr);
  close (fd);   /* the mapping outlives the descriptor */
  if (!map) {
    g_set_error (error, VLM_ERROR, VLM_ERROR_IO, "%s: %s", path, ferr->message);
    g_error_free (ferr);
  }
  return map;
}
