"""The languages the spoken-numbers corpus can speak, with their family.

Each language needs an espeak-ng voice (the library in the ``espeakng-loader`` wheel) and
``num2words`` support; ``kinds`` lists which number kinds num2words can write for it (checked by
``tests/test_corpus.py::test_every_language_speaks_and_writes``). ``family`` is the branch that
the dendrogram colours by; ``stock`` is the top-level family.

    python -c "from gradlens.languages import LANGUAGES; print(len(LANGUAGES))"
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639-3 as SeamlessM4T writes it
    name: str
    family: str  # branch, e.g. Romance
    stock: str  # top-level family, e.g. Indo-European
    voice: str  # espeak-ng voice name
    num2words: str  # num2words language code
    kinds: tuple[str, ...] = ("cardinal", "ordinal", "year")


_IE = "Indo-European"
LANGUAGES: dict[str, Language] = {
    lang.code: lang
    for lang in [
        Language("spa", "Spanish", "Romance", _IE, "es", "es"),
        Language("fra", "French", "Romance", _IE, "fr", "fr"),
        Language("ita", "Italian", "Romance", _IE, "it", "it"),
        Language("por", "Portuguese", "Romance", _IE, "pt", "pt"),
        Language("ron", "Romanian", "Romance", _IE, "ro", "ro"),
        Language("cat", "Catalan", "Romance", _IE, "ca", "ca"),
        Language("deu", "German", "Germanic", _IE, "de", "de"),
        Language("nld", "Dutch", "Germanic", _IE, "nl", "nl"),
        Language("swe", "Swedish", "Germanic", _IE, "sv", "sv", ("cardinal", "ordinal")),
        Language("dan", "Danish", "Germanic", _IE, "da", "da"),
        Language("nob", "Norwegian Bokmål", "Germanic", _IE, "nb", "no"),
        Language("isl", "Icelandic", "Germanic", _IE, "is", "is", ("cardinal",)),
        Language("pol", "Polish", "Slavic", _IE, "pl", "pl"),
        Language("rus", "Russian", "Slavic", _IE, "ru", "ru"),
        Language("ukr", "Ukrainian", "Slavic", _IE, "uk", "uk"),
        Language("slk", "Slovak", "Slavic", _IE, "sk", "sk", ("cardinal", "year")),
        Language("srp", "Serbian", "Slavic", _IE, "sr", "sr", ("cardinal", "year")),
        Language("slv", "Slovenian", "Slavic", _IE, "sl", "sl"),
        Language("lit", "Lithuanian", "Baltic", _IE, "lt", "lt", ("cardinal", "year")),
        Language("lav", "Latvian", "Baltic", _IE, "lv", "lv", ("cardinal", "year")),
        Language("fin", "Finnish", "Uralic", "Uralic", "fi", "fi"),
        Language("hun", "Hungarian", "Uralic", "Uralic", "hu", "hu"),
        Language("tur", "Turkish", "Turkic", "Turkic", "tr", "tr"),
        Language("kaz", "Kazakh", "Turkic", "Turkic", "kk", "kz", ("cardinal", "year")),
        Language("aze", "Azerbaijani", "Turkic", "Turkic", "az", "az"),
        Language("arb", "Arabic", "Semitic", "Afro-Asiatic", "ar", "ar"),
        Language("heb", "Hebrew", "Semitic", "Afro-Asiatic", "he", "he"),
        
        Language("cym", "Welsh", "Celtic", _IE, "cy", "cy"),
        Language("fas", "Persian", "Indo-Iranian", _IE, "fa", "fa"),
        Language("ben", "Bengali", "Indo-Iranian", _IE, "bn", "bn"),
        Language("ind", "Indonesian", "Austronesian", "Austronesian", "id", "id"),
        Language("vie", "Vietnamese", "Austroasiatic", "Austroasiatic", "vi", "vi", ("cardinal", "ordinal")),
    ]
}

TARGET = Language("eng", "English", "Germanic", _IE, "en", "en")
