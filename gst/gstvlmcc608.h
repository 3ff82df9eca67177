/* gstvlmcc608.h — a CEA-608 caption encoder (CC1, field 1) for the video
 * meta: captions in, one byte pair per frame out, paced at the 608 rate.
 *
 * What goes out is what a 608 decoder expects on line 21: odd parity on
 * every byte, every control code sent twice, a preamble address code (PAC)
 * per row, rows of at most 32 columns. Pop-on loads each page into the
 * non-displayed memory (RCL, ENM, PAC, text) and flips it (EOC); roll-up
 * (RU3) sends each line after a carriage return on the base row 15.
 * Either erases the display (EDM) once a caption has been up for its
 * duration and no newer one replaced it. Text is UTF-8: the basic set
 * where it has the character, else the special and extended sets (an
 * extended character follows a basic one it replaces, as 608 specifies),
 * else GLib's ASCII transliteration.
 *
 * ref: CTA-608-E (ANSI/CTA-608-E) §§ 4, 6, 7 and annex B; 47 CFR 15.119;
 *      SMPTE 334-1 (the s334-1a triplet: a line byte, then the pair) */
#ifndef GST_VLM_CC608_H
#define GST_VLM_CC608_H

#include <gst/gst.h>

G_BEGIN_DECLS

typedef enum
{
  GST_VLM_CC_NONE,
  GST_VLM_CC_POP_ON,
  GST_VLM_CC_ROLL_UP,
} GstVlmCcMode;

#define GST_VLM_CC608_COLUMNS 32
#define GST_VLM_CC608_POP_ON_ROWS 4     /* a page: rows 12..15 at most */
#define GST_VLM_CC608_ROLL_UP_ROWS 3    /* RU3 */

typedef struct _GstVlmCc608Page GstVlmCc608Page;

typedef struct
{
  GstVlmCcMode mode;
  GQueue pages;                 /* GstVlmCc608Page not yet sent */
  GstVlmCc608Page *current;     /* the page being sent; NULL: none */
  guint sent;                   /* pairs of `current` sent */
  GstClockTime next_rt;         /* the next pair is due then (NONE: now) */
  GstClockTime clear_rt;        /* the display is erased then (NONE: never) */
  gboolean shown;               /* the display holds text */
  GstClockTime flip_rt;         /* a page's EOC waits until then (NONE: not) */
  gboolean roll_up_set;         /* RU3 and the base row went out */
} GstVlmCc608;

void gst_vlm_cc608_init (GstVlmCc608 * cc, GstVlmCcMode mode);
void gst_vlm_cc608_clear (GstVlmCc608 * cc);

/* A flush or a new stream: drops what was not sent and erases the screen
 * with the next pairs. */
void gst_vlm_cc608_reset (GstVlmCc608 * cc);

/* Queues `text` (UTF-8), to stay up for `duration` once shown. Pages a
 * newer caption finds unsent are dropped: live, the newest text wins. */
void gst_vlm_cc608_caption (GstVlmCc608 * cc, const gchar * text,
    GstClockTime duration);

/* The byte pair due for a frame at running time `rt` (NONE: any time) as
 * an s334-1a triplet (field 1). FALSE when none is due at this frame (a
 * frame rate above 30 fps: 608 carries one pair per 1/29.97 s). */
gboolean gst_vlm_cc608_next (GstVlmCc608 * cc, GstClockTime rt,
    guint8 triplet[3]);

G_END_DECLS

#endif
