/* cc608check.h — a strict CEA-608 decoder for the tests (CC1, field 1):
 * feeds on byte pairs, keeps the displayed and non-displayed memories as a
 * decoder does, and records what the viewer sees and when. The first rule
 * broken is kept in `error`: a byte with even parity, a control code not
 * sent twice, another channel, an unknown code, a row past 32 columns, an
 * extended character with nothing to replace, a PAC for a row 608 lacks.
 * Its character tables are code points in code order, written from the
 * standard, not from the encoder under test.
 * ref: CTA-608-E §§ 4.1 (parity), 6.4 (redundant control codes), 7, B.5 */
#ifndef CC608CHECK_H
#define CC608CHECK_H

#include <gst/gst.h>
#include <string.h>

#define CC608_ROWS 15
#define CC608_COLS 32

typedef enum { CC608_MODE_NONE, CC608_MODE_POP_ON, CC608_MODE_ROLL_UP } Cc608Mode;

typedef struct
{
  gunichar mem[2][CC608_ROWS][CC608_COLS];    /* [0] displayed, [1] loading */
  Cc608Mode mode;
  guint row, col;               /* cursor, 0-based */
  guint roll_rows;
  guint8 last1, last2;          /* the last control pair, for redundancy */
  gboolean last_was_control;
  gchar *error;                 /* the first rule broken; NULL: none */
  /* what the viewer saw: "text@ms" each time the display changed as a
   * whole (pop-on EOC, an erase), and each roll-up row as it scrolled or
   * was erased */
  GPtrArray *shown;
  guint pairs, nulls;
} Cc608Check;

static const gunichar cc608_special[16] = {
  0x00ae, 0x00b0, 0x00bd, 0x00bf, 0x2122, 0x00a2, 0x00a3, 0x266a,
  0x00e0, 0x00a0, 0x00e8, 0x00e2, 0x00ea, 0x00ee, 0x00f4, 0x00fb
};

static const gunichar cc608_ext12[32] = {
  0x00c1, 0x00c9, 0x00d3, 0x00da, 0x00dc, 0x00fc, 0x2018, 0x00a1,
  0x002a, 0x0027, 0x2014, 0x00a9, 0x2120, 0x2022, 0x201c, 0x201d,
  0x00c0, 0x00c2, 0x00c7, 0x00c8, 0x00ca, 0x00cb, 0x00eb, 0x00ce,
  0x00cf, 0x00ef, 0x00d4, 0x00d9, 0x00f9, 0x00db, 0x00ab, 0x00bb
};

static const gunichar cc608_ext13[32] = {
  0x00c3, 0x00e3, 0x00cd, 0x00cc, 0x00ec, 0x00d2, 0x00f2, 0x00d5,
  0x00f5, 0x007b, 0x007d, 0x005c, 0x005e, 0x005f, 0x007c, 0x007e,
  0x00c4, 0x00e4, 0x00d6, 0x00f6, 0x00df, 0x00a5, 0x00a4, 0x00a6,
  0x00c5, 0x00e5, 0x00d8, 0x00f8, 0x250c, 0x2510, 0x2514, 0x2518
};

static inline void
cc608_fail (Cc608Check * d, const gchar * fmt, ...)
{
  va_list ap;

  if (d->error)
    return;
  va_start (ap, fmt);
  d->error = g_strdup_vprintf (fmt, ap);
  va_end (ap);
}

static inline void
cc608_init (Cc608Check * d)
{
  memset (d, 0, sizeof (*d));
  d->shown = g_ptr_array_new_with_free_func (g_free);
}

static inline void
cc608_free (Cc608Check * d)
{
  g_ptr_array_unref (d->shown);
  g_free (d->error);
}

static inline gunichar
cc608_basic (guint8 c)
{
  switch (c) {
    case 0x2a: return 0x00e1;
    case 0x5c: return 0x00e9;
    case 0x5e: return 0x00ed;
    case 0x5f: return 0x00f3;
    case 0x60: return 0x00fa;
    case 0x7b: return 0x00e7;
    case 0x7c: return 0x00f7;
    case 0x7d: return 0x00d1;
    case 0x7e: return 0x00f1;
    case 0x7f: return 0x2588;
    default: return c;
  }
}

