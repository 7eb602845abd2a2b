"""The languages the embedded corpora speak, with their family.

Each language needs an espeak-ng voice (the library in the ``espeakng-loader`` wheel). The
spoken-numbers corpus speaks those with ``num2words`` support (``kinds``: the number kinds
num2words writes for it, checked by ``tests/test_corpus.py``); the CLDR phrases corpus those with
a ``locale`` whose CLDR data (``babel``) renders every phrase (``tests/test_phrases.py``).
``family`` is the branch that the dendrogram colours by; ``stock`` is the top-level family.

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
    num2words: str  # num2words language code ('' where the spoken numbers do not speak it)
    kinds: tuple[str, ...] = ("cardinal", "ordinal", "year")
    locale: str = ""  # CLDR locale of the phrases corpus ('' where it does not speak it)


_IE = "Indo-European"
LANGUAGES: dict[str, Language] = {
    lang.code: lang
    for lang in [
        Language("spa", "Spanish", "Romance", _IE, "es", "es", locale="es"),
        Language("fra", "French", "Romance", _IE, "fr", "fr", locale="fr"),
        Language("ita", "Italian", "Romance", _IE, "it", "it", locale="it"),
        Language("por", "Portuguese", "Romance", _IE, "pt", "pt", locale="pt"),
        Language("ron", "Romanian", "Romance", _IE, "ro", "ro", locale="ro"),
        Language("cat", "Catalan", "Romance", _IE, "ca", "ca", locale="ca"),
        Language("deu", "German", "Germanic", _IE, "de", "de", locale="de"),
        Language("nld", "Dutch", "Germanic", _IE, "nl", "nl", locale="nl"),
        Language("swe", "Swedish", "Germanic", _IE, "sv", "sv", ("cardinal", "ordinal"),
                 locale="sv"),
        Language("dan", "Danish", "Germanic", _IE, "da", "da", locale="da"),
        Language("nob", "Norwegian Bokmål", "Germanic", _IE, "nb", "no", locale="nb"),
        Language("isl", "Icelandic", "Germanic", _IE, "is", "is", ("cardinal",), locale="is"),
        Language("pol", "Polish", "Slavic", _IE, "pl", "pl", locale="pl"),
        Language("rus", "Russian", "Slavic", _IE, "ru", "ru", locale="ru"),
        Language("ukr", "Ukrainian", "Slavic", _IE, "uk", "uk", locale="uk"),
        Language("slk", "Slovak", "Slavic", _IE, "sk", "sk", ("cardinal", "year"), locale="sk"),
        Language("srp", "Serbian", "Slavic", _IE, "sr", "sr", ("cardinal", "year")),
        Language("slv", "Slovenian", "Slavic", _IE, "sl", "sl", locale="sl"),
        Language("lit", "Lithuanian", "Baltic", _IE, "lt", "lt", ("cardinal", "year"), locale="lt"),
        Language("lav", "Latvian", "Baltic", _IE, "lv", "lv", ("cardinal", "year")),
        Language("fin", "Finnish", "Uralic", "Uralic", "fi", "fi", locale="fi"),
        Language("hun", "Hungarian", "Uralic", "Uralic", "hu", "hu", locale="hu"),
        Language("tur", "Turkish", "Turkic", "Turkic", "tr", "tr", locale="tr"),
        Language("kaz", "Kazakh", "Turkic", "Turkic", "kk", "kz", ("cardinal", "year"),
                 locale="kk"),
        Language("aze", "Azerbaijani", "Turkic", "Turkic", "az", "az"),
        Language("arb", "Arabic", "Semitic", "Afro-Asiatic", "ar", "ar", locale="ar"),
        Language("heb", "Hebrew", "Semitic", "Afro-Asiatic", "he", "he", locale="he"),
        Language("cym", "Welsh", "Celtic", _IE, "cy", "cy", locale="cy"),
        Language("fas", "Persian", "Indo-Iranian", _IE, "fa", "fa"),
        Language("ben", "Bengali", "Indo-Iranian", _IE, "bn", "bn", locale="bn"),
        Language("ind", "Indonesian", "Austronesian", "Austronesian", "id", "id", locale="id"),
        Language("vie", "Vietnamese", "Austroasiatic", "Austroasiatic", "vi", "vi",
                 ("cardinal", "ordinal"), locale="vi"),
        # spoken by the CLDR phrases corpus only (SeamlessM4T's codes; no num2words)
        Language("ces", "Czech", "Slavic", _IE, "cs", "", (), locale="cs"),
        Language("bul", "Bulgarian", "Slavic", _IE, "bg", "", (), locale="bg"),
        Language("hrv", "Croatian", "Slavic", _IE, "hr", "", (), locale="hr"),
        Language("mkd", "Macedonian", "Slavic", _IE, "mk", "", (), locale="mk"),
        Language("est", "Estonian", "Uralic", "Uralic", "et", "", (), locale="et"),
        Language("uzn", "Uzbek", "Turkic", "Turkic", "uz", "", (), locale="uz"),
        Language("gle", "Irish", "Celtic", _IE, "ga", "", (), locale="ga"),
        Language("swh", "Swahili", "Bantu", "Niger-Congo", "sw", "", (), locale="sw"),
        Language("hin", "Hindi", "Indo-Iranian", _IE, "hi", "", (), locale="hi"),
        Language("ell", "Greek", "Hellenic", _IE, "el", "", (), locale="el"),
        Language("hye", "Armenian", "Armenian", _IE, "hy", "", (), locale="hy"),
        Language("kat", "Georgian", "Kartvelian", "Kartvelian", "ka", "", (), locale="ka"),
        Language("eus", "Basque", "Basque", "Basque", "eu", "", (), locale="eu"),
        Language("zsm", "Malay", "Austronesian", "Austronesian", "ms", "", (), locale="ms"),
        Language("jpn", "Japanese", "Japonic", "Japonic", "ja", "", (), locale="ja"),
        Language("kor", "Korean", "Koreanic", "Koreanic", "ko", "", (), locale="ko"),
        Language("tha", "Thai", "Tai", "Kra-Dai", "th", "", (), locale="th"),
        Language("tam", "Tamil", "Dravidian", "Dravidian", "ta", "", (), locale="ta"),
        Language("amh", "Amharic", "Semitic", "Afro-Asiatic", "am", "", (), locale="am"),
    ]
}

TARGET = Language("eng", "English", "Germanic", _IE, "en", "en", locale="en")
# the languages each embedded corpus can speak
NUMBER_LANGUAGES = [code for code, lang in LANGUAGES.items() if lang.num2words]
PHRASE_LANGUAGES = [code for code, lang in LANGUAGES.items() if lang.locale]
# the embedded corpora a probe can name, with the languages each speaks
CORPUS_LANGUAGES = {"spoken-numbers": NUMBER_LANGUAGES, "cldr-phrases": PHRASE_LANGUAGES}
EMBEDDED_CORPORA = {
    "spoken-numbers": f"spoken numbers ({len(NUMBER_LANGUAGES)} languages)",
    "cldr-phrases": f"CLDR phrases: dates, times, money, places ({len(PHRASE_LANGUAGES)} languages)"}
