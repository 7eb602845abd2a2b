"""The espeak-ng C library from the ``espeakng-loader`` wheel, spoken through a forking worker
process (``espeak_worker.py`` says why a fork per utterance).

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