/* The text of one row, trimmed; "" when empty. */
static inline gchar *
cc608_row_text (gunichar row[CC608_COLS])
{
  GString *s = g_string_new (NULL);

  for (guint c = 0; c < CC608_COLS; c++)
    g_string_append_unichar (s, row[c] ? row[c] : ' ');
  g_strstrip (s->str);
  s->len = strlen (s->str);
  return g_string_free (s, FALSE);
}

/* The rows of a memory that hold text, top to bottom, joined by spaces. */
static inline gchar *
cc608_memory_text (gunichar mem[CC608_ROWS][CC608_COLS])
{
  GString *s = g_string_new (NULL);

  for (guint r = 0; r < CC608_ROWS; r++) {
    gchar *t = cc608_row_text (mem[r]);

    if (*t)
      g_string_append_printf (s, "%s%s", s->len ? " " : "", t);
    g_free (t);
  }
  return g_string_free (s, FALSE);
}

static inline void
cc608_record (Cc608Check * d, const gchar * text, GstClockTime rt)
{
  g_ptr_array_add (d->shown, g_strdup_printf ("%s@%" G_GUINT64_FORMAT, text,
          GST_CLOCK_TIME_IS_VALID (rt) ? rt / GST_MSECOND : 0));
}

/* The memory characters go to: displayed in roll-up, loading in pop-on. */
static inline gunichar (*cc608_target (Cc608Check * d))[CC608_COLS]
{
  return d->mem[d->mode == CC608_MODE_POP_ON ? 1 : 0];
}

static inline void
cc608_put (Cc608Check * d, gunichar c)
{
  if (d->mode == CC608_MODE_NONE) {
    cc608_fail (d, "a character before RCL or RUx");
    return;
  }
  if (d->col >= CC608_COLS) {
    cc608_fail (d, "row %u past %d columns", d->row + 1, CC608_COLS);
    return;
  }
  cc608_target (d)[d->row][d->col++] = c;
}

static inline void
cc608_roll (Cc608Check * d, GstClockTime rt)
{
  gchar *t = cc608_row_text (d->mem[0][d->row]);
  guint top = d->row + 1 - d->roll_rows;

  if (*t)
    cc608_record (d, t, rt);
  g_free (t);
  for (guint r = top; r < d->row; r++)
    memcpy (d->mem[0][r], d->mem[0][r + 1], sizeof (d->mem[0][r]));
  memset (d->mem[0][d->row], 0, sizeof (d->mem[0][d->row]));
  d->col = 0;
}

