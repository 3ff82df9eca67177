/* gstvlmcc608.c — the CEA-608 caption encoder (gstvlmcc608.h).
 *
 * Order: characters → rows → pages (the byte pairs of one screen) →
 * pacing. */
#include "gstvlmcc608.h"

#include <string.h>

/* 608 carries one pair per frame of 29.97 Hz video on field 1. */
#define PAIR_PERIOD (GST_SECOND * 1001 / 30000)

/* misc control codes, CC1: 0x14 then these */
#define RCL 0x20                /* resume caption loading (pop-on) */
#define RU3 0x26                /* roll-up, 3 rows */
#define EDM 0x2c                /* erase displayed memory */
#define CR 0x2d                 /* carriage return (roll-up) */
#define ENM 0x2e                /* erase non-displayed memory */
#define EOC 0x2f                /* end of caption: flip the memories */

/* ---------------------------------------------------------------- characters */

/* The characters 608 sends as a two-byte code, in code order from 0x20
 * (0x30 for the special set); the special ones take a column of their own,
 * the extended ones replace the basic character sent before them. Index 9
 * of the special set is the transparent space: not a character here. */
static const gchar special_na[] = "®°½¿™¢£♪à\x01èâêîôû";
static const gchar extended_12[] = "ÁÉÓÚÜü‘¡*'—©℠•“”ÀÂÇÈÊËëÎÏïÔÙùÛ«»";
static const gchar extended_13[] = "ÃãÍÌìÒòÕõ{}\\^_|~ÄäÖößŸ¤¦ÅåØø┌┐└┘";

/* The basic set is ASCII but for these codes. */
static const struct
{
  guint8 code;
  gunichar c;
} basic_differs[] = {
  {0x2a, 0x00e1}, {0x5c, 0x00e9}, {0x5e, 0x00ed}, {0x5f, 0x00f3},
  {0x60, 0x00fa}, {0x7b, 0x00e7}, {0x7c, 0x00f7}, {0x7d, 0x00d1},
  {0x7e, 0x00f1}, {0x7f, 0x2588},
};

/* A column of a row: a basic character, or a two-byte code after one
 * (extended: `basic` is its fallback) or alone (special: basic == 0). */
typedef struct
{
  guint8 basic;
  guint8 code1, code2;
} Cell;

/* The basic code of `c`, 0 if it has none. */
static guint8
basic_code (gunichar c)
{
  for (guint i = 0; i < G_N_ELEMENTS (basic_differs); i++) {
    if (basic_differs[i].c == c)
      return basic_differs[i].code;
    if (basic_differs[i].code == c)
      return 0;                 /* that ASCII code shows something else */
  }
  return c >= 0x20 && c < 0x7f ? c : 0;
}

/* The index of `c` in a code table, -1 if absent. */
static gint
table_index (const gchar * table, gunichar c)
{
  gint i = 0;

  for (const gchar * p = table; *p; p = g_utf8_next_char (p), i++)
    if (g_utf8_get_char (p) == c)
      return i;
  return -1;
}

static void push_text_cells (GArray * cells, const gchar * text);

/* Appends the cells of one character. */
static void
push_char_cells (GArray * cells, gunichar c)
{
  Cell cell = { 0, 0, 0 };
  gint i;

  if (g_unichar_isspace (c))
    c = ' ';
  else if (c < 0x20 || c == 0x7f)
    return;                     /* other C0 controls and DEL: nothing */
  if (c == '`')
    c = '\'';                   /* the one ASCII character 608 lacks */
  if ((cell.basic = basic_code (c))) {
    g_array_append_val (cells, cell);
  } else if ((i = table_index (special_na, c)) >= 0) {
    cell.code1 = 0x11;
    cell.code2 = 0x30 + i;
    g_array_append_val (cells, cell);
  } else if ((i = table_index (extended_12, c)) >= 0
      || (i = table_index (extended_13, c)) >= 0) {
    gchar utf8[8] = { 0 }, *ascii;

    g_unichar_to_utf8 (c, utf8);
    ascii = g_str_to_ascii (utf8, "C");
    cell.basic = basic_code ((guchar) ascii[0]);
    if (!cell.basic)
      cell.basic = '-';
    g_free (ascii);
    cell.code1 = table_index (extended_12, c) >= 0 ? 0x12 : 0x13;
    cell.code2 = 0x20 + i;
    g_array_append_val (cells, cell);
  } else if (c >= 0x80) {
    gchar utf8[8] = { 0 }, *ascii;

    /* GLib's transliteration: ASCII only, '?' where it has none */
    g_unichar_to_utf8 (c, utf8);
    ascii = g_str_to_ascii (utf8, "C");
    push_text_cells (cells, ascii);
    g_free (ascii);
  }
}

