#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora into OUT/<harness>/ from ../shared/fixtures
and the test-card model: small valid files of each kind (fixture files too
large to fuzz are shrunk: tokenizers to their first 300 tokens, safetensors
to their small tensors). Usage: seeds.py PROJECT_ROOT OUT"""
import json, os, struct, sys

root, out = sys.argv[1], sys.argv[2]
fixtures = os.path.join(root, "..", "shared", "fixtures")
models = [os.path.join(fixtures, d) for d in sorted(os.listdir(fixtures)) if os.path.isdir(os.path.join(fixtures, d))] + [os.path.join(root, "models", "testcard-git")]


def put(harness, name, data):
    d = os.path.join(out, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def small_safetensors(path, limit=512):
    """The tensors of at most `limit` bytes, repacked into a valid file."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        header.pop("__metadata__", None)
        kept, blob = {}, b""
        for name, t in sorted(header.items()):
            b, e = t["data_offsets"]
            if e - b <= limit and len(kept) < 24:
                f.seek(base + b)
                kept[name] = dict(t, data_offsets=[len(blob), len(blob) + e - b])
                blob += f.read(e - b)
    text = json.dumps(kept).encode()
    return struct.pack("<Q", len(text)) + text + blob


def small_tokenizer(path, n=300):
    """tokenizer.json with the first n vocab entries and the merges among them."""
    tok = json.load(open(path, encoding="utf-8"))
    m = tok.get("model", {})
    if isinstance(m.get("vocab"), dict) and len(m["vocab"]) > n:
        keep = dict(sorted(m["vocab"].items(), key=lambda kv: kv[1])[:n])
        m["vocab"] = keep
        merges = []
        for mg in m.get("merges", []):
            a, b = mg.split(" ", 1) if isinstance(mg, str) else mg
            if a in keep and b in keep and a + b in keep:
                merges.append(mg)
        m["merges"] = merges
        tok["added_tokens"] = [t for t in tok.get("added_tokens", []) if t["id"] < n + 64]
    return json.dumps(tok, ensure_ascii=False)


config_files = ["config.json", "generation_config.json", "processor_config.json", "tokenizer_config.json",
                "tokenizer.json"]
# fuzz_config.c's folders: the test card, then the fixtures with model.safetensors, sorted
config_folders = [os.path.join(root, "models", "testcard-git")] + [
    d for d in models[:-1] if os.path.isfile(os.path.join(d, "model.safetensors"))]
for d in models:
    tag = os.path.basename(d)
    folder = config_folders.index(d) if d in config_folders else 0
    for f in sorted(os.listdir(d)):
        p = os.path.join(d, f)
        if f == "model.safetensors" or f == "golden.safetensors":
            put("safetensors", f"{tag}-{f}", small_safetensors(p))
        elif f == "pytorch_model.bin":
            put("torchbin", f"{tag}-{f}", open(p, "rb").read())
        elif f == "tokenizer.json":
            text = small_tokenizer(p)
            put("tokenizer", f"{tag}-{f}", text)
            put("config", f"{tag}-{f}", bytes([config_files.index(f) | folder << 3]) + text.encode())
        elif f.endswith("config.json"):
            data = open(p, "rb").read()
            kind = config_files.index(f) if f in config_files else 2   # preprocessor_config: as processor_config
            put("config", f"{tag}-{f}", bytes([kind | folder << 3]) + data)
            if "generation" in f:
                put("genconfig", f"{tag}-{f}", data)
        elif f == "golden.json":
            put("tokenizer", f"{tag}-{f}", open(p, "rb").read())

put("index", "two-shards.json", '{"metadata":{},"weight_map":{"a":"a.safetensors","b":"b.safetensors"}}')
put("index", "one-shard.json", '{"weight_map":{"a":"a.safetensors"}}')
for i, s in enumerate(["max_new_tokens=8,num_beams=3,length_penalty=0.5", "do_sample=true,temperature=0.7,top_p=0.9,top_k=5,seed=42",
                       "stop_strings=.|the end,early_stopping=never", "repetition_penalty=1.2,max_new_tokens=1",
                       # fuzz_genconfig's find: a temperature that rounds to 0 as a float was parsed, then refused
                       "do_sample=true,temperature=7e-111,top_p=0.95"]):
    put("genconfig", f"string-{i}", s)
# image: the 13 header bytes fuzz_image.c reads, then a little pixel data
for i, head in enumerate([[0, 0x0f, 32, 32, 24, 24, 3, 0, 40, 0, 30, 0, 0], [2, 0x09, 50, 40, 0, 0, 2, 5, 63, 0, 47, 0, 5],
                          [4, 0xcd, 60, 60, 0, 0, 1, 6, 99, 0, 3, 0, 14], [1, 0x07, 16, 16, 8, 8, 0, 3, 1, 0, 200, 0, 9]]):
    put("image", f"frame-{i}", bytes(head) + bytes(range(256)))

# chat: vlm-server request bodies, with tiny PNG frames made here (JPEG needs an encoder)
import base64, zlib


def png(w, h, rgb=(200, 30, 30)):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xffffffff)
    raw = b"".join(b"\0" + bytes(rgb) * w for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


url = "data:image/png;base64," + base64.b64encode(png(8, 6)).decode()
part = {"type": "image_url", "image_url": {"url": url}}
for i, body in enumerate([
        {"messages": [{"role": "user", "content": [part]}]},
        {"model": "testcard-git", "max_tokens": 5, "temperature": 0.7, "top_p": 0.9, "seed": 3, "n": 1,
         "stream": True, "stream_options": {"include_usage": True},
         "messages": [{"role": "system", "content": "be brief"},
                      {"role": "user", "content": [{"type": "text", "text": "a"}, part, part]}]},
        {"messages": [{"role": "user", "content": "no image"}]},
        {"model": "other", "messages": []},
        # numbers past every integer type (a seed of 3.7e26 was undefined behaviour)
        {"seed": 3.7e26, "max_tokens": 1e30, "top_p": -1e300, "n": 1e19,
         "messages": [{"role": "user", "content": [part]}]}]):
    put("chat", f"request-{i}.json", json.dumps(body))
