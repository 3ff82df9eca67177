#!/usr/bin/env python3
"""Reads vlmcaption's captions in an application: from the meta on the video
buffers (a pad probe), from the bus message and from the signal.

    pipelines/read-meta.py [PATTERN] [NUM_BUFFERS]

Needs PyGObject (Debian: python3-gi) and GStreamer >= 1.20 for custom metas.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

META = "GstVlmCaptionMeta"  # GST_VLM_CAPTION_META_NAME in vlmcaptionmeta.h


def on_video(pad, info):
    buf = info.get_buffer()
    meta = buf.get_custom_meta(META)
    if meta:
        s = meta.get_structure()
        print("meta %.2fs: %s" % (s.get_value("start") / Gst.SECOND, s.get_string("text")))
    return Gst.PadProbeReturn.OK


def main():
    Gst.init(None)
    pattern = sys.argv[1] if len(sys.argv) > 1 else "smpte"
    frames = sys.argv[2] if len(sys.argv) > 2 else "90"
    pipeline = Gst.parse_launch(
        "videotestsrc is-live=true pattern=%s num-buffers=%s ! video/x-raw,width=320,height=240 "
        "! vlmcaption name=c ! fakesink c.text_src ! fakesink" % (pattern, frames))
    caption = pipeline.get_by_name("c")
    caption.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, on_video)
    caption.connect("caption", lambda el, text, start, end:
                    print("signal %.2fs: %s" % (start / Gst.SECOND, text)))
    pipeline.set_state(Gst.State.PLAYING)
    bus = pipeline.get_bus()
    while True:
        msg = bus.timed_pop_filtered(Gst.CLOCK_TIME_NONE, Gst.MessageType.ELEMENT
                                     | Gst.MessageType.EOS | Gst.MessageType.ERROR)
        if msg.type == Gst.MessageType.ELEMENT and msg.get_structure().has_name("vlmcaption"):
            s = msg.get_structure()
            print("message %.2fs: %s (%d tokens, %.1f ms)" % (
                s.get_value("start") / Gst.SECOND, s.get_string("text"),
                s.get_value("n-tokens"), s.get_value("inference-ms")))
        elif msg.type == Gst.MessageType.ERROR:
            print("error:", msg.parse_error()[0].message, file=sys.stderr)
            pipeline.set_state(Gst.State.NULL)
            return 1
        elif msg.type == Gst.MessageType.EOS:
            break
    pipeline.set_state(Gst.State.NULL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
