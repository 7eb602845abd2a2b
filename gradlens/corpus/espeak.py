"""The espeak-ng C library from the ``espeakng-loader`` wheel, spoken through a forking worker
process (``espeak_worker.py`` says why a fork per utterance), and ``speech``: an utterance at
16 kHz, synthesised once per machine and kept in gradlens' cache.

    python -c "from gradlens.corpus.espeak import Espeak; print(len(Espeak.get().speak('hola', 'es')))"
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

WORKER = Path(__file__).with_name("espeak_worker.py")


class Espeak:
    """The process's one espeak-ng worker (``Espeak.get()``); calls are serialised with a lock."""

    _instance: "Espeak | None" = None
    _lock = threading.Lock()

    def __init__(self):
        self._pid = os.getpid()
        self._proc = subprocess.Popen([sys.executable, str(WORKER)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE)
        head = self._proc.stdout.read(4)
        if len(head) < 4:
            raise RuntimeError("espeak-ng worker failed to start (is espeakng-loader installed?)")
        self.rate = struct.unpack("<i", head)[0]
        if self.rate <= 0:
            raise RuntimeError("espeak-ng failed to initialise from the espeakng-loader data")

    @classmethod
    def get(cls) -> "Espeak":
        with cls._lock:
            if cls._instance is None or cls._instance._pid != os.getpid() \
                    or cls._instance._proc.poll() is not None:
                cls._instance = Espeak()
            return cls._instance

    def speak(self, text: str, voice: str, rate: int = 175, pitch: int = 50) -> np.ndarray:
        """Audio of ``text`` at the library's rate (22050 Hz), int16 samples; ``rate`` in words
        per minute (espeak-ng takes 80-450)."""
        request = json.dumps({"text": text, "voice": voice, "rate": int(rate), "pitch": int(pitch)})
        with self._lock:
            body = request.encode()
            self._proc.stdin.write(struct.pack("<I", len(body)) + body)
            self._proc.stdin.flush()
            head = self._proc.stdout.read(4)
            if len(head) < 4:
                raise RuntimeError(f"espeak-ng worker died while speaking {text!r}")
            reply = self._proc.stdout.read(struct.unpack("<I", head)[0])
        err = struct.unpack("<i", reply[:4])[0]
        if err:
            what = f"no voice {voice!r}" if err < 1000 else f"error {err - 1000}"
            raise ValueError(f"espeak-ng could not speak {text!r}: {what}")
        return np.frombuffer(reply[4:], dtype=np.int16).copy()


SPEECH_CACHE = "speech"


def speech(text: str, voice: str, rate: int, pitch: int) -> np.ndarray:
    """``text`` spoken by ``voice`` at ``rate`` and ``pitch``, resampled to 16 kHz float32
    (``base.to_16k``), kept in ``<cache>/speech/`` (about 100 kB a second of audio; delete the
    folder to reclaim it). The embedded corpora speak the same utterances again and again:
    every job of an experiment or a validation with one seed sees the same batches, and every
    job of a run the same dev set. Resampling costs more than speaking, so both are kept. The
    key holds the espeak-ng data's version, so another build speaks afresh."""
    import hashlib
    from importlib import metadata

    from gradlens.corpus.base import to_16k
    from gradlens.paths import cache_dir

    key = json.dumps([metadata.version("espeakng-loader"), text, voice, int(rate), int(pitch)])
    digest = hashlib.sha256(key.encode()).hexdigest()
    path = cache_dir() / SPEECH_CACHE / digest[:2] / f"{digest}.npy"
    try:
        return np.load(path)
    except (OSError, ValueError):  # not there yet, or torn by a kill: speak it again
        pass
    espeak = Espeak.get()
    audio = to_16k(espeak.speak(text, voice, rate=rate, pitch=pitch), espeak.rate)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{digest}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, audio)
    os.replace(tmp, path)
    return audio

