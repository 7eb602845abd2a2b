"""The espeak-ng worker that ``gradlens.corpus.espeak.Espeak`` talks to over a pipe (not imported).

espeak-ng keeps static state across utterances (even across ``espeak_Terminate``), so the same
call gives slightly different audio depending on what was spoken before. This worker initialises
the library once and never speaks itself: each utterance is spoken by a fresh fork of it, from
the same pristine state, so an utterance depends on its arguments alone.

Protocol: it writes the library's sample rate (int32); then, per request (uint32 length + JSON
``{"text", "voice", "rate", "pitch"}``), a reply (uint32 length + int32 error + int16 samples).
"""

import os
import sys

# run as a script, this folder would come first on the path, and its numbers.py would shadow
# the standard library's numbers module for anything imported below
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != HERE]

import ctypes  # noqa: E402
import json  # noqa: E402
import struct  # noqa: E402

import espeakng_loader  # noqa: E402

lib = ctypes.cdll.LoadLibrary(espeakng_loader.get_library_path())
rate = lib.espeak_Initialize(2, 0, espeakng_loader.get_data_path().encode(), 0)
chunks = []
CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def collect(wav, n, events):
    if n > 0:
        chunks.append(ctypes.string_at(wav, 2 * n))
    return 0


callback = CB(collect)
lib.espeak_SetSynthCallback(callback)
lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                             ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
inp, out = sys.stdin.buffer, sys.stdout.buffer
out.write(struct.pack("<i", rate))
out.flush()


def read_all(fd):
    parts = []
    while True:
        part = os.read(fd, 1 << 16)
        if not part:
            return b"".join(parts)
        parts.append(part)


while True:
    head = inp.read(4)
    if len(head) < 4:
        break
    req = json.loads(inp.read(struct.unpack("<I", head)[0]))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        err = lib.espeak_SetVoiceByName(req["voice"].encode())
        if err == 0:
            lib.espeak_SetParameter(1, req["rate"], 0)
            lib.espeak_SetParameter(3, req["pitch"], 0)
            data = req["text"].encode("utf-8") + b"\0"
            err = lib.espeak_Synth(data, len(data), 0, 1, 0, 1, None, None) or 0
            err = err and 1000 + err
        body = b"".join(chunks)
        os.write(w, struct.pack("<i", err))
        view = memoryview(body)
        while view:
            view = view[os.write(w, view):]
        os._exit(0)
    os.close(w)
    reply = read_all(r)
    os.close(r)
    os.waitpid(pid, 0)
    out.write(struct.pack("<I", len(reply)) + reply)
    out.flush()
