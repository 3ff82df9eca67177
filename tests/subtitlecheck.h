/* subtitlecheck.h — strict readers of SubRip and WebVTT files for the
 * element's tests, stricter than subparse: what they accept, every player
 * reads the same way.
 *
 * SubRip: blocks of a number (1, 2, 3, ... with no gap), a timing line
 * "HH:MM:SS,mmm --> HH:MM:SS,mmm", one or more non-blank text lines without
 * "-->" nor white space at either end, and exactly one blank line after each block; LF only.
 * WebVTT: "WEBVTT" and a blank line, once, then blocks of a timing line
 * "HH:MM:SS.mmm --> HH:MM:SS.mmm" and text lines as above, in which `<`
 * does not appear (the element writes no tags) and each `&` starts
 * "&amp;", "&lt;" or "&gt;".
 * Both: each cue ends after it starts, and no cue starts before the
 * previous one ended. Header-only: static functions. */
#ifndef VLM_SUBTITLECHECK_H
#define VLM_SUBTITLECHECK_H

#include <glib.h>
#include <stdlib.h>
#include <string.h>

typedef struct
{
  guint64 start_ms, end_ms;
  gchar *text;                  /* lines joined by "\n", unescaped */
} VtCue;

static void
vt_cue_free (gpointer data)
{
  VtCue *cue = data;

  g_free (cue->text);
  g_free (cue);
}

/* "HH:MM:SS<sep>mmm" (two or more hour digits) in ms; FALSE if malformed. */
static gboolean
vt_parse_time (const gchar * s, gsize len, gchar sep, guint64 * ms)
{
  guint64 h = 0;
  gsize i = 0, digits = 0;

  while (i < len && g_ascii_isdigit (s[i])) {
    h = h * 10 + (s[i++] - '0');
    digits++;
  }
  if (digits < 2 || len - i != 10 || s[i] != ':' || s[i + 3] != ':'
      || s[i + 6] != sep)
    return FALSE;
  for (gsize k = i + 1; k < len; k++)
    if (k != i + 3 && k != i + 6 && !g_ascii_isdigit (s[k]))
      return FALSE;
  {
    guint m = (s[i + 1] - '0') * 10 + s[i + 2] - '0';
    guint sec = (s[i + 4] - '0') * 10 + s[i + 5] - '0';
    guint msec = atoi (s + i + 7);

    if (m > 59 || sec > 59)
      return FALSE;
    *ms = ((h * 60 + m) * 60 + sec) * 1000 + msec;
  }
  return TRUE;
}

static gboolean
vt_parse_timing (const gchar * line, gchar sep, VtCue * cue)
{
  const gchar *arrow = strstr (line, " --> ");

  return arrow && vt_parse_time (line, arrow - line, sep, &cue->start_ms)
      && vt_parse_time (arrow + 5, strlen (arrow + 5), sep, &cue->end_ms);
}

/* One WebVTT text line unescaped into `out`; FALSE on `<` or a bare `&`. */
static gboolean
vt_unescape_vtt (const gchar * line, GString * out)
{
  static const struct { const gchar *ref, *c; } refs[] = {
    {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"},
  };

  for (const gchar * c = line; *c; c++) {
    guint r;

    if (*c == '<')
      return FALSE;
    if (*c != '&') {
      g_string_append_c (out, *c);
      continue;
    }
    for (r = 0; r < G_N_ELEMENTS (refs); r++)
      if (g_str_has_prefix (c, refs[r].ref))
        break;
    if (r == G_N_ELEMENTS (refs))
      return FALSE;
    g_string_append (out, refs[r].c);
    c += strlen (refs[r].ref) - 1;
  }
  return TRUE;
}

/* Parses `data` (a whole file) strictly: the cues (g_ptr_array_unref), or
 * NULL with *why saying where it broke (g_free). */
static GPtrArray *
vt_parse_subtitles (const gchar * data, gboolean vtt, gchar ** why)
{
  GPtrArray *cues = g_ptr_array_new_with_free_func (vt_cue_free);
  gchar **lines;
  guint i = 0, n;
  guint64 last_end = 0;

  *why = NULL;
  if (strchr (data, '\r')) {
    *why = g_strdup ("CR in the file");
    goto failed;
  }
  if (!g_str_has_suffix (data, "\n\n") && *data) {
    *why = g_strdup ("the file does not end with a blank line");
    goto failed;
  }
  lines = g_strsplit (data, "\n", -1);
  n = g_strv_length (lines) - 2;        /* the file's last "\n\n" */
  if (vtt) {
    if (n < 2 || strcmp (lines[0], "WEBVTT") != 0 || *lines[1]) {
      *why = g_strdup ("no \"WEBVTT\" header and blank line");
      goto failed_lines;
    }
    i = 2;
  }
  while (i < n) {
    VtCue *cue = g_new0 (VtCue, 1);
    GString *text = g_string_new (NULL);

    g_ptr_array_add (cues, cue);
    if (!vtt) {
      gchar *want = g_strdup_printf ("%u", cues->len);
      gboolean ok = strcmp (lines[i], want) == 0;

      g_free (want);
      if (!ok) {
        *why = g_strdup_printf ("line %u: \"%s\" is not cue number %u", i + 1,
            lines[i], cues->len);
        g_string_free (text, TRUE);
        goto failed_lines;
      }
      i++;
    }
    if (i >= n || !vt_parse_timing (lines[i], vtt ? '.' : ',', cue)) {
      *why = g_strdup_printf ("line %u: \"%s\" is not a timing line", i + 1,
          i < n ? lines[i] : "");
      g_string_free (text, TRUE);
      goto failed_lines;
    }
    if (cue->end_ms <= cue->start_ms || cue->start_ms < last_end) {
      *why = g_strdup_printf ("line %u: cue %" G_GUINT64_FORMAT "-%"
          G_GUINT64_FORMAT " ms after one ending at %" G_GUINT64_FORMAT,
          i + 1, cue->start_ms, cue->end_ms, last_end);
      g_string_free (text, TRUE);
      goto failed_lines;
    }
    last_end = cue->end_ms;
    for (i++; i < n && *lines[i]; i++) {
      gboolean ok = !strstr (lines[i], "-->") && !g_ascii_isspace (*lines[i])
          && !g_ascii_isspace (lines[i][strlen (lines[i]) - 1]);

      if (text->len)
        g_string_append_c (text, '\n');
      if (ok && vtt)
        ok = vt_unescape_vtt (lines[i], text);
      else if (ok)
        g_string_append (text, lines[i]);
      if (!ok || (vtt && strcmp (lines[i], "WEBVTT") == 0)) {
        *why = g_strdup_printf ("line %u: bad cue text \"%s\"", i + 1,
            lines[i]);
        g_string_free (text, TRUE);
        goto failed_lines;
      }
    }
    if (!text->len) {
      *why = g_strdup_printf ("line %u: a cue without text", i + 1);
      g_string_free (text, TRUE);
      goto failed_lines;
    }
    cue->text = g_string_free (text, FALSE);
    i++;                        /* the blank line */
  }
  g_strfreev (lines);
  return cues;

failed_lines:
  g_strfreev (lines);
failed:
  g_ptr_array_unref (cues);
  return NULL;
}

#endif