static void
push_text_cells (GArray * cells, const gchar * text)
{
  for (const gchar * p = text; *p; p = g_utf8_next_char (p))
    push_char_cells (cells, g_utf8_get_char (p));
}

/* ---------------------------------------------------------------- rows */

/* Splits the cells of `text` into rows (GArray of Cell) of at most 32
 * columns at spaces; a word longer than a row starts a row and runs on. */
static GPtrArray *
layout_rows (const gchar * text)
{
  GPtrArray *rows = g_ptr_array_new_with_free_func ((GDestroyNotify)
      g_array_unref);
  GArray *cells = g_array_new (FALSE, FALSE, sizeof (Cell));
  GArray *row = NULL;
  guint i = 0, w, n;
  const Cell space = { ' ', 0, 0 };

  push_text_cells (cells, text);
  n = cells->len;
  for (;;) {
    while (i < n && g_array_index (cells, Cell, i).basic == ' ')
      i++;
    if (i == n)
      break;
    for (w = i; w < n && g_array_index (cells, Cell, w).basic != ' '; w++);
    if (row && row->len + 1 + (w - i) > GST_VLM_CC608_COLUMNS)
      row = NULL;
    if (row)
      g_array_append_val (row, space);
    for (; i < w; i++) {
      if (!row || row->len == GST_VLM_CC608_COLUMNS) {
        row = g_array_new (FALSE, FALSE, sizeof (Cell));
        g_ptr_array_add (rows, row);
      }
      g_array_append_val (row, g_array_index (cells, Cell, i));
    }
  }
  g_array_unref (cells);
  return rows;
}

/* ---------------------------------------------------------------- pages */

/* One screen's byte pairs, parity applied. */
struct _GstVlmCc608Page
{
  GByteArray *pairs;
  guint n_pairs;
  gint eoc;                     /* the pair the EOC starts at; -1: none */
  gboolean waits;               /* a caption's later page: its EOC waits */
  GstClockTime share;           /* how long it stays up once shown */
  gboolean shows;               /* text is up once it went out */
  gboolean erases;              /* the display is clear once it went out */
};

static guint8
odd_parity (guint8 b)
{
  b &= 0x7f;
  return __builtin_parity (b) ? b : b | 0x80;
}

typedef struct
{
  GstVlmCc608Page *page;
  gint pending;                 /* a basic character waiting for its pair */
} Builder;

static void
put_pair (Builder * b, guint8 b1, guint8 b2)
{
  guint8 pair[2] = { odd_parity (b1), odd_parity (b2) };

  g_byte_array_append (b->page->pairs, pair, 2);
  b->page->n_pairs++;
}

static void
flush_basic (Builder * b)
{
  if (b->pending >= 0)
    put_pair (b, b->pending, 0x00);
  b->pending = -1;
}

/* A control code, sent twice as 608 requires. */
static void
put_control (Builder * b, guint8 b1, guint8 b2)
{
  flush_basic (b);
  put_pair (b, b1, b2);
  put_pair (b, b1, b2);
}

static void
put_basic (Builder * b, guint8 c)
{
  if (b->pending < 0) {
    b->pending = c;
  } else {
    put_pair (b, b->pending, c);
    b->pending = -1;
  }
}

static void
put_row (Builder * b, GArray * row)
{
  for (guint i = 0; i < row->len; i++) {
    Cell *cell = &g_array_index (row, Cell, i);

    if (cell->basic)
      put_basic (b, cell->basic);
    if (cell->code1)
      put_control (b, cell->code1, cell->code2);
  }
  flush_basic (b);
}

/* The preamble address code for `row` (1..15), indented by `indent`
 * columns (a multiple of 4), then the tab offset for the rest of `column`. */