static inline void
cc608_control (Cc608Check * d, guint8 b1, guint8 b2, GstClockTime rt)
{
  static const guint8 pac_first[16] = {
    /* rows by first byte (0x10..0x17) and bit 0x20 of the second, 1-based */
    11, 0, 1, 2, 3, 4, 12, 13, 14, 15, 5, 6, 7, 8, 9, 10
  };

  if (b1 == 0x14 && b2 >= 0x20 && b2 <= 0x2f) {
    gchar *t;

    switch (b2) {
      case 0x20:               /* RCL */
        d->mode = CC608_MODE_POP_ON;
        break;
      case 0x25: case 0x26: case 0x27:  /* RU2..RU4 */
        d->mode = CC608_MODE_ROLL_UP;
        d->roll_rows = b2 - 0x23;
        d->row = CC608_ROWS - 1;
        d->col = 0;
        break;
      case 0x2c:               /* EDM */
        if (d->mode == CC608_MODE_ROLL_UP) {
          t = cc608_row_text (d->mem[0][d->row]);
          if (*t)
            cc608_record (d, t, rt);
          g_free (t);
        }
        memset (d->mem[0], 0, sizeof (d->mem[0]));
        cc608_record (d, "", rt);
        break;
      case 0x2d:               /* CR */
        if (d->mode == CC608_MODE_ROLL_UP)
          cc608_roll (d, rt);
        break;
      case 0x2e:               /* ENM */
        memset (d->mem[1], 0, sizeof (d->mem[1]));
        break;
      case 0x2f:               /* EOC */
        {
          gunichar tmp[CC608_ROWS][CC608_COLS];

          memcpy (tmp, d->mem[0], sizeof (tmp));
          memcpy (d->mem[0], d->mem[1], sizeof (tmp));
          memcpy (d->mem[1], tmp, sizeof (tmp));
          t = cc608_memory_text (d->mem[0]);
          cc608_record (d, t, rt);
          g_free (t);
        }
        break;
      default:
        cc608_fail (d, "misc control 0x14 0x%02x not expected", b2);
    }
  } else if (b1 == 0x17 && b2 >= 0x21 && b2 <= 0x23) {     /* TO1..3 */
    d->col += b2 - 0x20;
  } else if (b1 == 0x11 && b2 >= 0x30 && b2 <= 0x3f) {
    cc608_put (d, cc608_special[b2 - 0x30]);
  } else if ((b1 == 0x12 || b1 == 0x13) && b2 >= 0x20 && b2 <= 0x3f) {
    if (d->col == 0)
      cc608_fail (d, "extended character with nothing to replace");
    else {
      d->col--;
      cc608_put (d, (b1 == 0x12 ? cc608_ext12 : cc608_ext13)[b2 - 0x20]);
    }
  } else if (b2 >= 0x40 && b2 <= 0x7f) {      /* PAC */
    guint row = pac_first[((b1 & 0x07) << 1) | ((b2 & 0x20) ? 1 : 0)];

    if (row == 0 || (b1 == 0x10 && (b2 & 0x20)))
      cc608_fail (d, "PAC 0x%02x 0x%02x addresses no row", b1, b2);
    else {
      d->row = row - 1;
      d->col = (b2 & 0x10) ? ((b2 >> 1) & 0x07) * 4 : 0;
      if (d->mode == CC608_MODE_ROLL_UP && d->row + 1 < d->roll_rows)
        cc608_fail (d, "roll-up base row %u above the window", row);
    }
  } else {
    cc608_fail (d, "unknown control pair 0x%02x 0x%02x", b1, b2);
  }
}

/* One byte pair (parity bits included) of a frame at `rt`. */
static inline void
cc608_pair (Cc608Check * d, guint8 b1, guint8 b2, GstClockTime rt)
{
  guint8 c1 = b1 & 0x7f, c2 = b2 & 0x7f;

  d->pairs++;
  if (!__builtin_parity (b1) || !__builtin_parity (b2))
    cc608_fail (d, "even parity in 0x%02x 0x%02x (pair %u)", b1, b2,
        d->pairs);
  if (c1 == 0 && c2 == 0) {
    d->nulls++;
    return;                     /* padding does not break redundancy */
  }
  if (c1 >= 0x10 && c1 <= 0x1f) {
    if (c1 & 0x08) {
      cc608_fail (d, "0x%02x 0x%02x is for CC2", c1, c2);
      return;
    }
    if (d->last_was_control && c1 == d->last1 && c2 == d->last2) {
      d->last_was_control = FALSE;      /* the redundant copy */
      return;
    }
    if (d->last_was_control)
      cc608_fail (d, "control 0x%02x 0x%02x not sent twice", d->last1,
          d->last2);
    d->last_was_control = TRUE;
    d->last1 = c1;
    d->last2 = c2;
    cc608_control (d, c1, c2, rt);
    return;
  }
  if (d->last_was_control)
    cc608_fail (d, "control 0x%02x 0x%02x not sent twice", d->last1,
        d->last2);
  d->last_was_control = FALSE;
  if (c1 < 0x20)
    cc608_fail (d, "0x%02x starts no code", c1);
  else
    cc608_put (d, cc608_basic (c1));
  if (c2 >= 0x20)
    cc608_put (d, cc608_basic (c2));
  else if (c2)
    cc608_fail (d, "0x%02x after a character", c2);
}

/* An s334-1a triplet: field 1 only. */
static inline void
cc608_triplet (Cc608Check * d, const guint8 t[3], GstClockTime rt)
{
  if (t[0] != 0x80)
    cc608_fail (d, "s334-1a line byte 0x%02x is not field 1", t[0]);
  cc608_pair (d, t[1], t[2], rt);
}

#endif
