from collections import Counter
from pathlib import Path

from corpus.language import detect_language
from corpus.sources.seed import parse_seed_page

SEED = Path(__file__).resolve().parents[1] / "corpus" / "data" / "sample" / "seed_page.txt"


def test_seed_ticker_headlines_all_correct() -> None:
    items = parse_seed_page(SEED.read_text(encoding="utf-8"), str(SEED))
    headlines = [i.title for i in items if i.kind == "headline"]
    assert len(headlines) == 48
    langs = {h: detect_language(h) for h in headlines}
    spanish = sorted(h for h, lang in langs.items() if lang == "es")
    assert len(spanish) == 2
    assert spanish[0].startswith("Suspensión temporal del tráfico marítimo en Tánger Med")
    assert spanish[1].startswith("Sáhara: En el Consejo de Seguridad")
    assert Counter(langs.values()) == {"fr": 46, "es": 2}


def test_detection_is_deterministic() -> None:
    text = "Mondial 2030 : Le président de la RFEF affirme que la finale aura lieu en Espagne"
    assert {detect_language(text) for _ in range(5)} == {"fr"}


def test_served_languages_and_fallbacks() -> None:
    assert detect_language("The government said on Tuesday that the talks would resume") == "en"
    assert detect_language("El gobierno anunció ayer que las negociaciones continuarán") == "es"
    assert detect_language("Le gouvernement a annoncé hier la reprise des négociations") == "fr"
    assert detect_language("أعلنت الحكومة اليوم عن استئناف المفاوضات") == "ar"
    assert detect_language("12345 !!!") == "und"
    assert detect_language("12345 !!!", declared="fr-FR") == "fr"
    assert detect_language("", declared="es") == "es"
    assert detect_language("", declared="de") == "und"