static void
put_address (Builder * b, guint row, guint column)
{
  static const guint8 first[15] = { 0x11, 0x11, 0x12, 0x12, 0x15, 0x15, 0x16,
    0x16, 0x17, 0x17, 0x10, 0x13, 0x13, 0x14, 0x14
  };
  /* the second row of each pair sharing a first byte (row 11 has none) */
  gboolean second = row <= 10 ? row % 2 == 0 : row >= 12 && row % 2 == 1;

  put_control (b, first[row - 1], (second ? 0x60 : 0x40) | 0x10 |
      ((column / 4) << 1));
  if (column % 4)
    put_control (b, 0x17, 0x20 + column % 4);
}

static GstVlmCc608Page *
page_new (void)
{
  GstVlmCc608Page *page = g_new0 (GstVlmCc608Page, 1);

  page->pairs = g_byte_array_new ();
  page->eoc = -1;
  return page;
}

static void
page_free (GstVlmCc608Page * page)
{
  g_byte_array_unref (page->pairs);
  g_free (page);
}

/* A page of the control codes alone: erase the display (and the loading
 * memory with `both`). */
static GstVlmCc608Page *
erase_page_new (gboolean both)
{
  Builder b = { page_new (), -1 };

  put_control (&b, 0x14, EDM);
  if (both)
    put_control (&b, 0x14, ENM);
  b.page->erases = TRUE;
  return b.page;
}

/* Pop-on: rows [first, last) loaded centred on the bottom rows, flipped. */
static GstVlmCc608Page *
pop_on_page_new (GPtrArray * rows, guint first, guint last)
{
  Builder b = { page_new (), -1 };

  put_control (&b, 0x14, RCL);
  put_control (&b, 0x14, ENM);
  for (guint r = first; r < last; r++) {
    GArray *row = g_ptr_array_index (rows, r);

    put_address (&b, 15 - (last - 1 - r), (GST_VLM_CC608_COLUMNS -
            row->len) / 2);
    put_row (&b, row);
  }
  b.page->eoc = b.page->n_pairs;
  put_control (&b, 0x14, EOC);
  b.page->shows = TRUE;
  return b.page;
}

/* Roll-up: every row after a carriage return on the base row. */
static GstVlmCc608Page *
roll_up_page_new (GstVlmCc608 * cc, GPtrArray * rows)
{
  Builder b = { page_new (), -1 };

  if (!cc->roll_up_set) {
    put_control (&b, 0x14, RU3);
    put_address (&b, 15, 0);
    cc->roll_up_set = TRUE;
  }
  for (guint r = 0; r < rows->len; r++) {
    put_control (&b, 0x14, CR);
    put_row (&b, g_ptr_array_index (rows, r));
  }
  b.page->shows = TRUE;
  return b.page;
}

/* ---------------------------------------------------------------- encoder */

void
gst_vlm_cc608_init (GstVlmCc608 * cc, GstVlmCcMode mode)
{
  memset (cc, 0, sizeof (*cc));
  cc->mode = mode;
  g_queue_init (&cc->pages);
  cc->next_rt = cc->clear_rt = cc->flip_rt = GST_CLOCK_TIME_NONE;
}

void
gst_vlm_cc608_clear (GstVlmCc608 * cc)
{
  g_queue_clear_full (&cc->pages, (GDestroyNotify) page_free);
  g_clear_pointer (&cc->current, page_free);
}

void
gst_vlm_cc608_reset (GstVlmCc608 * cc)
{
  GstVlmCcMode mode = cc->mode;

  gst_vlm_cc608_clear (cc);
  gst_vlm_cc608_init (cc, mode);
  if (mode != GST_VLM_CC_NONE)
    g_queue_push_tail (&cc->pages, erase_page_new (TRUE));
}

void
gst_vlm_cc608_caption (GstVlmCc608 * cc, const gchar * text,
    GstClockTime duration)
{
  GPtrArray *rows;
  guint n_pages, p;

  if (cc->mode == GST_VLM_CC_NONE || !text)
    return;
  /* the newest caption wins over pages not started */
  g_queue_clear_full (&cc->pages, (GDestroyNotify) page_free);
  cc->flip_rt = GST_CLOCK_TIME_NONE;
  rows = layout_rows (text);
  if (rows->len == 0) {
    g_ptr_array_unref (rows);
    return;
  }
  if (!GST_CLOCK_TIME_IS_VALID (duration))
    duration = 0;
  if (cc->mode == GST_VLM_CC_ROLL_UP) {
    GstVlmCc608Page *page = roll_up_page_new (cc, rows);

    page->share = duration;
    g_queue_push_tail (&cc->pages, page);
  } else {
    n_pages = (rows->len + GST_VLM_CC608_POP_ON_ROWS - 1) /
        GST_VLM_CC608_POP_ON_ROWS;
    for (p = 0; p < n_pages; p++) {
      GstVlmCc608Page *page = pop_on_page_new (rows,
          p * GST_VLM_CC608_POP_ON_ROWS,
          MIN (rows->len, (p + 1) * GST_VLM_CC608_POP_ON_ROWS));

      page->share = duration / n_pages;
      page->waits = p > 0;
      g_queue_push_tail (&cc->pages, page);
    }
  }
  g_ptr_array_unref (rows);
}

/* Whether a pair may go at `rt`, and if so books the next one a period on
 * (after a gap no earlier than a period ago, so that there is no burst). */
static gboolean
pace (GstVlmCc608 * cc, GstClockTime rt)
{
  GstClockTime base;

  if (!GST_CLOCK_TIME_IS_VALID (rt))
    return TRUE;
  /* running time that went back more than a frame or two: a new start */
  if (GST_CLOCK_TIME_IS_VALID (cc->next_rt) && rt + 3 * PAIR_PERIOD <
      cc->next_rt)
    cc->next_rt = GST_CLOCK_TIME_NONE;
  if (GST_CLOCK_TIME_IS_VALID (cc->next_rt)
      && rt + PAIR_PERIOD / 4 < cc->next_rt)
    return FALSE;
  base = GST_CLOCK_TIME_IS_VALID (cc->next_rt) ?
      MAX (cc->next_rt, rt > PAIR_PERIOD ? rt - PAIR_PERIOD : 0) : rt;
  cc->next_rt = base + PAIR_PERIOD;
  return TRUE;
}

static gboolean
time_reached (GstClockTime rt, GstClockTime when)
{
  return GST_CLOCK_TIME_IS_VALID (when) && (!GST_CLOCK_TIME_IS_VALID (rt)
      || rt >= when);
}

gboolean
gst_vlm_cc608_next (GstVlmCc608 * cc, GstClockTime rt, guint8 triplet[3])
{
  GstVlmCc608Page *page;

  if (cc->mode == GST_VLM_CC_NONE || !pace (cc, rt))
    return FALSE;
  triplet[0] = 0x80;            /* s334-1a: field 1 */
  triplet[1] = triplet[2] = 0x80;       /* padding: null pair */

  if (!cc->current) {
    if (g_queue_is_empty (&cc->pages) && cc->shown
        && time_reached (rt, cc->clear_rt))
      g_queue_push_tail (&cc->pages, erase_page_new (FALSE));
    cc->current = g_queue_pop_head (&cc->pages);
    cc->sent = 0;
  }
  if (!(page = cc->current))
    return TRUE;
  /* a later page of a caption flips when the one before had its share */
  if (page->waits && (gint) cc->sent == page->eoc
      && GST_CLOCK_TIME_IS_VALID (rt) && GST_CLOCK_TIME_IS_VALID (cc->flip_rt)
      && rt < cc->flip_rt)
    return TRUE;

  memcpy (triplet + 1, page->pairs->data + 2 * cc->sent, 2);
  if (++cc->sent == page->n_pairs) {
    if (page->shows) {
      cc->shown = TRUE;
      cc->clear_rt = GST_CLOCK_TIME_IS_VALID (rt) ? rt + page->share :
          GST_CLOCK_TIME_NONE;
      cc->flip_rt = cc->clear_rt;
    }
    if (page->erases) {
      cc->shown = FALSE;
      cc->clear_rt = GST_CLOCK_TIME_NONE;
    }
    g_clear_pointer (&cc->current, page_free);
  }
  return TRUE;
}
